"""Runs as real processes: a detached run outlives its launcher; stop checkpoints; resume continues; follow ends."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from kantai_tui.core.files import read_json_lines
from kantai_tui.core.runs.folder import effective_state

KANTAI = [sys.executable, "-m", "kantai_tui"]


def wait_for(predicate, timeout: float = 90.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def steps_logged(run: Path) -> list[int]:
    rows, _ = read_json_lines(run / "metrics.jsonl")
    return [r["step"] for r in rows if r["kind"] == "step"]


def start(tmp: Path, corpus: Path, tokenizer: Path, name: str, steps: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            *KANTAI,
            "train",
            str(corpus),
            "--tokenizer",
            str(tokenizer),
            "--run",
            name,
            "--runs-dir",
            str(tmp / "runs"),
            "--max-steps",
            str(steps),
            "--batch-size",
            "8",
            "--block-size",
            "32",
            "--log-every",
            "2",
            "--checkpoint-every",
            "1000",
            "--detach",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
    )


def test_detached_run_outlives_its_launcher(tmp_path: Path, small_corpus: Path, small_tokenizer: Path) -> None:
    launcher = start(tmp_path, small_corpus, small_tokenizer, "bg", 30)
    assert launcher.returncode == 0, launcher.stderr
    assert "training in the background" in launcher.stdout
    run = tmp_path / "runs" / "bg"
    wait_for(lambda: effective_state(run) == "finished", what="the detached run to finish")
    status = json.loads((run / "status.json").read_text())
    assert status["step"] == 30 and (run / "final" / "model.safetensors").is_file()
    follow = subprocess.run(
        [*KANTAI, "follow", "bg", "--runs-dir", str(tmp_path / "runs")], capture_output=True, text=True, timeout=60
    )
    assert follow.returncode == 0 and "finished at step 30" in follow.stdout and "step     30/30" in follow.stdout


def test_stop_checkpoints_and_resume_continues(tmp_path: Path, small_corpus: Path, small_tokenizer: Path) -> None:
    runs = tmp_path / "runs"
    assert start(tmp_path, small_corpus, small_tokenizer, "long", 100_000).returncode == 0
    run = runs / "long"
    wait_for(lambda: len(steps_logged(run)) >= 2, what="the first logged steps")
    stop = subprocess.run(
        [*KANTAI, "stop", "long", "--runs-dir", str(runs)], capture_output=True, text=True, timeout=90
    )
    assert stop.returncode == 0 and "run long: stopped" in stop.stdout, stop.stdout + stop.stderr
    status = json.loads((run / "status.json").read_text())
    stopped_at = status["step"]
    assert status["state"] == "stopped" and (run / "checkpoints" / f"step-{stopped_at:08d}").is_dir()
    second = subprocess.run(
        [*KANTAI, "train", "--resume", "long", "--runs-dir", str(runs), "--detach"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 0, second.stderr
    wait_for(lambda: any(s > stopped_at for s in steps_logged(run)), what="steps after the resume")
    rows, _ = read_json_lines(run / "metrics.jsonl")
    assert [r["start_step"] for r in rows if r["kind"] == "started"] == [0, stopped_at]
    again = subprocess.run(
        [*KANTAI, "train", "--resume", "long", "--runs-dir", str(runs)], capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 3 and "is already being trained" in again.stderr
    assert subprocess.run([*KANTAI, "stop", "long", "--runs-dir", str(runs)], timeout=90).returncode == 0
    shutil.rmtree(run)
