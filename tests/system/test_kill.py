"""SIGKILL of a real trainer at seeded random moments, half of them in the middle of writing a
checkpoint: every resume picks the newest checkpoint that verifies, the run finishes, and its
history has every step exactly once with the same losses as a run nobody killed.

3 kills in 40 steps by default; ``pytest --long`` makes it 40 kills in 80 steps.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from kantai_tui.core.files import read_json, read_json_lines
from kantai_tui.core.runs import process
from kantai_tui.core.runs.folder import effective_state, lock_is_held, trajectory
from kantai_tui.core.training import checkpoint
from kantai_tui.core.training.config import TrainConfig


def _steps(long_run: bool) -> int:
    """80 steps under --long (40 kills); 40 by default, where 3 kills fit (the suite's time is shared)."""
    return 80 if long_run else 40


def _config(corpus: Path, steps: int) -> TrainConfig:
    return TrainConfig(
        corpus=str(corpus),
        tokenizer_dir="",
        max_steps=steps,
        batch_size=8,
        block_size=32,
        log_every=1,
        eval_every=20,
        checkpoint_every=2,
    )


def _started_rows(run: Path) -> list[dict]:
    return [r for r in read_json_lines(run / "metrics.jsonl")[0] if r["kind"] == "started"]


def _wait_until_training(run: Path, starts_before: int) -> dict:
    """Until the new trainer recorded RunStarted (it is past loading its checkpoint)."""
    deadline = time.monotonic() + 60
    while len(_started_rows(run)) <= starts_before:
        assert time.monotonic() < deadline, "trainer did not start"
        time.sleep(0.02)
    return _started_rows(run)[-1]


def _kill_mid_checkpoint(run: Path, pid: int, deadline_s: float) -> bool:
    """SIGKILL as soon as a staging folder appears (a checkpoint is being written); False if none did."""
    root, deadline = run / "checkpoints", time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if any(root.glob(".staging-*")):
            os.kill(pid, signal.SIGKILL)
            return True
        time.sleep(0.001)
    return False


def _history(run: Path) -> tuple[list[int], list[float]]:
    rows = [r for r in trajectory(read_json_lines(run / "metrics.jsonl")[0]) if r["kind"] == "step"]
    return [r["step"] for r in rows], [r["loss"] for r in rows]


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, small_corpus: Path, small_tokenizer: Path, long_run: bool
) -> tuple[list[int], list[float]]:
    """The same run, never killed, in this process."""
    run = process.create_run(
        tmp_path_factory.mktemp("runs"), "calm", _config(small_corpus, _steps(long_run)), small_tokenizer
    )
    assert process.execute(run, lambda e: None, lambda n: None) == 0
    return _history(run)


def test_kill_minus_9_anywhere_loses_nothing(
    small_corpus: Path, small_tokenizer: Path, tmp_path: Path, reference: tuple[list[int], list[float]], long_run: bool
) -> None:
    runs = tmp_path / "runs"
    run = process.create_run(runs, "victim", _config(small_corpus, _steps(long_run)), small_tokenizer)
    rng = random.Random(20261125)
    kills = mid_checkpoint = 0
    for attempt in range(40 if long_run else 3):
        before = checkpoint.newest_verified(run / "checkpoints")
        process.start_detached(runs, "victim")
        started = _wait_until_training(run, attempt)
        assert started["start_step"] == (before.step if before else 0)  # resumed from the newest verified one
        pid = read_json(run / "status.json")["pid"]
        if attempt % 2:
            hit = _kill_mid_checkpoint(run, pid, deadline_s=5)
        else:
            time.sleep(rng.uniform(0.02, 0.5))
            hit = effective_state(run) == "running"
            if hit:
                os.kill(pid, signal.SIGKILL)
        if not hit:
            break  # the run finished before the kill: nothing left to kill
        kills += 1
        while lock_is_held(run):
            time.sleep(0.01)
        mid_checkpoint += any((run / "checkpoints").glob(".staging-*"))
        assert effective_state(run) == "crashed"
    print(f"\nkill -9: {kills} kills, {mid_checkpoint} of them mid-checkpoint, {kills} resumes")
    assert kills >= 3 and mid_checkpoint >= 1
    assert process.execute(run, lambda e: None, lambda n: None) == 0
    assert read_json(run / "status.json")["state"] == "finished"
    assert all(checkpoint.verify(p) is None for _, p in checkpoint.list_checkpoints(run / "checkpoints"))
    assert not list((run / "checkpoints").glob(".staging-*"))  # debris of the killed writes is gone
    steps, losses = _history(run)
    assert steps == list(range(1, _steps(long_run) + 1))  # no gap, no repeat
    ref_steps, ref_losses = reference
    assert steps == ref_steps
    assert losses == pytest.approx(ref_losses, rel=1e-5, abs=1e-6)  # the same trajectory as the run nobody killed
