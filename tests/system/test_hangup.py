"""The terminal goes away (SSH drops, the window closes): the TUI and ``kantai follow`` leave with
exit 129, the trainer they watch keeps training. Each process runs on a real pseudo-terminal that
is its controlling terminal, and the terminal is hung up for real by closing its master side."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from kantai_tui.core.files import read_json
from kantai_tui.core.runs import process
from kantai_tui.core.runs.folder import effective_state, lock_is_held
from kantai_tui.core.training.config import TrainConfig
from tests.helpers import Terminal

HANGUP_EXIT = 129


@pytest.fixture
def training(tmp_path: Path, small_corpus: Path, small_tokenizer: Path):
    runs = tmp_path / "runs"
    cfg = TrainConfig(
        corpus=str(small_corpus),
        tokenizer_dir="",
        max_steps=100_000,
        batch_size=8,
        block_size=32,
        log_every=1,
        checkpoint_every=100_000,
    )
    run = process.create_run(runs, "steady", cfg, small_tokenizer)
    process.start_detached(runs, "steady")
    deadline = time.monotonic() + 60
    while effective_state(run) != "running" or not (read_json(run / "status.json") or {}).get("step"):
        assert time.monotonic() < deadline, "trainer did not start"
        time.sleep(0.1)
    yield runs, run
    if lock_is_held(run):
        process.stop_run(runs, "steady", wait_s=60)


def _still_training(run: Path) -> None:
    step = read_json(run / "status.json")["step"]
    deadline = time.monotonic() + 30
    while read_json(run / "status.json")["step"] <= step:
        assert time.monotonic() < deadline, "the trainer stopped training"
        time.sleep(0.1)
    assert effective_state(run) == "running"


@pytest.mark.parametrize("ignore_hangup", [False, True], ids=["sighup", "nohup"])
def test_tui_leaves_when_its_terminal_does_and_the_run_trains_on(training, ignore_hangup: bool) -> None:
    runs, run = training
    tui = Terminal([sys.executable, "-m", "kantai_tui", "tui", "--runs-dir", str(runs)], ignore_hangup)
    tui.read_until(b"Corpus")
    tui.hang_up()
    # with SIGHUP ignored, stdin reads end-of-file forever: without a check the input thread would spin a core
    assert tui.exit_code() == HANGUP_EXIT
    _still_training(run)


def test_follow_leaves_on_sighup(training) -> None:
    runs, run = training
    follow = Terminal([sys.executable, "-m", "kantai_tui", "follow", "steady", "--runs-dir", str(runs)])
    follow.read_until(b"step")
    follow.hang_up()
    assert follow.exit_code() == HANGUP_EXIT
    _still_training(run)


def test_foreground_trainer_keeps_training_when_its_terminal_goes(
    tmp_path: Path, small_corpus: Path, small_tokenizer: Path
) -> None:
    """`kantai train` in the foreground of an SSH session that dies: output moves to train.log, training goes on."""
    runs = tmp_path / "runs"
    cfg = TrainConfig(
        corpus=str(small_corpus),
        tokenizer_dir="",
        max_steps=100_000,
        batch_size=8,
        block_size=32,
        log_every=1,
        checkpoint_every=100_000,
    )
    run = process.create_run(runs, "fg", cfg, small_tokenizer)
    trainer = Terminal([sys.executable, "-m", "kantai_tui", "train", "--resume", "fg", "--runs-dir", str(runs)])
    try:
        trainer.read_until(b"step      2")
        trainer.hang_up()
        _still_training(run)
        log, deadline = run / "train.log", time.monotonic() + 30
        while not (log.exists() and b"step" in log.read_bytes()):
            assert time.monotonic() < deadline, "nothing was written to train.log after the hang-up"
            time.sleep(0.1)
        assert process.stop_run(runs, "fg", wait_s=60) == "stopped"
        assert trainer.exit_code() == 143
    finally:
        if trainer.process.poll() is None:
            trainer.process.kill()
