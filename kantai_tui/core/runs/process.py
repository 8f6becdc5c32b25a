"""Starting, running, stopping and following runs as processes.

- ``create_run`` writes a new run folder (run.json) and nothing else.
- ``execute`` is what the trainer process does: take the lock, train the tokenizer if the run
  has none, drive the Trainer, record every event, and turn signals into clean stops:
  SIGTERM/SIGINT = checkpoint, mark stopped, exit 143/130; SIGHUP (the SSH session died) =
  move output to train.log and keep training.
- ``start_detached`` launches ``python -m kantai_tui train --resume NAME`` in its own session,
  stdin from /dev/null, output to train.log: closing the terminal or the TUI never stops it.
- ``follow`` yields new metrics rows and the status until the run ends.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from kantai_tui import __version__
from kantai_tui.core.corpus.files import require_text
from kantai_tui.core.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUN_DID_NOT_FINISH,
    EXIT_TERMINATED,
    BadInputError,
    DiskFullError,
    KantaiError,
    OutputError,
    StoppedWhilePreparing,
    TokenizerError,
    disk_full_cause,
)
from kantai_tui.core.files import (
    JsonLinesWriter,
    fsync_dir,
    fsync_tree,
    make_writable_dir,
    read_json,
    read_json_lines,
    staging_path,
    sweep_stale,
    write_json_atomic,
)
from kantai_tui.core.paths import kantai_command
from kantai_tui.core.progress import SHOW_AFTER_S, Meter, Progress, Report, silent
from kantai_tui.core.runs.folder import (
    ACTIVE,
    RunLock,
    already_training,
    effective_state,
    load_config,
    lock_holder,
    lock_is_held,
    read_status,
    run_path,
    write_status,
)
from kantai_tui.core.runs.lineage import Fork
from kantai_tui.core.runs.probes import Prober, load_probes
from kantai_tui.core.tokenizer.bpe import TOKENIZER_FILES, missing_files, train_tokenizer
from kantai_tui.core.training import distributed
from kantai_tui.core.training.checkpoint import list_checkpoints, what_is_kept
from kantai_tui.core.training.config import TrainConfig
from kantai_tui.core.training.events import Event, ProbesEvaluated, RunFinished, StepLogged, event_to_json

if TYPE_CHECKING:
    from kantai_tui.core.runs.export import TensorBoardSink

T = TypeVar("T")


def create_run(
    runs_dir: str | Path, name: str, cfg: TrainConfig, tokenizer: str | Path | None, parent: Fork | None = None
) -> Path:
    """A new run folder with its resolved config; the tokenizer is copied in now or trained by the trainer.

    A fork (``parent``) gets the parent's tokenizer and a copy of the parent's checkpoint, so the trainer
    resumes from it as from its own, and run.json names the parent and its step."""
    if parent is not None:
        tokenizer = Path(load_config(parent.run_dir).tokenizer_dir)
    run_dir = run_path(runs_dir, name)
    if run_dir.exists():
        raise BadInputError(
            f"run {name!r} already exists in {run_dir.parent}; resume it with "
            f"'{kantai_command('train', '--resume', name, runs_dir=run_dir.parent)}' or pick another --run name"
        )
    require_text(
        cfg.corpus, cfg.errors, cfg.text_field
    )  # a missing, empty or blank corpus is reported before anything is created
    load_probes(cfg.probes)  # so is a bad probe file
    from kantai_tui.core.training.step import may_use_cuda, pick_device

    if cfg.device != "auto":
        pick_device(cfg.device)  # and a device this machine does not have
    if tokenizer is not None:
        _check_tokenizer(Path(tokenizer).expanduser(), cfg.corpus)
    resolved = TrainConfig.from_dict(
        {
            **cfg.to_dict(),
            "corpus": str(Path(cfg.corpus).expanduser().resolve()),
            "tokenizer_dir": str(run_dir.resolve() / "tokenizer"),
        }
    ).resolved(cuda=may_use_cuda(cfg.device))  # on a GPU the trainer measures the batch first
    record = {"name": name, "config": resolved.to_dict(), "created": time.time(), "versions": _versions()}
    if parent is not None:
        record["parent"] = parent.record()
    _make_runs_folder(run_dir.parent)
    _commit_new_run(
        run_dir, record, None if tokenizer is None else Path(tokenizer).expanduser(), parent.at.path if parent else None
    )
    return run_dir


def _check_tokenizer(folder: Path, corpus: str) -> None:
    """A --tokenizer folder must hold everything the run and its ``final/`` export read, checked now."""
    missing = missing_files(folder)
    if not missing:
        return
    if "tokenizer.json" in missing:
        what = "not a tokenizer folder (no tokenizer.json)"
    else:
        what = f"an incomplete tokenizer folder (no {', '.join(missing)})"
    command = kantai_command("tokenizer", "train", corpus, "--out", folder)
    raise BadInputError(
        f"{folder}: {what}; train it with '{command}', or leave out --tokenizer to train one into the run"
    )


def _make_runs_folder(root: Path) -> None:
    """Create the runs folder, or say in one line why it cannot hold runs (exit 2)."""
    try:
        make_writable_dir(root)
    except OSError as err:
        raise OutputError(f"--runs-dir {root}: cannot create runs there ({err.strerror or err})") from err


def _commit_new_run(run_dir: Path, record: dict, tokenizer: Path | None, start: Path | None = None) -> None:
    """Build the run folder beside its name, then rename it into place: a kill at any moment leaves the
    whole run (run.json, status.json, its tokenizer, a fork's first checkpoint ``start``) or nothing under
    that name."""
    sweep_stale(run_dir.parent)
    staging = staging_path(run_dir, "creating")
    try:
        staging.mkdir()
        if tokenizer is not None:
            (staging / "tokenizer").mkdir()
            for file in TOKENIZER_FILES:
                if (tokenizer / file).is_file():
                    shutil.copy2(tokenizer / file, staging / "tokenizer" / file)
        if start is not None:  # verified by its manifest, which the copy keeps
            shutil.copytree(start, staging / "checkpoints" / start.name)
        write_json_atomic(staging / "run.json", record)
        step = record.get("parent", {}).get("step", 0)
        write_status(staging, "created", step=step, total_steps=None, error=None)
        fsync_tree(staging)
        os.rename(staging, run_dir)  # fails if another process made a run of this name meanwhile
        fsync_dir(run_dir.parent)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        if run_dir.exists():
            raise BadInputError(
                f"run {run_dir.name!r} already exists in {run_dir.parent}; pick another --run name"
            ) from err
        raise OutputError(
            f"{run_dir.parent}: cannot create run {run_dir.name!r} there ({err.strerror or err})"
        ) from err


def write_tensorboard_dir(run_dir: Path, folder: str | Path) -> Path:
    """Record in run.json where the trainer writes TensorBoard events (DIR/RUN), so a detached or resumed
    trainer writes there too; the tensorboard package is checked now, before any training."""
    from kantai_tui.core.runs.export import require_tensorboard

    require_tensorboard()
    target = Path(folder).expanduser().resolve()
    if target.exists() and not target.is_dir():
        raise OutputError(f"--tensorboard {folder}: {target} is a file, not a folder")
    with RunLock(run_dir):
        record = read_json(run_dir / "run.json") or {}
        record["tensorboard"] = str(target)
        write_json_atomic(run_dir / "run.json", record)
    return target


def _tensorboard_sink(run_dir: Path) -> TensorBoardSink | None:
    """The run's live TensorBoard writer (run.json's "tensorboard" folder), or None."""
    folder = (read_json(run_dir / "run.json") or {}).get("tensorboard")
    if not isinstance(folder, str):
        return None
    from kantai_tui.core.runs.export import TensorBoardSink

    return TensorBoardSink(Path(folder) / run_dir.name)


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {"kantai": __version__, "python": sys.version.split()[0]}
    for package in ("torch", "transformers", "tokenizers"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


class _Signals:
    """Turns SIGTERM/SIGINT into a stop request and SIGHUP into 'keep going, write to the log'."""

    def __init__(self, log_path: Path) -> None:
        self.stop_signal: int | None = None
        self.log_path = log_path
        self.on_continue: Callable[[], None] = lambda: None  # the trainer's clock, once there is one

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._hangup)
        signal.signal(signal.SIGCONT, lambda signum, frame: self.on_continue())

    def _stop(self, signum: int, frame: object) -> None:
        self.stop_signal = signum

    def _hangup(self, signum: int, frame: object) -> None:
        """The terminal went away: later prints go to train.log instead of failing on a dead tty."""
        self.to_log(1, 2)

    def to_log(self, *fds: int) -> None:
        """Point these output descriptors at train.log (what is still buffered for them lands there too)."""
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        for target in fds:
            os.dup2(fd, target)
        os.close(fd)

    def keep_printing(self, call: Callable[[T], None], name: str) -> Callable[[T], None]:
        """``call`` (a printer of events or notes) made to survive its reader going away.

        ``kantai train … | head`` closes stdout after ten lines: a lost reader is treated like a lost
        terminal (SIGHUP), so the run goes on with its output in train.log, and stderr, if it is still
        there, says so once. A printer that fails for any other reason still fails the run.
        """

        def printing(item: T) -> None:
            try:
                call(item)
            except OSError as err:
                if err.errno not in (errno.EPIPE, errno.EIO):
                    raise
                # EPIPE: the reader went away; EIO: the terminal hung up (its SIGHUP may not be handled yet)
                self.to_log(1)
                try:
                    print(
                        f"kantai: the reader of the output went away; run {name} goes on, its output in "
                        f"{self.log_path} (Ctrl-C or '{kantai_command('stop', name, runs_dir=self.log_path.parent.parent)}' "
                        "stops it)",
                        file=sys.stderr,
                        flush=True,
                    )
                except OSError:  # stderr is gone too
                    self.to_log(2)

        return printing


def execute(
    run_dir: Path,
    on_event: Callable[[Event], None],
    on_note: Callable[[str], None],
    dist: distributed.Dist | None = None,
    on_progress: Report = silent,
) -> int:
    """Train the run in this process until it finishes or is stopped; return the exit code.

    ``on_progress`` hears the phases before the first step (tokenizer, token cache, packing), which are also
    kept in status.json (``preparation``) for observers; a stop signal then ends the run at the next report.

    Under torchrun only rank 0 (``dist.main``) comes here to write; the other ranks go to _execute_rank."""
    from kantai_tui.core.training.trainer import Trainer

    cfg = load_config(run_dir)
    signals = _Signals(run_dir / "train.log")
    on_event, on_note = signals.keep_printing(on_event, run_dir.name), signals.keep_printing(on_note, run_dir.name)
    if dist is not None and not dist.main:
        return _execute_rank(run_dir, cfg, dist, signals)
    with RunLock(run_dir):
        if _already_finished(run_dir, cfg):
            on_note(
                f"run {run_dir.name} already finished at step {read_status(run_dir).get('step')}; its model "
                f"is in {run_dir / 'final'}"
            )
            return EXIT_OK
        signals.install()
        write_status(run_dir, "preparing", error=None)
        metrics = JsonLinesWriter(run_dir / "metrics.jsonl")
        sink = None
        prepare = _preparation(run_dir, signals, on_progress)
        try:
            sink = _tensorboard_sink(run_dir)
            _ensure_tokenizer(cfg, run_dir, on_note, prepare)
            if dist is not None:
                distributed.barrier()  # the other ranks wait for the tokenizer
            trainer = Trainer(
                cfg,
                run_dir,
                on_skip=lambda p, why: on_note(f"skipped checkpoint {p.name}: {why}"),
                dist=dist,
                probe=Prober(load_probes(cfg.probes), cfg.tokenizer_dir),
                progress=prepare,
            )
            signals.on_continue = trainer.clock.continued  # a frozen trainer's pause is not training time
            if trainer.cfg != cfg:  # the batch (and lr) it picked: a resume, a fork and `kantai runs` read them
                _record_config(run_dir, trainer.cfg)
            for note in trainer.notes:
                on_note(note)
            write_status(
                run_dir,
                "running",
                total_steps=trainer.total,
                time_s=cfg.time_s,
                step=trainer.state.step,
                preparation=None,
            )
            for event in trainer.events(lambda: signals.stop_signal is not None):
                _record(run_dir, metrics, event)
                if sink is not None and not isinstance(event, ProbesEvaluated):
                    sink.write(event_to_json(event))
                on_event(event)
        except StoppedWhilePreparing as stop:
            write_status(run_dir, "stopped", preparation=None)
            on_note(
                f"run {run_dir.name}: stopped before its first step; "
                f"'{kantai_command('train', '--resume', run_dir.name, runs_dir=run_dir.parent)}' prepares it again"
            )
            return _stop_code(stop.signum)
        except KantaiError as err:
            _record_failure(run_dir, str(err), err.exit_code, on_note)
            raise
        except Exception as err:
            reason = disk_full_cause(err)
            if reason is None:  # a bug: observers see what happened; the traceback still goes to the log
                _record_failure(
                    run_dir, f"internal error: {type(err).__name__}: {err}", EXIT_RUN_DID_NOT_FINISH, on_note
                )
                raise
            failure = DiskFullError(
                f"disk full: no room to write {getattr(err, 'filename', None) or run_dir} ({reason}); "
                f"{what_is_kept(run_dir / 'checkpoints')}; free space, then resume with "
                f"'{kantai_command('train', '--resume', run_dir.name, runs_dir=run_dir.parent)}'"
            )
            _record_failure(run_dir, str(failure), failure.exit_code, on_note)
            raise failure from err
        finally:
            metrics.close()
            if sink is not None:
                sink.close()
    return EXIT_OK if signals.stop_signal is None else _stop_code(signals.stop_signal)


def _record_config(run_dir: Path, cfg: TrainConfig) -> None:
    """run.json with the config the trainer settled (the caller holds the run's lock)."""
    record = read_json(run_dir / "run.json") or {}
    record["config"] = cfg.to_dict()
    write_json_atomic(run_dir / "run.json", record)


def _stop_code(signum: int | None) -> int:
    """A stopped run's exit code: 130 for Ctrl-C, else 143 (kantai stop, or a stop agreed with another rank)."""
    return EXIT_INTERRUPTED if signum == signal.SIGINT else EXIT_TERMINATED


def _execute_rank(run_dir: Path, cfg: TrainConfig, dist: distributed.Dist, signals: _Signals) -> int:
    """A rank other than 0: the same steps in lockstep (DDP), reading the run folder, writing nothing."""
    from kantai_tui.core.training.trainer import Trainer

    if _already_finished(run_dir, cfg):
        return EXIT_OK
    signals.install()
    distributed.barrier()  # rank 0 has the lock and the tokenizer
    trainer = Trainer(cfg, run_dir, dist=dist)
    signals.on_continue = trainer.clock.continued
    stopped = False
    for event in trainer.events(lambda: signals.stop_signal is not None):
        stopped = isinstance(event, RunFinished) and event.stopped
    # a stop agreed with the rank that was signalled (kantai stop signals rank 0): the same exit code
    return _stop_code(signals.stop_signal) if stopped else EXIT_OK


def _already_finished(run_dir: Path, cfg: TrainConfig) -> bool:
    """Finished, exported, and not asked for more steps since (a larger max_steps in run.json); a run
    bounded by its time budget alone has no step total to match."""
    status = read_status(run_dir)
    step = status.get("step")
    return (
        status.get("state") == "finished"
        and (run_dir / "final" / "config.json").is_file()
        and step is not None
        and status.get("total_steps") in (step, None)
        and (cfg.max_steps or 0) <= step
    )


def _record_failure(run_dir: Path, message: str, exit_code: int, on_note: Callable[[str], None]) -> None:
    """Mark the run failed in status.json; on a full disk even that can fail, and the run then reads 'crashed'."""
    try:
        write_status(run_dir, "failed", error=message, exit_code=exit_code)
    except OSError as err:
        on_note(f"could not record the failure in {run_dir / 'status.json'}: {err.strerror or err}")


def _preparation(run_dir: Path, signals: _Signals, show: Report) -> Report:
    """The report the preparation phases call: a stop signal ends them here (``StoppedWhilePreparing``);
    the phase is written to status.json at most once a second, and shown by ``show``."""

    def keep(progress: Progress) -> None:
        if progress.elapsed_s >= SHOW_AFTER_S:  # a phase over in a second is not worth a write (or a look)
            write_status(run_dir, "preparing", preparation=progress.to_dict())

    record = Meter(keep, every=1.0)

    def report(phase: str, done: int, total: int) -> None:
        if signals.stop_signal is not None:
            raise StoppedWhilePreparing(signals.stop_signal)
        record(phase, done, total)
        show(phase, done, total)

    return report


def _ensure_tokenizer(cfg: TrainConfig, run_dir: Path, on_note: Callable[[str], None], progress: Report) -> None:
    """The run's tokenizer, complete: trained now if the run has none (or only part of one, left by an
    older kantai killed while saving it) and no checkpoint depends on it yet."""
    folder = Path(cfg.tokenizer_dir)
    missing = missing_files(folder)
    if not missing:
        return
    if folder.exists():
        if list_checkpoints(run_dir / "checkpoints"):
            raise TokenizerError(
                f"{folder}: the run's tokenizer is incomplete (no {', '.join(missing)}) and its checkpoints "
                f"were trained with it; start a new run with '{kantai_command('train', cfg.corpus, runs_dir=run_dir.parent)}'"
            )
        on_note(f"the run's tokenizer is incomplete (no {', '.join(missing)}): training it again")
        shutil.rmtree(folder)
    else:
        on_note(f"no tokenizer given: training the tutorial's byte-level BPE into {folder}")
    train_tokenizer(cfg.corpus, folder, errors=cfg.errors, text_field=cfg.text_field, progress=progress, note=on_note)


def _record(run_dir: Path, metrics: JsonLinesWriter, event: Event) -> None:
    """The one writer of the run folder: probe rows to probes.jsonl, every other event to metrics.jsonl;
    status.json at log steps and the end."""
    if isinstance(event, ProbesEvaluated):
        _append_rows(run_dir / "probes.jsonl", event.rows)
        return
    metrics.write(event_to_json(event))
    if isinstance(event, StepLogged):
        write_status(
            run_dir,
            "running",
            step=event.step,
            loss=event.loss,
            tokens_per_s=event.tokens_per_s,
            mfu=event.mfu,
            elapsed_s=event.elapsed_s,
            progress=event.progress,
        )
    elif isinstance(event, RunFinished):
        write_status(run_dir, "stopped" if event.stopped else "finished", step=event.step, final=event.final_dir)


def _append_rows(path: Path, rows: tuple[dict, ...]) -> None:
    writer = JsonLinesWriter(path)
    try:
        for row in rows:
            writer.write(row)
    finally:
        writer.close()


def start_detached(runs_dir: str | Path, name: str) -> int:
    """Launch the trainer for run ``name`` in its own session; return its pid."""
    run_dir = run_path(runs_dir, name)
    if lock_is_held(run_dir):  # the detached trainer would exit 3 a moment later, seen only in train.log
        raise already_training(run_dir)
    log = (run_dir / "train.log").open("ab")
    command = [sys.executable, "-m", "kantai_tui", "train", "--resume", name, "--runs-dir", str(run_dir.parent)]
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        close_fds=True,
        cwd=run_dir,
    )
    log.close()
    return process.pid


def stop_run(runs_dir: str | Path, name: str, wait_s: float = 0.0) -> str:
    """Send SIGTERM to the run's trainer (it checkpoints, then exits); optionally wait for it to stop."""
    run_dir = run_path(runs_dir, name)
    if not (run_dir / "run.json").is_file():
        raise BadInputError(f"no run named {name!r} in {run_dir.parent}")
    pid = lock_holder(run_dir)
    if read_status(run_dir).get("state") not in ACTIVE or pid is None:
        raise BadInputError(f"run {name!r} is not training (state: {effective_state(run_dir)})")
    # "stopping" before the signal: a trainer that stops at once (before its first step) writes "stopped"
    # within milliseconds, and a "stopping" written after it would leave the run reading "crashed"
    write_status(run_dir, "stopping")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:  # it ended between the lock check and the signal
        raise BadInputError(f"run {name!r} is not training (state: {effective_state(run_dir)})") from None
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and lock_is_held(run_dir):
        time.sleep(0.2)
    return effective_state(run_dir)


def follow(run_dir: Path, poll_s: float = 0.5, from_start: bool = True) -> Iterator[tuple[list[dict], str]]:
    """Yield (new metrics rows, state) until the run is no longer active, then once more."""
    offset = 0 if from_start else (run_dir / "metrics.jsonl").stat().st_size
    while True:
        state = effective_state(run_dir)
        rows, offset = read_json_lines(run_dir / "metrics.jsonl", offset)
        yield rows, state
        # ends when no trainer holds the lock: a status.json read as unknown while one does is followed on
        if state not in ACTIVE and state != "created" and not lock_is_held(run_dir):
            return
        time.sleep(poll_s)
