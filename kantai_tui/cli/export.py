"""CLI command ``export``: runs' steps and evaluations as a CSV file or TensorBoard event files."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kantai_tui.cli.args import emit_json
from kantai_tui.core.errors import EXIT_OK, BadInputError
from kantai_tui.core.paths import DEFAULT_RUNS_DIR

if TYPE_CHECKING:
    from kantai_tui.core.runs.history import RunHistory


def add_commands(commands: argparse._SubParsersAction, positive: type) -> None:
    """Register export."""
    export = commands.add_parser(
        "export", help="write runs' logged steps and evaluations as CSV or TensorBoard event files"
    )
    export.add_argument("runs", nargs="+", metavar="RUN", help="one or more runs")
    export.add_argument("--runs-dir", metavar="DIR", default=DEFAULT_RUNS_DIR)
    export.add_argument(
        "--csv", metavar="FILE", help="one row per logged step and evaluation, a 'run' column first; - for stdout"
    )
    export.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="event files, DIR/RUN/ per run, for 'tensorboard --logdir DIR' (pip install 'kantai-tui[tensorboard]')",
    )
    export.add_argument("--json", action="store_true", help='print {"csv", "tensorboard", "runs", "rows"}')


def cmd_export(args: argparse.Namespace) -> int:
    from kantai_tui.core.runs import export

    _check_outputs(args)
    if args.tensorboard:
        export.require_tensorboard()  # before the CSV is written, not after
    histories = _histories(args.runs_dir, args.runs)
    rows = sum(len(export.logged_rows(h)) for h in histories)
    csv_path = _csv(histories, args.csv)
    board = str(Path(args.tensorboard).expanduser().resolve()) if args.tensorboard else None
    if board is not None:
        export.export_tensorboard(histories, board)
    names = [h.name for h in histories]
    if args.json:
        return emit_json({"csv": csv_path, "tensorboard": board, "runs": names, "rows": rows})
    _say_done(names, rows, csv_path, board)
    return EXIT_OK


def _check_outputs(args: argparse.Namespace) -> None:
    if not args.csv and not args.tensorboard:
        raise BadInputError("give --csv FILE or --tensorboard DIR (or both): where to export the runs")
    if args.csv == "-" and args.json:
        raise BadInputError("--csv - writes the CSV to stdout, where --json would go too; give --csv a FILE")


def _histories(runs_dir: str, names: list[str]) -> list[RunHistory]:
    """Every named run (each once, in the order given), all checked before anything is written."""
    from kantai_tui.core.runs.folder import run_path
    from kantai_tui.core.runs.history import load_history

    folders = []
    for name in dict.fromkeys(names):
        run_dir = run_path(runs_dir, name)
        if not (run_dir / "run.json").is_file():
            raise BadInputError(f"no run named {name!r} in {run_dir.parent}")
        folders.append(run_dir)
    return [load_history(folder) for folder in folders]


def _csv(histories: list[RunHistory], option: str | None) -> str | None:
    """Write the CSV (when asked); the path written, as an absolute path, or "-" for stdout."""
    from kantai_tui.core.runs.export import write_csv

    if option is None:
        return None
    path = option if option == "-" else str(Path(option).expanduser().resolve())
    write_csv(histories, path)
    return path


def _say_done(names: list[str], rows: int, csv_path: str | None, board: str | None) -> None:
    """One line of what was written; on stderr when the CSV itself is on stdout."""
    what = [f"CSV {csv_path}"] if csv_path not in (None, "-") else []
    if board is not None:
        what.append(f"TensorBoard events in {board} (view: {shlex.join(['tensorboard', '--logdir', board])})")
    runs = f"run {names[0]}" if len(names) == 1 else f"runs {', '.join(names)}"
    line = f"exported {runs}: {rows:,} rows" + (f" to {'; '.join(what)}" if what else "")
    print(line, file=sys.stderr if csv_path == "-" else sys.stdout)


COMMANDS = {"export": cmd_export}
