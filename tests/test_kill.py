"""SIGKILL of a real trainer at seeded random moments (often mid-checkpoint): every resume picks the
newest checkpoint that verifies, continues from its step, and the run still finishes."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

from kantai_tui.core import checkpoint, runner
from kantai_tui.core.config import TrainConfig
from kantai_tui.core.runs import effective_state, lock_is_held, read_json, read_metrics


def test_kill_minus_9_at_random_moments_never_loses_a_resume(small_corpus: Path, small_tokenizer: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    cfg = TrainConfig(corpus=str(small_corpus), tokenizer_dir="", max_steps=80, batch_size=8, block_size=32,
                      log_every=1, eval_every=1000, checkpoint_every=2)  # fmt: skip
    run = runner.create_run(runs, "victim", cfg, small_tokenizer)
    rng = random.Random(20261125)
    kills = 0
    def starts() -> list[dict]:
        return [r for r in read_metrics(run / "metrics.jsonl")[0] if r["kind"] == "started"]

    for attempt in range(4):
        before = checkpoint.newest_verified(run / "checkpoints")
        runner.start_detached(runs, "victim")
        deadline = time.monotonic() + 60
        while len(starts()) <= attempt:  # the trainer recorded RunStarted: it is past loading the checkpoint
            assert time.monotonic() < deadline, "trainer did not start"
            time.sleep(0.05)
        started = starts()[-1]
        assert started["start_step"] == (before.step if before else 0)  # resumed from the newest verified one
        time.sleep(rng.uniform(0.05, 0.6))
        pid = read_json(run / "status.json")["pid"]
        if effective_state(run) != "running":
            break
        os.kill(pid, signal.SIGKILL)
        kills += 1
        while lock_is_held(run):
            time.sleep(0.05)
        assert effective_state(run) == "crashed"
    assert kills >= 2
    assert runner.execute(run, lambda e: None, lambda n: None) == 0
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    assert all(checkpoint.verify(p) is None for _, p in checkpoint.list_checkpoints(run / "checkpoints"))
    steps = [r["step"] for r in read_metrics(run / "metrics.jsonl")[0] if r["kind"] == "step"]
    assert steps[-1] == 80 and set(range(1, 81)) <= set(steps)  # every step was trained at least once
