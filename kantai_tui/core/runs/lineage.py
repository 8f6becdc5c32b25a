"""Runs that grow from runs: extending a run's length, and forking a new run from a checkpoint.

- **Extend** (``kantai train --resume RUN --epochs N``, or ``--max-steps``, ``--time``): the run's length
  is replaced, as a new run's would be (``config.run_length``: the options given are the new length,
  counted from the run's start; the others no longer bound it), and the lr schedule starts a new
  segment at the checkpoint it resumes from (``step.segment_progress``, ``step.lr_at``).
- **Fork** (``kantai train [CORPUS] --from RUN[@STEP] [settings]``): a new run whose checkpoint is a copy
  of the parent's at STEP (weights, optimizer, RNG, data position, counters), so its steps, tokens and
  seconds go on from the parent's; every setting not given is the parent's. A fork given no new
  setting trains exactly as the parent did from there. run.json records ``parent: {run, step}``.

Both read the checkpoint's ``state.json`` (JSON, never a pickle) for where the run is.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kantai_tui.core.errors import BadInputError, CorruptCheckpointError
from kantai_tui.core.files import read_json, read_json_lines, write_json_atomic
from kantai_tui.core.paths import kantai_command
from kantai_tui.core.runs.folder import (
    RunLock,
    load_config,
    metrics_row,
    read_status,
    run_path,
    trajectory,
    write_status,
)
from kantai_tui.core.training import checkpoint
from kantai_tui.core.training.config import TrainConfig, duration

LENGTH_KEYS = ("epochs", "max_steps", "time_s")
SEGMENT_KEYS = ("segment_step", "segment_s", "segment_lr")
FORK_RE = re.compile(r"^(?P<run>[^@]+)(?:@(?P<step>\d+))?$")


@dataclass(frozen=True)
class Position:
    """Where a checkpoint left the run: its step, training seconds and the lr of its last step."""

    path: Path
    step: int
    elapsed_s: float
    lr: float


def position(ckpt: Path) -> Position:
    """Read a verified checkpoint's state.json."""
    try:
        state = json.loads((ckpt / "state.json").read_text())
        return Position(ckpt, int(state["step"]), float(state["elapsed_s"]), float(state.get("lr", 0.0)))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CorruptCheckpointError(f"checkpoint {ckpt}: unreadable state.json ({err})") from err


def length_of(cfg: TrainConfig) -> dict[str, Any]:
    return {k: getattr(cfg, k) for k in LENGTH_KEYS}


def new_segment(cfg: TrainConfig, length: dict[str, Any], at: Position | None) -> TrainConfig:
    """``cfg`` with a new length; the schedule's new segment starts at ``at`` (None: no step trained yet,
    so the whole run is still one segment)."""
    if at is None:
        return replace(cfg, **length)
    return replace(cfg, **length, segment_step=at.step, segment_s=at.elapsed_s, segment_lr=at.lr)


# --- extend -----------------------------------------------------------------------------------


def extend_run(run_dir: Path, length: dict[str, Any], runs_dir: str | Path) -> bool:
    """Give a stopped, finished or crashed run a new length (run.json rewritten under the run's lock).

    Returns False when the length is the run's already (a second ``--resume RUN --epochs N`` after an
    interruption resumes the same extension instead of starting another segment).
    """
    with RunLock(run_dir):  # no trainer may read run.json while it changes
        record = read_json(run_dir / "run.json") or {}
        cfg = load_config(run_dir)
        if length_of(cfg) == length:
            return False
        newest = checkpoint.newest_verified(run_dir / "checkpoints")
        at = position(newest.path) if newest else None
        _check_longer(run_dir, length, at, runs_dir)
        extended = new_segment(cfg, length, at).resolved()
        extended._check()
        entry = {"step": at.step if at else 0, "from": length_of(cfg), "to": length, "at": time.time()}
        before = record.get("extensions")
        record.update(config=extended.to_dict(), extensions=[*(before if isinstance(before, list) else []), entry])
        write_json_atomic(run_dir / "run.json", record)
        if read_status(run_dir).get("state") == "finished":  # finished at the old length: not any more
            write_status(run_dir, "stopped", total_steps=None)
        return True


def _check_longer(
    run_dir: Path, length: dict[str, Any], at: Position | None, runs_dir: str | Path, verb: tuple[str, ...] = ()
) -> None:
    """A new length must go past where the run is, by the measure it is given in. ``verb``: the command's
    first words for the hint (default: extend this run; a fork passes its --from)."""
    if at is None:
        return
    name = run_dir.name
    words = verb or ("--resume", name)
    where = f"run {name} is at" if not verb else f"{' '.join(verb[1:])} is at"
    hint = lambda option, value: kantai_command("train", *words, option, value, runs_dir=runs_dir)  # noqa: E731
    if length["max_steps"] is not None and length["max_steps"] <= at.step:
        raise BadInputError(
            f"--max-steps {length['max_steps']}: {where} step {at.step:,} already; the length counts "
            f"from the run's start, so give more, e.g. '{hint('--max-steps', str(at.step * 2))}'"
        )
    if length["time_s"] is not None and length["time_s"] <= at.elapsed_s:
        raise BadInputError(
            f"--time {duration(length['time_s'])}: {where} {duration(at.elapsed_s)} of training already; "
            f"the budget counts from the run's start, so give more, e.g. '{hint('--time', duration(at.elapsed_s * 2))}'"
        )
    epoch = _epoch_at(run_dir, at.step)
    if length["epochs"] is not None and epoch is not None and length["epochs"] <= epoch:
        raise BadInputError(
            f"--epochs {length['epochs']:g}: {where} {epoch:.2f} epochs already; the length counts from the "
            f"run's start, so give more, e.g. '{hint('--epochs', str(max(1, round(epoch * 2))))}'"
        )


def _epoch_at(run_dir: Path, step: int) -> float | None:
    """The epoch logged at (or last before) ``step``: a checkpoint holds the data position, not the epoch
    length, which needs the corpus."""
    rows, _ = read_json_lines(run_dir / "metrics.jsonl")
    epochs = [
        r["epoch"]
        for r in trajectory([r for r in map(metrics_row, rows) if r is not None])
        if r.get("kind") == "step" and r["step"] <= step and "epoch" in r
    ]
    return float(epochs[-1]) if epochs else None


# --- fork -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fork:
    """A new run's parent: its run folder and the checkpoint the new run starts from."""

    run_dir: Path
    at: Position
    keep_optimizer: bool = True

    def record(self) -> dict:
        return {"run": self.run_dir.name, "step": self.at.step, "optimizer": self.keep_optimizer}


def find_fork(runs_dir: str | Path, spec: str, keep_optimizer: bool = True) -> Fork:
    """``RUN`` (its newest verified checkpoint) or ``RUN@STEP`` (the checkpoint at STEP), checked."""
    match = FORK_RE.match(spec)
    if match is None:
        raise BadInputError(f"--from {spec!r}: write it RUN or RUN@STEP, e.g. --from base@500")
    name, step = match["run"], match["step"]
    parent = run_path(runs_dir, name)
    if not (parent / "run.json").is_file():
        raise BadInputError(f"--from {spec}: no run named {name!r} in {parent.parent}")
    found = checkpoint.list_checkpoints(parent / "checkpoints")
    verified = [(s, p) for s, p in found if checkpoint.verify(p) is None]
    if not verified:
        raise BadInputError(f"--from {spec}: run {name} has no verified checkpoint to start from yet")
    if step is None:
        return Fork(parent, position(verified[0][1]), keep_optimizer)
    chosen = [p for s, p in verified if s == int(step)]
    if not chosen:
        steps = ", ".join(str(s) for s, _ in sorted(verified))
        example = kantai_command("train", "--from", f"{name}@{sorted(verified)[-1][0]}", runs_dir=runs_dir)
        raise BadInputError(
            f"--from {spec}: run {name} has no checkpoint at step {int(step):,}; it keeps steps {steps} "
            f"(the newest two of every --checkpoint-every steps), e.g. '{example}'"
        )
    return Fork(parent, position(chosen[0]), keep_optimizer)


def fork_config(fork: Fork, changes: dict[str, Any]) -> TrainConfig:
    """The parent's config with ``changes`` (the settings given on the command line); a new length starts a
    new schedule segment at the fork's step, and no new length keeps the parent's schedule as it was."""
    parent = load_config(fork.run_dir)
    if "preset" in changes and changes["preset"] != parent.preset:
        raise BadInputError(
            f"--preset {changes['preset']}: a fork starts from run {fork.run_dir.name}'s weights, a "
            f"{parent.preset} model; leave --preset out, or start a new run without --from"
        )
    length = {k: changes.pop(k) for k in LENGTH_KEYS if k in changes}
    cfg = replace(parent, **changes)
    if length:
        full = {k: length.get(k) for k in LENGTH_KEYS}
        spec = f"{fork.run_dir.name}@{fork.at.step}"
        _check_longer(fork.run_dir, full, fork.at, fork.run_dir.parent, ("--from", spec))
        cfg = new_segment(cfg, full, fork.at)
    return replace(cfg, fresh_optimizer_at=None if fork.keep_optimizer else fork.at.step)
