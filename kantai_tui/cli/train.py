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

from kantai_tui.cli.args import CORPUS_HELP, add_text_field, batch_size, corpus_arg, emit_json
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
    from kantai_tui.cli.render import EventPrinter, ProgressLine
    from kantai_tui.core.training.distributed import Dist
    from kantai_tui.core.training.events import Event


def _time_budget(text: str | None) -> float | None:
    """--time as seconds: '90s', '10m', '1h30m' or plain seconds; a bad one is a BadInputError naming the option."""
    if text is None:
        return None
    try:
        return parse_duration(text)
    except BadInputError as err:
        raise BadInputError(f"--time: {err}") from None


# what --resume may be given with: where the run is, how to watch it, and a new length (an extension);
# everything else is the run's own
RESUME_OPTIONS = frozenset({"resume", "runs_dir", "detach", "json", "help", "tensorboard"})
LENGTH_OPTIONS = frozenset({"epochs", "max_steps", "time"})
# options that are not settings of the run a fork trains
NOT_SETTINGS = frozenset({"corpus", "tokenizer", "run", "fork", "reset_optimizer"})
FIELD_OF = {"time": "time_s", "mask_rate": "mlm_probability"}  # option dest -> TrainConfig field, where they differ


def _new_run_options(train: argparse.ArgumentParser) -> dict[str, tuple[str, object]]:
    """dest -> (option as spelled, its default) for the options that shape a new run."""
    return {
        action.dest: (action.option_strings[0], action.default)
        for action in train._actions
        if action.option_strings and action.dest not in RESUME_OPTIONS
    }


def _given(args: argparse.Namespace) -> dict[str, str]:
    """dest -> option as spelled, for the run settings given on the command line (not at their default)."""
    return {
        dest: option
        for dest, (option, default) in args.new_run_options.items()
        if getattr(args, dest, default) != default
    }


def _refuse_new_settings(args: argparse.Namespace, run_dir: Path) -> None:
    """--resume continues a run exactly as it was created, with one exception, a new length (an extension):
    any other setting given with it is refused, not ignored, with the command that forks a run with it."""
    everything = _given(args)
    if not any(d not in LENGTH_OPTIONS for d in everything):
        return
    given = {d: o for d, o in everything.items() if d not in LENGTH_OPTIONS}
    words = [  # the fork that does what was asked: every setting given, the length too
        w for d, o in everything.items() for w in ([o] if getattr(args, d) is True else [o, str(getattr(args, d))])
    ]
    command = kantai_command("train", "--from", run_dir.name, *words, runs_dir=args.runs_dir)
    raise BadInputError(
        f"{', '.join(given.values())}: a run resumes with the settings it was created with (run.json); only "
        f"its length (--epochs, --max-steps, --time) can change; to go on from it with new settings, fork it: "
        f"{command}"
    )


def add_commands(commands: argparse._SubParsersAction, positive: type) -> None:
    """Register train, runs, follow and stop."""
    train = commands.add_parser("train", help="pretrain a RoBERTa masked LM on a corpus (a run)")
    train.add_argument(
        "corpus", nargs="?", metavar="CORPUS", type=corpus_arg, help=f"{CORPUS_HELP} (not with --resume)"
    )
    train.add_argument(
        "--resume",
        metavar="RUN",
        help="continue a run from its newest verified checkpoint; with --epochs, --max-steps or --time, "
        "extend it to that length (the lr re-warms, then decays to the new end)",
    )
    train.add_argument(
        "--from",
        dest="fork",
        metavar="RUN[@STEP]",
        help="fork: a new run starting from RUN's checkpoint at STEP (default: its newest), with RUN's settings "
        "except those given; CORPUS defaults to RUN's",
    )
    train.add_argument(
        "--reset-optimizer",
        action="store_true",
        help="with --from: start AdamW's moments afresh instead of taking RUN's",
    )
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
    train.add_argument(
        "--batch-size",
        type=batch_size,
        metavar="N|auto",
        help="the global batch (default: on CUDA measured at the start, the one with the best time to quality, "
        "said in one line; on a CPU 32); auto measures on any device",
    )
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
        help="torch.compile the training step; auto = on CUDA (with CUDA graphs, reduce-overhead, when one "
        "process runs whole steps) and on a CPU for a --time of 2m or more; on = the default mode; the first "
        "steps pay the compile",
    )
    train.add_argument(
        "--dropout", type=float, metavar="P", help="hidden and attention dropout (default: packed 0, seed 0.1)"
    )
    train.add_argument("--errors", choices=ERROR_MODES, default="strict")
    add_text_field(train)
    train.add_argument(
        "--probes", metavar="FILE", help="fill-mask sentences (one <mask> each) to evaluate at every checkpoint"
    )
    train.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="also write TensorBoard event files into DIR/RUN while training (kept for resumes; needs the "
        "tensorboard extra)",
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
    from kantai_tui.core.runs.history import SORTS

    runs = commands.add_parser(
        "runs", help="list runs: progress, speed, held-out quality and the settings that differ between them"
    )
    runs.add_argument("--runs-dir", metavar="DIR", default=DEFAULT_RUNS_DIR)
    runs.add_argument(
        "--sort",
        choices=list(SORTS),
        default="updated",
        help="order of the rows, best or newest first: loss lowest first, accuracies and speed highest first "
        "(default: updated)",
    )
    runs.add_argument("--json", action="store_true")
    compare = commands.add_parser(
        "compare", help="compare runs: settings that differ, held-out loss at equal tokens and time, time to a loss"
    )
    compare.add_argument("runs", nargs="+", metavar="RUN")
    compare.add_argument("--runs-dir", metavar="DIR", default=DEFAULT_RUNS_DIR)
    compare.add_argument(
        "--target",
        type=float,
        metavar="LOSS",
        help="held-out loss to time the runs to (default: the worst final held-out loss among them)",
    )
    compare.add_argument("--json", action="store_true")
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
        from kantai_tui.core.training.step import may_use_cuda

        size = _config(args).resolved(cuda=may_use_cuda(args.device)).batch_size  # None: measured, divides
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
    if args.tensorboard:
        process.write_tensorboard_dir(run_dir, args.tensorboard)
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
    with cli_render.progress_bar(quiet=args.json) as line:

        def event(item: Event) -> None:
            line.clear()
            printer.event(item)

        def note(message: str) -> None:
            line.clear()
            printer.note(message)

        return process.execute(run_dir, event, note, dist, on_progress=line)


def _run_folder(args: argparse.Namespace) -> tuple[str, Path]:
    """The run to resume (--resume) or a newly created one."""
    from kantai_tui.core.runs import process

    if args.resume:
        if args.corpus or args.fork:
            raise BadInputError("give either CORPUS (a new run), --from RUN (a fork) or --resume RUN, not two")
        run_dir = process.run_path(args.runs_dir, args.resume)
        if not (run_dir / "run.json").is_file():
            raise BadInputError(f"no run named {args.resume!r} in {run_dir.parent}")
        _refuse_new_settings(args, run_dir)
        _extend(args, run_dir)
        return args.resume, run_dir
    if args.reset_optimizer and not args.fork:
        raise BadInputError("--reset-optimizer goes with --from RUN (a fork)")
    if args.fork:
        return _fork(args)
    if not args.corpus:
        raise BadInputError("give a CORPUS to train on (or --resume RUN, or --from RUN)")
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


def _length(args: argparse.Namespace) -> dict[str, object] | None:
    """The run length the command line gives, as config fields, or None if it gives none."""
    if args.epochs is None and args.max_steps is None and args.time is None:
        return None
    return run_length(args.epochs, args.max_steps, _time_budget(args.time))


def _extend(args: argparse.Namespace, run_dir: Path) -> None:
    """--resume RUN with a length: the run's length becomes it (lineage.extend_run), said in one line."""
    from kantai_tui.core.runs.lineage import extend_run

    length = _length(args)
    if length is not None and extend_run(run_dir, length, args.runs_dir) and not args.json:
        print(
            f"kantai: run {run_dir.name} extended: {_length_words(length)} from its start; the lr warms up again "
            "from where it was, then decays to the new end",
            file=sys.stderr,
        )


def _length_words(length: dict[str, object]) -> str:
    words = []
    if length.get("epochs") is not None:
        words.append(f"{length['epochs']:g} epochs")
    if length.get("max_steps") is not None:
        words.append(f"{length['max_steps']:,} steps")
    if isinstance(length.get("time_s"), (int, float)):
        words.append(duration(float(length["time_s"])))  # type: ignore[arg-type]
    return " or ".join(words) + (", whichever comes first," if len(words) > 1 else "")


def _fork(args: argparse.Namespace) -> tuple[str, Path]:
    """--from RUN[@STEP]: a new run from the parent's checkpoint, the parent's settings but those given."""
    from kantai_tui.core.runs import process
    from kantai_tui.core.runs.lineage import find_fork, fork_config

    if args.tokenizer:
        raise BadInputError("--tokenizer: a fork uses its parent's tokenizer (its weights were trained with it)")
    fork = find_fork(args.runs_dir, args.fork, keep_optimizer=not args.reset_optimizer)
    full = _config(args, corpus=args.corpus or "")
    changes = {FIELD_OF.get(d, d): getattr(full, FIELD_OF.get(d, d)) for d in _given(args) if d not in NOT_SETTINGS}
    length = _length(args)
    if length is not None:
        changes.update(length)
    if args.corpus:
        changes["corpus"] = args.corpus
    cfg = fork_config(fork, changes)
    name = args.run or _fork_name(args.runs_dir, fork.run_dir.name, fork.at.step)
    run_dir = process.create_run(args.runs_dir, name, cfg, None, parent=fork)
    if not args.json:
        print(f"kantai: run {name} starts from {fork.run_dir.name} at step {fork.at.step:,}", file=sys.stderr)
    return name, run_dir


def _fork_name(runs_dir: str, parent: str, step: int) -> str:
    """'base-from-500', or 'base-from-500-2'… when that name is taken (trying lrs from one checkpoint)."""
    from kantai_tui.core.runs.folder import runs_root

    stem = f"{parent[:40]}-from-{step}"  # within NAME_RE's 64 characters, with '-from-' 8 digits and '-9999'
    root = runs_root(runs_dir)
    return next(n for n in (stem, *(f"{stem}-{i}" for i in range(2, 10_000))) if not (root / n).exists())


def _config(args: argparse.Namespace, corpus: str | None = None) -> TrainConfig:
    return TrainConfig(
        corpus=args.corpus if corpus is None else corpus,
        tokenizer_dir="",
        preset=args.preset,
        recipe=args.recipe,
        block_size=args.block_size,
        batch_size=None if args.batch_size == "auto" else args.batch_size,
        measure_batch=args.batch_size == "auto",
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
        text_field=args.text_field,
        precision=args.precision,
        auto_batch_size=args.auto_batch_size,
        compile=args.compile,
        dropout=args.dropout,
        probes=str(Path(args.probes).expanduser().resolve()) if args.probes else None,
    )


def cmd_runs(args: argparse.Namespace) -> int:
    from kantai_tui.core.runs.folder import list_runs, runs_root
    from kantai_tui.core.runs.history import load_history, runs_table

    runs = list_runs(runs_root(args.runs_dir))
    rows = runs_table([load_history(Path(r.path)) for r in runs], args.sort)
    if args.json:
        stalled = {r.name: r.stalled_s for r in runs}
        return emit_json([{**row, "stalled_s": stalled.get(row["run"])} for row in rows])
    from kantai_tui.cli import render as cli_render

    cli_render.print_runs(rows, {r.name: r.stalled_s for r in runs}, args.runs_dir)
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from kantai_tui.core.runs import process
    from kantai_tui.core.runs.history import compare, load_history

    if len(set(args.runs)) < 2:
        raise BadInputError(f"compare needs two runs or more (got {', '.join(dict.fromkeys(args.runs))})")
    histories = []
    for name in dict.fromkeys(args.runs):
        run_dir = process.run_path(args.runs_dir, name)
        if not (run_dir / "run.json").is_file():
            raise BadInputError(f"no run named {name!r} in {run_dir.parent}")
        histories.append(load_history(run_dir, with_parent=True))
    report = compare(histories, args.target)
    if args.json:
        return emit_json(report)
    from kantai_tui.cli import render as cli_render

    cli_render.print_compare(report)
    return EXIT_OK


def cmd_follow(args: argparse.Namespace) -> int:
    from kantai_tui.cli import render as cli_render
    from kantai_tui.core.runs import process

    run_dir = process.run_path(args.runs_dir, args.run)
    if not (run_dir / "run.json").is_file():
        raise BadInputError(f"no run named {args.run!r} in {run_dir.parent}")
    printer = cli_render.EventPrinter(json_lines=args.json, runs_dir=args.runs_dir)
    state, stalled = "unknown", False
    with cli_render.progress_bar(quiet=args.json) as line:
        for rows, state in process.follow(run_dir):
            if rows:
                line.clear()
            for row in rows:
                printer.row(row)
            stalled = _say_stall(printer, run_dir, stalled)
            _show_preparation(line, run_dir, state)
    unreadable = " (its status.json is missing or unreadable)" if state == "unknown" else ""
    printer.note(f"run {args.run}: {state}{unreadable}")
    return EXIT_OK if state in ("finished", "stopped") else EXIT_RUN_DID_NOT_FINISH


def _show_preparation(line: ProgressLine, run_dir: Path, state: str) -> None:
    """A detached run's tokenizer, token cache or packing, as the trainer recorded it in status.json."""
    from kantai_tui.core.progress import Progress
    from kantai_tui.core.runs.folder import read_status

    progress = Progress.from_dict(read_status(run_dir).get("preparation")) if state == "preparing" else None
    if progress is None:
        line.clear()
    else:
        line.show(progress)


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


COMMANDS = {
    "train": cmd_train,
    "runs": cmd_runs,
    "compare": cmd_compare,
    "follow": cmd_follow,
    "stop": cmd_stop,
    "presets": cmd_presets,
}
