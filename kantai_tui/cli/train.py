"""CLI commands for runs: ``train``, ``runs``, ``follow``, ``stop``.

``kantai train`` in the foreground and the detached trainer are the same code path
(``process.execute``); ``--detach`` only decides which process runs it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kantai_tui.cli.args import CORPUS_HELP, corpus_arg
from kantai_tui.core.corpus.files import ERROR_MODES
from kantai_tui.core.errors import EXIT_OK, EXIT_RUN_DID_NOT_FINISH, BadInputError, KantaiError
from kantai_tui.core.paths import DEFAULT_RUNS_DIR, kantai_command
from kantai_tui.core.training.config import (
    ATTENTION_SPANS,
    COMPILE_MODES,
    DEFAULT_EPOCHS,
    DEFAULT_TIME_S,
    PRECISIONS,
    RECIPES,
    SCHEDULES,
    TrainConfig,
    parse_duration,
    run_length,
)
from kantai_tui.core.training.presets import PRESETS
from kantai_tui.format import duration

if TYPE_CHECKING:
    from kantai_tui.cli.render import EventPrinter
    from kantai_tui.core.training.distributed import Dist


def _time_budget(text: str | None) -> float | None:
    """--time as seconds: '90s', '10m', '1h30m' or plain seconds; a bad one is a BadInputError naming the option."""
    if text is None:
        return None
    try:
        return parse_duration(text)
    except BadInputError as err:
        raise BadInputError(f"--time: {err}") from None


# what --resume may be given with: where the run is and how to watch it; everything else is the run's own
RESUME_OPTIONS = frozenset({"resume", "runs_dir", "detach", "json", "help"})


def _new_run_options(train: argparse.ArgumentParser) -> dict[str, tuple[str, object]]:
    """dest -> (option as spelled, its default) for the options that shape a new run."""
    return {
        action.dest: (action.option_strings[0], action.default)
        for action in train._actions
        if action.option_strings and action.dest not in RESUME_OPTIONS
    }


def _refuse_new_settings(args: argparse.Namespace, run_dir: Path) -> None:
    """--resume continues a run exactly as it was created: a setting given with it is refused, not ignored."""
    given = [
        (option, getattr(args, dest))
        for dest, (option, default) in args.new_run_options.items()
        if getattr(args, dest, default) != default
    ]
    if not given:
        return
    from kantai_tui.core.runs import process

    words = [w for option, value in given for w in ([option] if value is True else [option, str(value)])]
    command = kantai_command("train", process.load_config(run_dir).corpus, *words, runs_dir=args.runs_dir)
    raise BadInputError(
        f"{', '.join(o for o, _ in given)}: a run resumes with the settings it was created with (run.json), "
        f"and a longer run cannot be added on yet; start a new run with them: {command}"
    )


def add_commands(commands: argparse._SubParsersAction, positive: type) -> None:
    """Register train, runs, follow and stop."""
    train = commands.add_parser("train", help="pretrain a RoBERTa masked LM on a corpus (a run)")
    train.add_argument(
        "corpus", nargs="?", metavar="CORPUS", type=corpus_arg, help=f"{CORPUS_HELP} (not with --resume)"
    )
    train.add_argument("--resume", metavar="RUN", help="continue a run from its newest verified checkpoint")
    train.add_argument("--tokenizer", metavar="DIR", help="tokenizer folder (default: train one into the run)")
    train.add_argument("--preset", choices=list(PRESETS), default="tiny")
    train.add_argument("--recipe", choices=RECIPES, default="packed", help="seed = the tutorial's pipeline exactly")
    train.add_argument(
        "--run",
        "--name",
        dest="run",
        metavar="NAME",
        help="run name (default: PRESET-RECIPE-TIMESTAMP); under torchrun spell it --name",
    )
    train.add_argument("--runs-dir", metavar="DIR", default=DEFAULT_RUNS_DIR)
    train.add_argument(
        "--epochs", type=float, help=f"passes over the corpus (default: {DEFAULT_EPOCHS:g}, or --time alone)"
    )
    train.add_argument("--max-steps", type=positive, metavar="N")
    train.add_argument(
        "--time",
        metavar="BUDGET",
        help="training time budget, e.g. 90s, 10m, 1h30m: the lr schedule follows the clock and the run "
        f"ends there (default: {DEFAULT_EPOCHS:g} epochs or {duration(DEFAULT_TIME_S)}, whichever comes first)",
    )
    train.add_argument("--schedule", choices=SCHEDULES, default="linear", help="lr after warm-up (default linear)")
    train.add_argument(
        "--mask-rate",
        type=float,
        metavar="P",
        help="share of tokens masked in training (default: packed 0.3, seed 0.15)",
    )
    train.add_argument(
        "--attention-span",
        choices=ATTENTION_SPANS,
        help="packed: attend within each line, positions restarting per line (default), or across the block",
    )
    train.add_argument("--batch-size", type=positive, metavar="N")
    train.add_argument("--grad-accum", type=positive, default=1, metavar="N")
    train.add_argument("--lr", type=float)
    train.add_argument("--block-size", type=positive, default=128, metavar="N")
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--log-every", type=positive, default=10, metavar="N")
    train.add_argument("--eval-every", type=positive, default=200, metavar="N")
    train.add_argument("--checkpoint-every", type=positive, default=500, metavar="N")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 …")
    train.add_argument(
        "--auto-batch-size",
        action="store_true",
        help="on out-of-memory, run each batch in smaller chunks and go on (same effective batch)",
    )
    train.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto = bf16 autocast on CUDA and on CPUs with native bf16, else fp32",
    )
    train.add_argument(
        "--compile",
        choices=COMPILE_MODES,
        default="auto",
        help="torch.compile the training step (auto = on CUDA only; the first steps pay the compile)",
    )
    train.add_argument(
        "--dropout", type=float, metavar="P", help="hidden and attention dropout (default: packed 0, seed 0.1)"
    )
    train.add_argument("--errors", choices=ERROR_MODES, default="strict")
    train.add_argument(
        "--probes", metavar="FILE", help="fill-mask sentences (one <mask> each) to evaluate at every checkpoint"
    )
    train.add_argument("--detach", action="store_true", help="train in the background; follow with 'kantai follow RUN'")
    train.add_argument("--json", action="store_true", help="print events as JSON lines")
    train.set_defaults(new_run_options=_new_run_options(train))
    presets = commands.add_parser("presets", help="model presets: parameters by part, training memory, FLOPs per token")
    presets.add_argument(
        "--tokenizer", metavar="DIR", help="size the vocabulary from this tokenizer (default 52,000 tokens)"
    )
    presets.add_argument("--batch-size", type=positive, default=32, metavar="N")
    presets.add_argument("--block-size", type=positive, default=128, metavar="N")
    presets.add_argument("--json", action="store_true")
    runs = commands.add_parser("runs", help="list runs")
    runs.add_argument("--runs-dir", metavar="DIR", default=DEFAULT_RUNS_DIR)
    runs.add_argument("--json", action="store_true")
    follow = commands.add_parser("follow", help="watch a run live until it ends")
    follow.add_argument("run", metavar="RUN")
    follow.add_argument("--runs-dir", metavar="DIR", default=DEFAULT_RUNS_DIR)
    follow.add_argument("--json", action="store_true", help="print metrics rows as JSON lines")
    stop = commands.add_parser("stop", help="stop a run: it writes a checkpoint, then exits")
    stop.add_argument("run", metavar="RUN")
    stop.add_argument("--runs-dir", metavar="DIR", default=DEFAULT_RUNS_DIR)
    stop.add_argument("--wait", type=float, default=60.0, metavar="S", help="seconds to wait for it (default 60)")
    stop.add_argument("--json", action="store_true", help='print {"run": ..., "state": ...}')


def cmd_train(args: argparse.Namespace) -> int:
    from kantai_tui.core.training import distributed

    dist = distributed.from_env()
    if dist is None:
        return _train(args, None)
    if args.detach:
        raise BadInputError(
            "--detach does not combine with torchrun; keep torchrun alive with tmux, or "
            "'setsid nohup torchrun … > train.out 2>&1 &'"
        )
    _check_global_batch(args, dist.world)
    distributed.init(dist, args.device)
    code = _train(args, dist)  # an error leaves without a goodbye: torchrun ends the other ranks
    distributed.shutdown()
    return code


def _check_global_batch(args: argparse.Namespace, world: int) -> None:
    """Before any process group or run folder: the global batch must split evenly across the ranks."""
    from kantai_tui.core.runs import process
    from kantai_tui.core.training import distributed

    if args.resume:
        run_dir = process.run_path(args.runs_dir, args.resume)
        size = process.load_config(run_dir).batch_size if (run_dir / "run.json").is_file() else None
    else:
        size = args.batch_size or _config(args).resolved().batch_size
    if size is not None:
        distributed.check_global_batch(size, world)


def _train(args: argparse.Namespace, dist: Dist | None) -> int:
    """Create or find the run (rank 0 alone creates it and tells the others its name), then train."""
    from kantai_tui.core.runs import process
    from kantai_tui.core.training import distributed

    if dist is not None and not dist.main:
        name = distributed.share_text(dist, None)
        if not name:
            raise BadInputError("rank 0 could not start the run; its message above says why")
        run_dir = process.run_path(args.runs_dir, name)
        return process.execute(
            run_dir, lambda event: None, lambda note: print(f"[rank {dist.rank}] {note}", file=sys.stderr), dist
        )
    try:
        name, run_dir = _run_folder(args)
    except KantaiError:
        if dist is not None:
            distributed.share_text(dist, "")
        raise
    if dist is not None:
        distributed.share_text(dist, name)
    if args.detach:
        pid = process.start_detached(args.runs_dir, name)
        if args.json:
            print(json.dumps({"run": name, "pid": pid, "run_dir": str(run_dir), "log": str(run_dir / "train.log")}))
            return EXIT_OK
        print(f"run {name} training in the background (pid {pid}); log: {run_dir / 'train.log'}")
        watch, stop = (kantai_command(verb, name, runs_dir=args.runs_dir) for verb in ("follow", "stop"))
        print(f"watch: {watch}    stop: {stop}")
        return EXIT_OK
    from kantai_tui.cli import render as cli_render

    printer = cli_render.EventPrinter(json_lines=args.json, runs_dir=args.runs_dir)
    return process.execute(run_dir, printer.event, printer.note, dist)


def _run_folder(args: argparse.Namespace) -> tuple[str, Path]:
    """The run to resume (--resume) or a newly created one."""
    from kantai_tui.core.runs import process

    if args.resume:
        if args.corpus:
            raise BadInputError("give either CORPUS (a new run) or --resume RUN, not both")
        run_dir = process.run_path(args.runs_dir, args.resume)
        if not (run_dir / "run.json").is_file():
            raise BadInputError(f"no run named {args.resume!r} in {run_dir.parent}")
        _refuse_new_settings(args, run_dir)
        return args.resume, run_dir
    if not args.corpus:
        raise BadInputError("give a CORPUS to train on (or --resume RUN)")
    from kantai_tui.format import default_run_name

    name = args.run or default_run_name(args.preset, args.recipe)
    run_dir = process.create_run(args.runs_dir, name, _config(args), args.tokenizer)
    if args.epochs is None and args.max_steps is None and args.time is None and not args.json:
        print(
            f"kantai: training {DEFAULT_EPOCHS:g} epochs or {duration(DEFAULT_TIME_S)}, whichever comes first "
            "(the defaults; --time, --epochs or --max-steps to choose)",
            file=sys.stderr,
        )
    return name, run_dir


def _config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        corpus=args.corpus,
        tokenizer_dir="",
        preset=args.preset,
        recipe=args.recipe,
        block_size=args.block_size,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        lr=args.lr,
        **run_length(args.epochs, args.max_steps, _time_budget(args.time)),
        schedule=args.schedule,
        attention_span=args.attention_span,
        mlm_probability=args.mask_rate,
        seed=args.seed,
        log_every=args.log_every,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
        device=args.device,
        errors=args.errors,
        precision=args.precision,
        auto_batch_size=args.auto_batch_size,
        compile=args.compile,
        dropout=args.dropout,
        probes=str(Path(args.probes).expanduser().resolve()) if args.probes else None,
    )


def cmd_runs(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from kantai_tui.core.runs.folder import list_runs, runs_root

    runs = list_runs(runs_root(args.runs_dir))
    if args.json:
        json.dump([asdict(r) for r in runs], sys.stdout, indent=1)
        sys.stdout.write("\n")
        return EXIT_OK
    from kantai_tui.cli import render as cli_render

    cli_render.print_runs(runs, args.runs_dir)
    return EXIT_OK


def cmd_follow(args: argparse.Namespace) -> int:
    from kantai_tui.cli import render as cli_render
    from kantai_tui.core.runs import process

    run_dir = process.run_path(args.runs_dir, args.run)
    if not (run_dir / "run.json").is_file():
        raise BadInputError(f"no run named {args.run!r} in {run_dir.parent}")
    printer = cli_render.EventPrinter(json_lines=args.json, runs_dir=args.runs_dir)
    state, stalled = "unknown", False
    for rows, state in process.follow(run_dir):  # noqa: B007 - the state after the last poll is read below
        for row in rows:
            printer.row(row)
        stalled = _say_stall(printer, run_dir, stalled)
    unreadable = " (its status.json is missing or unreadable)" if state == "unknown" else ""
    printer.note(f"run {args.run}: {state}{unreadable}")
    return EXIT_OK if state in ("finished", "stopped") else EXIT_RUN_DID_NOT_FINISH


def _say_stall(printer: EventPrinter, run_dir: Path, was: bool) -> bool:
    """One note when a running trainer stops making steps (frozen, or a hung disk), one when it goes on."""
    from kantai_tui.core.runs.folder import lock_holder, stalled_for
    from kantai_tui.format import state_text

    seconds = stalled_for(run_dir)
    if seconds is not None and not was:
        pid = lock_holder(run_dir)
        printer.note(
            f"run {run_dir.name}: {state_text('running', seconds)}; its trainer (pid {pid}) is alive but not "
            f"training: if it was stopped (Ctrl-Z, SIGSTOP), 'kill -CONT {pid}' lets it go on"
        )
    elif seconds is None and was:
        printer.note(f"run {run_dir.name}: training again")
    return seconds is not None


def cmd_stop(args: argparse.Namespace) -> int:
    from kantai_tui.core.runs import process

    state = process.stop_run(args.runs_dir, args.run, args.wait)
    if args.json:
        print(json.dumps({"run": args.run, "state": state}))
    else:
        print(f"run {args.run}: {state}")
    return EXIT_OK


def cmd_presets(args: argparse.Namespace) -> int:
    from kantai_tui.core.tokenizer.bpe import load_tokenizer
    from kantai_tui.core.training.presets import model_size

    vocab = load_tokenizer(args.tokenizer).get_vocab_size() if args.tokenizer else 52_000
    sizes = [model_size(p, vocab, args.batch_size, args.block_size) for p in PRESETS.values()]
    if args.json:
        json.dump({"tokenizer_vocab": vocab, "presets": [s.to_dict() for s in sizes]}, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return EXIT_OK
    from kantai_tui.cli import render as cli_render

    cli_render.print_presets(sizes, vocab, args.batch_size, args.block_size)
    return EXIT_OK


COMMANDS = {"train": cmd_train, "runs": cmd_runs, "follow": cmd_follow, "stop": cmd_stop, "presets": cmd_presets}
