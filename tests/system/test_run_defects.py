"""Defects found by trying kantai as a new user would (issue 14), each reproduced with real processes:
a reader that goes away, a refused append, a second stop, a second detached trainer, settings given
with --resume, a runs folder that cannot hold runs."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kantai_tui.core.files import read_json, read_json_lines
from kantai_tui.core.runs import process
from kantai_tui.core.runs.folder import lock_holder, lock_is_held, trajectory
from kantai_tui.core.training.config import TrainConfig
from tests.helpers import tiny_config

KANTAI = [sys.executable, "-m", "kantai_tui"]
SMALL = ["--batch-size", "8", "--block-size", "32", "--eval-every", "1000"]


def _kantai(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KANTAI, *args], capture_output=True, text=True, timeout=120, **kwargs)  # type: ignore[call-overload]


def _config(corpus: Path, **fields: object) -> TrainConfig:
    return tiny_config(corpus, **{"max_steps": 8, "log_every": 1, "checkpoint_every": 4, **fields})


def _wait(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_foreground_run_whose_reader_goes_away_trains_on_into_train_log(
    tmp_path: Path, small_corpus: Path, small_tokenizer: Path
) -> None:
    """`kantai train … | head -2` was marked failed (BrokenPipeError), exit 141, no final/."""
    runs = tmp_path / "runs"
    args = ["train", str(small_corpus), "--tokenizer", str(small_tokenizer), "--run", "bp", "--runs-dir", str(runs)]
    trainer = subprocess.Popen(
        [*KANTAI, *args, "--max-steps", "30", "--log-every", "1", *SMALL],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert trainer.stdout is not None and trainer.stderr is not None
    trainer.stdout.readline(), trainer.stdout.readline()
    trainer.stdout.close()  # what head does after its lines
    code = trainer.wait(timeout=120)
    err = trainer.stderr.read().decode()
    assert code == 0, err
    assert "the reader of the output went away; run bp goes on" in err and "Traceback" not in err
    assert (runs / "bp" / "final" / "config.json").is_file()
    assert read_json(runs / "bp" / "status.json")["state"] == "finished"  # type: ignore[index]
    assert "finished at step 30" in (runs / "bp" / "train.log").read_text()


def test_a_refused_metrics_append_is_disk_full_not_a_traceback(
    tmp_path: Path, small_corpus: Path, small_tokenizer: Path
) -> None:
    """With a file-size limit the first append failed, then the close in a `finally` flushed the failed line
    again: a traceback and exit 1, and the message claimed a checkpoint that was not there."""
    runs = tmp_path / "runs"
    run = process.create_run(runs, "fs", _config(small_corpus, max_steps=12), small_tokenizer)
    # train all 12 steps in this process, then take the run back to a crash after step 8's checkpoint
    assert process.execute(run, lambda e: None, lambda n: None) == 0
    (run / "status.json").write_text(json.dumps({"state": "running", "step": 8}))
    shutil.rmtree(run / "final")
    shutil.rmtree(run / "checkpoints" / "step-00000012")
    limit = (run / "metrics.jsonl").stat().st_size + 20  # the resumed trainer's first row does not fit

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run(
        [*KANTAI, "train", "--resume", "fs", "--runs-dir", str(runs)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=small_files,
    )
    assert done.returncode == 7, done.stderr
    assert "Traceback" not in done.stderr
    assert "no room to write" in done.stderr and "metrics.jsonl" in done.stderr
    assert "checkpoint step 8 is kept" in done.stderr
    # the refused row left half a line; the next trainer starts on a fresh one and finishes the run
    again = _kantai(["train", "--resume", "fs", "--runs-dir", str(runs)])
    assert again.returncode == 0, again.stderr
    rows = read_json_lines(run / "metrics.jsonl")[0]
    steps = [r["step"] for r in trajectory(rows) if r["kind"] == "step"]
    assert steps == list(range(1, 13))
    assert [r["start_step"] for r in rows if r["kind"] == "started"] == [0, 8]


def _stopped_trainer(tmp_path: Path, corpus: Path, tokenizer: Path) -> tuple[Path, int]:
    """A detached trainer frozen with SIGSTOP while it holds the run's lock."""
    runs = tmp_path / "runs"
    args = ["train", str(corpus), "--tokenizer", str(tokenizer), "--run", "st", "--runs-dir", str(runs), "--detach"]
    started = _kantai([*args, "--max-steps", "100000", "--log-every", "5", "--checkpoint-every", "100000", *SMALL])
    assert started.returncode == 0, started.stderr
    run = runs / "st"
    _wait(lambda: "elapsed_s" in (read_json(run / "status.json") or {}), "the trainer to log a step")
    pid = lock_holder(run)
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    return run, pid


def test_a_frozen_trainer_second_stop_second_detach_and_its_pause(
    tmp_path: Path, small_corpus: Path, small_tokenizer: Path
) -> None:
    """One trainer frozen with SIGSTOP, three defects:
    - `kantai stop` wrote its own pid into status.json, so a second stop signalled a dead process
      (ProcessLookupError traceback; a reused pid would have been SIGTERMed);
    - `--detach` on a training run said "training in the background" and exited 0 while the new trainer
      died with exit 3;
    - the pause counted as training time (tokens/s and the ETA wrong after it, a --time budget ended early).
    """
    run, pid = _stopped_trainer(tmp_path, small_corpus, small_tokenizer)
    runs = str(run.parent)
    before = read_json(run / "status.json") or {}
    try:
        detach = _kantai(["train", "--resume", "st", "--runs-dir", runs, "--detach"])
        assert detach.returncode == 3, detach.stdout + detach.stderr
        assert f"run st is already being trained (pid {pid}" in detach.stderr
        assert "background" not in detach.stdout
        time.sleep(max(0.0, 3.0 - (time.time() - before["updated"])))  # frozen for at least 3 s
    finally:
        os.kill(pid, signal.SIGCONT)
    _wait(lambda: (read_json(run / "status.json") or {}).get("step", 0) > before["step"] + 5, "steps after the pause")
    after = read_json(run / "status.json") or {}
    trained, wall = after["elapsed_s"] - before["elapsed_s"], after["updated"] - before["updated"]
    assert trained < wall - 2.5, (trained, wall)  # the frozen seconds are not in elapsed_s
    os.kill(pid, signal.SIGSTOP)
    try:
        for _ in range(2):
            stop = _kantai(["stop", "st", "--runs-dir", runs, "--wait", "1"])
            assert stop.returncode == 0, stop.stderr
            assert "run st: stopping" in stop.stdout
            assert read_json(run / "status.json")["pid"] == pid  # type: ignore[index]
    finally:
        os.kill(pid, signal.SIGCONT)
    _wait(lambda: not lock_is_held(run), "the trainer to stop")
    assert read_json(run / "status.json")["state"] == "stopped"  # type: ignore[index]


def test_settings_given_with_resume_are_refused_not_ignored(
    tmp_path: Path, small_corpus: Path, small_tokenizer: Path
) -> None:
    runs = tmp_path / "runs"
    process.create_run(runs, "rs", _config(small_corpus), small_tokenizer)
    done = _kantai(
        ["train", "--resume", "rs", "--runs-dir", str(runs), "--lr", "0.5", "--batch-size", "8", "--epochs", "1"]
    )
    assert done.returncode == 2
    line = done.stderr.strip()
    assert line.startswith(
        "kantai: error: --batch-size, --lr: a run resumes with the settings it was created with (run.json); only "
        "its length (--epochs, --max-steps, --time) can change"
    )
    assert f"fork it: kantai train --from rs --epochs 1.0 --batch-size 8 --lr 0.5 --runs-dir {runs}" in line
    assert read_json(runs / "rs" / "status.json")["state"] == "created"  # type: ignore[index]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("file", "is a file, not a folder"),
        ("under-file", "cannot create runs there"),
        ("proc", "cannot create runs there"),
    ],
)
def test_a_runs_folder_that_cannot_hold_runs_is_one_line(
    tmp_path: Path, small_corpus: Path, where: str, expected: str
) -> None:
    """A chained FileNotFoundError/NotADirectoryError/OSError traceback, exit 1, before."""
    (tmp_path / "a-file").write_text("x")
    runs = {"file": tmp_path / "a-file", "under-file": tmp_path / "a-file" / "runs", "proc": Path("/proc/kantai-runs")}[
        where
    ]
    done = _kantai(["train", str(small_corpus), "--runs-dir", str(runs), "--max-steps", "1"])
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert expected in done.stderr and str(runs) in done.stderr


def test_runs_on_a_file_is_refused(tmp_path: Path) -> None:
    """`kantai runs --runs-dir FILE` printed "no runs", exit 0."""
    (tmp_path / "a-file").write_text("x")
    done = _kantai(["runs", "--runs-dir", str(tmp_path / "a-file")])
    assert done.returncode == 2 and "is a file, not a folder" in done.stderr


def test_a_trainer_that_stops_at_once_reads_stopped_not_crashed(tmp_path: Path, monkeypatch) -> None:
    """Regression (CI, issue 17): `kantai stop` wrote "stopping" after its SIGTERM; a trainer signalled before
    its first step had written "stopped" and exited by then, and the run read "crashed" for good. The
    signal here is delivered by a stand-in for the kernel that stops the trainer as fast as it can be."""
    from kantai_tui.core.runs import process
    from kantai_tui.core.runs.folder import RunLock, effective_state, write_status
    from tests.helpers import recorded_run

    run = recorded_run(tmp_path) / "demo"
    lock = RunLock(run).acquire()
    write_status(run, "running", step=0)

    def stopped_at_once(pid: int, signum: int) -> None:
        write_status(run, "stopped", step=0)  # the trainer's last write, then it exits
        lock.release()

    monkeypatch.setattr(process.os, "kill", stopped_at_once)
    assert process.stop_run(run.parent, "demo", wait_s=5) == "stopped"
    assert effective_state(run) == "stopped"
