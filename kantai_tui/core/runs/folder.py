"""The run folder: the contract between a trainer process and everyone who watches it.

```
runs/<name>/
  run.json        resolved TrainConfig, corpus fingerprint, versions, created
  status.json     state, pid, host, step, total_steps, error, updated — replaced atomically
  metrics.jsonl   one event per line (steps, evals, checkpoints); a reader ignores a partial last line
  train.log       the trainer's stdout/stderr when detached
  .lock           flock held by the live trainer: a second one is refused; a free lock means nobody trains
  tokenizer/      the tokenizer the run uses (copied or trained here)
  checkpoints/    step-NNNNNNNN/ by the commit protocol (checkpoint.py)
  final/          save_pretrained() + tokenizer
```
Observers (``kantai follow``, ``kantai runs``, the TUI) only read these files.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from kantai_tui.core.errors import BadInputError, RunLockedError
from kantai_tui.core.files import read_json, write_json_atomic
from kantai_tui.core.paths import kantai_command
from kantai_tui.core.training.config import TrainConfig

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ACTIVE = ("preparing", "running", "stopping")


def run_path(runs_dir: str | Path, name: str) -> Path:
    """The folder of run ``name``; names cannot leave the runs folder (no '/', '..', absolute paths, symlinks)."""
    if not NAME_RE.match(name) or ".." in name:
        raise BadInputError(
            f"run name {name!r} must be 1-64 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    root = runs_root(runs_dir)
    path = root / name
    if path.is_symlink() or (path.exists() and path.resolve().parent != root):
        raise BadInputError(f"run {name!r} is a link out of the runs folder {root}; refusing to use it")
    return path


def runs_root(runs_dir: str | Path) -> Path:
    """The runs folder as an absolute path; one that exists as a file is refused (exit 2), here for every command."""
    root = Path(runs_dir).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise BadInputError(f"--runs-dir {runs_dir}: {root} is a file, not a folder; give a folder for the runs")
    return root


_NUMBER = (int, float)
STATUS_FIELDS: dict[str, type | tuple[type, ...]] = {
    "state": str,
    "pid": int,
    "host": str,
    "step": int,
    "total_steps": int,
    "time_s": _NUMBER,
    "elapsed_s": _NUMBER,
    "progress": _NUMBER,
    "loss": _NUMBER,
    "tokens_per_s": _NUMBER,
    "mfu": _NUMBER,
    "error": str,
    "updated": _NUMBER,
    "exit_code": int,
    "final": str,
}


def read_status(run_dir: Path) -> dict:
    """status.json with every known field of the right type; a hand-edited or foreign value is left out,
    so no observer (CLI, TUI, stop) has to guard its formatting against a string where a step should be."""
    status = read_json(run_dir / "status.json") or {}
    return {
        k: v
        for k, v in status.items()
        if k not in STATUS_FIELDS or (isinstance(v, STATUS_FIELDS[k]) and not isinstance(v, bool))
    }


def read_run_config(run_dir: Path) -> dict:
    """The ``config`` object of run.json for display ({} when missing or not an object)."""
    config = (read_json(run_dir / "run.json") or {}).get("config")
    return config if isinstance(config, dict) else {}


def load_config(run_dir: Path) -> TrainConfig:
    """The resolved config a run was created with."""
    data = read_json(run_dir / "run.json")
    if data is None or "config" not in data:
        raise BadInputError(f"{run_dir}: not a run folder (no readable run.json)")
    try:
        config = TrainConfig.from_dict(data["config"])
        config._check()
    except BadInputError as err:
        raise BadInputError(f"{run_dir / 'run.json'}: {err}; was it edited by hand?") from err
    return config


class RunLock:
    """``fcntl.flock`` on ``.lock``: held for the life of the trainer, released by the kernel when it dies."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / ".lock"
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise already_training(self.path.parent) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def already_training(run_dir: Path) -> RunLockedError:
    """The error for a second trainer of a run (exit 3), said before a detached one is even started."""
    status = read_status(run_dir)
    name = run_dir.name
    return RunLockedError(
        f"run {name} is already being trained (pid {lock_holder(run_dir) or status.get('pid', '?')}"
        f" on {status.get('host', '?')}); watch it with '{kantai_command('follow', name, runs_dir=run_dir.parent)}'"
        f" or stop it with '{kantai_command('stop', name, runs_dir=run_dir.parent)}'"
    )


def lock_is_held(run_dir: Path) -> bool:
    """True while a live trainer holds the run's lock (the kernel frees it when the process dies)."""
    path = run_dir / ".lock"
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def lock_holder(run_dir: Path) -> int | None:
    """The pid of the live trainer holding the run's lock (it wrote it into ``.lock``), or None.

    The one source of a trainer's pid that only the trainer writes: status.json is written by others
    too (a stop marks it "stopping"), and a dead trainer's pid may since belong to another process.
    """
    if not lock_is_held(run_dir):
        return None
    try:
        text = (run_dir / ".lock").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def write_status(run_dir: Path, state: str, **fields: object) -> dict:
    """Replace status.json, keeping fields not given (step, total_steps...) from the previous one."""
    status = read_status(run_dir)
    status.update(fields)
    status.update(
        state=state,
        # only the trainer itself names its pid; "stopping" is written by `kantai stop` or the TUI
        pid=os.getpid() if state in ("preparing", "running") else status.get("pid"),
        host=socket.gethostname(),
        updated=time.time(),
    )
    write_json_atomic(run_dir / "status.json", status)
    return status


def effective_state(run_dir: Path) -> str:
    """The recorded state, except that an 'active' run whose lock is free died without saying so: 'crashed'."""
    state = read_status(run_dir).get("state", "unknown")
    if state in ACTIVE and not lock_is_held(run_dir):
        return "crashed"
    return state


METRIC_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    # the fields of each kind of metrics row as events.py writes them; a number that was not finite is null
    "step": {
        "step": int,
        "epoch": _NUMBER,
        "loss": _NUMBER,
        "lr": _NUMBER,
        "tokens": int,
        "tokens_per_s": _NUMBER,
        "samples_per_s": _NUMBER,
        "elapsed_s": _NUMBER,
        "grad_norm": _NUMBER,
        "progress": _NUMBER,
        "tflops": _NUMBER,
        "mfu": _NUMBER,
        "data_wait": _NUMBER,
    },
    "eval": {
        "step": int,
        "eval_loss": _NUMBER,
        "perplexity": _NUMBER,
        "mask_acc": _NUMBER,
        "content_acc": _NUMBER,
        "cloze_hits1": _NUMBER,
        "cloze_hits5": _NUMBER,
    },
    "started": {
        "run": str,
        "total_steps": int,
        "start_step": int,
        "parameters": int,
        "train_examples": int,
        "eval_examples": int,
        "tokens_per_step": int,
        "device": str,
        "time_s": _NUMBER,
        "flops_per_token": int,
        "peak_tflops": _NUMBER,
        "peak_source": str,
        "flop_model": str,
        "matmul_tflops": _NUMBER,
        "matmul_source": str,
        "batch_reason": str,
    },
    "checkpoint": {"step": int, "path": str},
    "batch_split": {"step": int, "micro_batch": int, "split": int, "message": str},
    "finished": {"step": int, "final_dir": str, "stopped": bool},
}


def _typed(value: object, types: type | tuple[type, ...]) -> bool:
    return isinstance(value, types) and (types is bool or not isinstance(value, bool))


def metrics_row(row: dict) -> dict | None:
    """A metrics.jsonl row as observers may format it: every known field of its kind is of its type or
    absent (null, a string for a number, a hand edit: left out), so a reader that writes ``row.get('lr')``
    or ``"lr" in row`` needs no guard of its own. None for a step or eval row without an int step, which
    no chart can place. The one typed reader of metrics rows, as ``read_status`` is of status.json."""
    kind = row.get("kind")
    fields = METRIC_FIELDS.get(kind, {}) if isinstance(kind, str) else {}
    if kind in ("step", "eval") and not _typed(row.get("step"), int):
        return None
    return {k: v for k, v in row.items() if k not in fields or _typed(v, fields[k])}


def well_formed(row: dict) -> bool:
    """A step or eval row that ``metrics_row`` keeps (an int step); other kinds always are."""
    return metrics_row(row) is not None


def kept_after_resume(step: int, start_step: int) -> bool:
    """Whether a point logged at ``step`` still stands after a resume from the checkpoint at ``start_step``.

    metrics.jsonl is append-only, so after a crash it holds steps the dead process logged past its
    last checkpoint; the resumed trainer trains them again. Every reader that draws a history (the
    trajectory, the TUI's chart, ``kantai follow``'s smoothing) drops those by this one rule.
    """
    return step <= start_step


def trajectory(rows: list[dict]) -> list[dict]:
    """The run's history as training actually went: rows rewound at every resume.

    metrics.jsonl is append-only (a kill can come at any moment), so after a crash it holds the
    steps the dead process logged after its last checkpoint, then a ``started`` row whose
    ``start_step`` is that checkpoint; those steps are trained again. Dropping the rows past
    ``start_step`` at each ``started`` row gives each step once, in order.
    """
    kept: list[dict] = []
    for row in rows:
        if row.get("kind") == "started":
            start = row.get("start_step") or 0
            kept = [
                r
                for r in kept
                if not isinstance(r.get("step"), int)
                or kept_after_resume(r["step"], start)
                or r.get("kind") == "started"
            ]
        kept.append(row)
    return kept


STALL_AFTER_S = 60.0  # never sooner: one log interval of a big model on a CPU can be long
FIRST_STEP_S = 300.0  # before any step has a pace to judge by (torch.compile's first step takes minutes)
STALL_INTERVALS = 10


def stalled_for(
    run_dir: Path, now: float | None = None, status: dict | None = None, config: dict | None = None
) -> float | None:
    """Seconds since a live trainer last logged a step, when that is far past its pace; else None.

    A trainer frozen with SIGSTOP, or blocked on a hung filesystem, holds its lock and reads "running"
    forever: this is how its observers tell. Its pace is the seconds per log interval so far
    (status.json's elapsed_s and step, run.json's log_every); stalled means ten of those have passed
    with no step, and at least a minute.
    """
    status = read_status(run_dir) if status is None else status  # a caller that read them passes them
    updated = status.get("updated")
    if status.get("state") != "running" or updated is None or not lock_is_held(run_dir):
        return None
    quiet = (time.time() if now is None else now) - updated
    config = read_run_config(run_dir) if config is None else config
    step, elapsed, log_every = status.get("step"), status.get("elapsed_s"), config.get("log_every")
    if step and elapsed and isinstance(log_every, int) and not isinstance(log_every, bool) and log_every > 0:
        limit = max(STALL_AFTER_S, STALL_INTERVALS * elapsed / step * log_every)
    else:
        limit = FIRST_STEP_S
    return quiet if quiet >= limit else None


@dataclass(frozen=True)
class RunSummary:
    """One line of ``kantai runs``."""

    name: str
    path: str
    state: str
    step: int | None
    total_steps: int | None
    preset: str | None
    recipe: str | None
    last_loss: float | None
    updated: float | None
    error: str | None
    stalled_s: float | None = None  # running, but no step for this long (``stalled_for``)


def summarize(run_dir: Path) -> RunSummary:
    """Read a run folder's status, config and last logged loss."""
    status = read_status(run_dir)
    config = read_run_config(run_dir)
    text = {k: v if isinstance(v, str) else None for k, v in config.items()}
    return RunSummary(
        name=run_dir.name,
        path=str(run_dir),
        state=effective_state(run_dir),
        step=status.get("step"),
        total_steps=status.get("total_steps"),
        preset=text.get("preset"),
        recipe=text.get("recipe"),
        last_loss=status.get("loss"),
        updated=status.get("updated"),
        error=status.get("error"),
        stalled_s=stalled_for(run_dir, status=status, config=config),
    )


def list_runs(runs_dir: str | Path) -> list[RunSummary]:
    """Every run folder under ``runs_dir`` (those with a run.json), newest first."""
    root = Path(runs_dir).expanduser()
    if not root.is_dir():
        return []
    found = [summarize(p) for p in root.iterdir() if _is_run(p)]
    return sorted(found, key=lambda r: r.updated or 0, reverse=True)


def _is_run(path: Path) -> bool:
    """A run folder: named like a run (not a hidden one still being built) and holding run.json."""
    return (
        NAME_RE.match(path.name) is not None
        and path.is_dir()
        and not path.is_symlink()
        and (path / "run.json").is_file()
    )


def kantai_trainers(runs_dir: str | Path) -> dict[int, str]:
    """PIDs of kantai trainers that are training in ``runs_dir`` -> run name, to mark them in process lists
    (the device snapshot takes this map and knows nothing of runs)."""
    return _trainers(list_runs(runs_dir))


def _trainers(runs: list[RunSummary]) -> dict[int, str]:
    found = {}
    for run in runs:
        status = read_status(Path(run.path))
        if run.state in ACTIVE and isinstance(status.get("pid"), int):
            found[status["pid"]] = run.name
    return found


@dataclass(frozen=True)
class RunsListing:
    """One look at a runs folder with everything its observers show: the runs, the models a user can
    ask (each run's final/ and checkpoints, newest run first) and the trainers' PIDs. The TUI reads it
    once per poll, so the Training, Fill-mask and Device panes never each walk the folder."""

    runs: tuple[RunSummary, ...] = ()
    models: tuple[tuple[str, Path, int | None], ...] = ()  # (run name, run folder, step; None = final/)
    trainers: dict[int, str] = field(default_factory=dict)


def read_runs_folder(runs_dir: str | Path) -> RunsListing:
    """The runs, their models and their trainers, in one pass over ``runs_dir``."""
    from kantai_tui.core.training.checkpoint import list_checkpoints

    runs = list_runs(runs_dir)
    models: list[tuple[str, Path, int | None]] = []
    for run in runs:
        path = Path(run.path)
        if (path / "final" / "config.json").is_file():
            models.append((run.name, path, None))
        models.extend((run.name, path, step) for step, _ in list_checkpoints(path / "checkpoints"))
    return RunsListing(tuple(runs), tuple(models), _trainers(runs))
