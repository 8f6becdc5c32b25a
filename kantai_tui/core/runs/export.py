"""Runs exported for other tools: a CSV of every logged step and evaluation, and TensorBoard event files.

Both read a run as ``history.load_history`` does (rewound at every resume, typed), so a spreadsheet, a
notebook and TensorBoard show the same points as ``kantai follow`` and the TUI. The CSV's columns follow
``METRIC_FIELDS``: a field added to the trainer's rows there appears in every export without a change
here. TensorBoard is an optional extra (``pip install 'kantai-tui[tensorboard]'``): only its own event
writer and protos are used (no torch.utils.tensorboard, no TensorFlow), imported when first needed.

Resumes in TensorBoard. metrics.jsonl keeps the steps a crashed trainer logged past its last checkpoint;
a resumed trainer logs them again. ``export_tensorboard`` writes the rewound trajectory, so each step is
in the event file once. The live ``TensorBoardSink`` cannot take back what an earlier process wrote, so
at a ``started`` row with ``start_step`` S it writes TensorBoard's own restart marker, a
``SessionLog.START`` event at step S + 1, before the re-trained steps: TensorBoard's Python loader then
purges every point at step > S (``purge_orphaned_data``, on by default), and its fast data server
(``--load_fast``) drops a series' points at steps >= s when step s of that series comes again. Either
way a user sees each step once, with the values of the resumed run; with ``--purge_orphaned_data=false``
they would see both lines, the dead one ending at the step where it crashed.
"""

from __future__ import annotations

import csv
import importlib.util
import math
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import IO, Any

from kantai_tui.core.errors import BadInputError, DiskFullError, KantaiError, OutputError, disk_full_cause
from kantai_tui.core.files import (
    commit_folder,
    fsync_dir,
    make_writable_dir,
    read_json,
    staging_path,
    sweep_stale,
    write_text_atomic,
)
from kantai_tui.core.runs.folder import METRIC_FIELDS, metrics_row
from kantai_tui.core.runs.history import RunHistory

TENSORBOARD_INSTALL = "pip install 'kantai-tui[tensorboard]'"
LEADING_COLUMNS = ("run", "kind", "step", "tokens", "elapsed_s")
EVAL_TAGS = {"eval_loss": "eval/loss"}  # the other eval fields are eval/<field>
PLACED = frozenset({"tokens", "elapsed_s"})  # put on an eval row by load_history: its x-axes, not a measure
EVENT_FILE_PREFIX = "events.out.tfevents."
FLUSH_S = 10  # a live TensorBoard sees a sink's points this soon without a flush() from the trainer


# --- CSV -------------------------------------------------------------------------------------------


def csv_columns() -> list[str]:
    """The CSV header: where each row comes from, then every step and eval field of METRIC_FIELDS once."""
    fields = [*METRIC_FIELDS["step"], *METRIC_FIELDS["eval"]]
    return [*LEADING_COLUMNS, *dict.fromkeys(f for f in fields if f not in LEADING_COLUMNS)]


def logged_rows(history: RunHistory) -> list[dict]:
    """The run's step and eval rows in step order, a step's evaluation after its step row."""
    return sorted([*history.steps, *history.evals], key=lambda row: (row["step"], row.get("kind") == "eval"))


def csv_rows(history: RunHistory) -> tuple[list[str], list[list[object]]]:
    """(columns, rows) of one run: one row per logged step or evaluation, "" where a row lacks a field."""
    columns = csv_columns()
    rows = [[_cell(row, column, history.name) for column in columns] for row in logged_rows(history)]
    return columns, rows


def _cell(row: dict, column: str, run: str) -> object:
    if column == "run":
        return run
    value = row.get(column)
    return "" if value is None else value


def write_csv(histories: Sequence[RunHistory], path: str | Path) -> int:
    """Write the runs' rows into one CSV (the ``run`` column tells them apart); ``-`` is stdout.

    A file is written beside its name, fsynced and renamed over it, so a reader (or a second export)
    never finds half a table. Returns the number of rows written.
    """
    columns = csv_columns()
    rows = [row for history in histories for row in csv_rows(history)[1]]
    if str(path) == "-":
        _write_table(sys.stdout, columns, rows)
        sys.stdout.flush()
        return len(rows)
    target = Path(path).expanduser()
    if target.is_dir():
        raise OutputError(f"cannot write the CSV {target}: it is a folder; give a file name")
    if not target.parent.is_dir():
        raise OutputError(f"cannot write the CSV {target}: there is no folder {target.parent}")
    try:
        write_text_atomic(target, lambda handle: _write_table(handle, columns, rows), newline="")
        fsync_dir(target.parent)
    except OSError as err:
        raise _write_error(target, err) from err
    return len(rows)


def _write_table(handle: IO[str], columns: list[str], rows: list[list[object]]) -> None:
    writer = csv.writer(handle, lineterminator="\n")  # "\n", as every other line kantai writes
    writer.writerow(columns)
    writer.writerows(rows)


def _write_error(path: Path, err: OSError) -> KantaiError:
    """An OSError while writing ``path`` as a typed error: disk full (exit 7) or an unwritable place (exit 2)."""
    reason = disk_full_cause(err)
    if reason is not None:
        return DiskFullError(f"disk full: no room to write {path} ({reason}); free space and export again")
    return OutputError(f"cannot write {path}: {err.strerror or err}")


# --- TensorBoard -----------------------------------------------------------------------------------


def _tensorboard() -> tuple[Any, ModuleType, ModuleType]:
    """The tensorboard package's event writer and protos, or a BadInputError that names the install."""
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError as err:
        if importlib.util.find_spec("tensorboard") is None:
            raise BadInputError(f"TensorBoard export needs the tensorboard package: {TENSORBOARD_INSTALL}") from None
        raise _broken_tensorboard(err) from err  # installed, but an incompatible protobuf or a half-removed copy
    return EventFileWriter, event_pb2, summary_pb2


def _broken_tensorboard(err: ImportError) -> BadInputError:
    return BadInputError(
        f"the tensorboard package cannot be imported ({err}); reinstall it: "
        f"pip install --force-reinstall 'kantai-tui[tensorboard]'"
    )


def require_tensorboard() -> None:
    """Fail now, before anything is written, when TensorBoard export cannot work."""
    _tensorboard()


def scalars(row: dict) -> dict[str, float]:
    """TensorBoard tags and values of one typed metrics row: ``train/<field>`` for every number of a step
    row (so a field the trainer adds is exported too), ``eval/loss`` and ``eval/<field>`` for an eval row."""
    kind = row.get("kind")
    if kind == "step":
        return {f"train/{k}": float(v) for k, v in row.items() if k not in ("kind", "step") and _finite(v)}
    if kind == "eval":
        skip = {"kind", "step", *PLACED}
        return {EVAL_TAGS.get(k, f"eval/{k}"): float(v) for k, v in row.items() if k not in skip and _finite(v)}
    return {}


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class TensorBoardSink:
    """Writes metrics.jsonl rows, as the trainer writes them, into a TensorBoard event file in ``log_dir``.

    ``global_step`` is the training step. The wall time of a point is ``start_time`` + the row's
    ``elapsed_s`` when ``start_time`` is given (an export: run.json's ``created``, so TensorBoard's
    "relative" axis is training time), else the time it is written (live). An eval row without
    ``elapsed_s`` (as the trainer writes it) takes its step row's. A ``started`` row writes the restart
    marker described in the module docstring; checkpoint, finished and other rows are not scalars.
    Each process writes its own event file (TensorBoard reads a folder's files in the order they were
    made), so a resumed trainer appends nothing to its predecessor's file.
    """

    def __init__(self, log_dir: Path, start_time: float | None = None) -> None:
        writer_class, self._events, self._summaries = _tensorboard()
        self._log_dir = Path(log_dir)
        try:
            self._writer = writer_class(str(log_dir), flush_secs=FLUSH_S)
        except OSError as err:
            raise _write_error(self._log_dir, err) from err
        self._start_time = start_time
        self._elapsed: float | None = None  # of the last step row: where an eval row after it is placed
        self._closed = False

    def write(self, row: dict) -> None:
        typed = metrics_row(row)
        if typed is None:
            return
        if typed.get("kind") == "started":
            self._restart(typed.get("start_step", 0))
            return
        values = scalars(typed)
        elapsed = typed.get("elapsed_s")
        if not _finite(elapsed):
            elapsed = self._elapsed
        elif typed.get("kind") == "step":
            self._elapsed = elapsed
        if values:
            value = self._summaries.Summary.Value
            summary = self._summaries.Summary(value=[value(tag=t, simple_value=v) for t, v in values.items()])
            self._add(self._events.Event(step=typed["step"], wall_time=self._wall_time(elapsed), summary=summary))

    def _restart(self, start_step: int) -> None:
        """TensorBoard's restart marker: points at steps after ``start_step`` are the dead trainer's."""
        log = self._events.SessionLog(status=self._events.SessionLog.START)
        self._add(self._events.Event(step=start_step + 1, wall_time=self._wall_time(None), session_log=log))

    def _wall_time(self, elapsed: float | None) -> float:
        if self._start_time is None or elapsed is None:
            return time.time()
        return self._start_time + elapsed

    def _add(self, event: object) -> None:
        self._call(self._writer.add_event, event)

    def flush(self) -> None:
        """Hand every written point to the file now (the writer also does so every FLUSH_S seconds)."""
        if not self._closed:
            self._call(self._writer.flush)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._call(self._writer.close)

    def _call(self, method: Any, *args: object) -> None:
        """The writer's own thread writes the file; its OSError (a full disk) comes back from the next call,
        and leaves as a typed error naming the folder, as every other writer's does."""
        try:
            method(*args)
        except OSError as err:
            raise _write_error(self._log_dir, err) from err

    def __enter__(self) -> TensorBoardSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def export_tensorboard(histories: Sequence[RunHistory], log_dir: str | Path) -> list[Path]:
    """Write each run's trajectory into ``log_dir/<run>/``, so ``tensorboard --logdir log_dir`` shows the
    runs side by side; returns those folders.

    A run's folder is built beside its name and renamed into place whole (``commit_folder``), so exporting
    again replaces the last export instead of adding a second copy of every point; a folder of that name
    holding anything but event files (a run folder, say) is refused, never replaced.
    """
    require_tensorboard()
    root = Path(log_dir).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise OutputError(f"cannot write TensorBoard events into {root}: it is a file, not a folder")
    try:
        make_writable_dir(root)
    except OSError as err:
        raise _write_error(root, err) from err
    sweep_stale(root)  # what a killed export left behind, before TensorBoard shows it as a run
    for history in histories:
        _check_replaceable(root / history.name)
    return [_export_run(history, root / history.name) for history in histories]


def _check_replaceable(folder: Path) -> None:
    """Only an earlier export (a folder of event files) may be replaced by a new one."""
    if not folder.exists() and not folder.is_symlink():
        return
    foreign = folder.is_symlink() or not folder.is_dir()
    foreign = foreign or any(not (p.is_file() and p.name.startswith(EVENT_FILE_PREFIX)) for p in folder.iterdir())
    if foreign:
        raise BadInputError(f"{folder} exists and holds more than TensorBoard event files; export into another folder")


def _export_run(history: RunHistory, target: Path) -> Path:
    staging = staging_path(target)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with TensorBoardSink(staging, start_time=_created(history)) as sink:
            for row in logged_rows(history):
                sink.write(row)
        commit_folder(staging, target)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise _write_error(target, err) from err
    return target


def _created(history: RunHistory) -> float | None:
    """When the run was created (run.json), the origin of its points' wall times."""
    created = (read_json(history.path / "run.json") or {}).get("created")
    return float(created) if isinstance(created, (int, float)) and _finite(created) else None
