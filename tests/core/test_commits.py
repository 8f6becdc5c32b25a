"""Folders and lines that appear whole or not at all (issue 14): the tokenizer folder, the run folder,
``final/``, and a JSON-lines writer after a cut line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kantai_tui.core.errors import BadInputError, TokenizerError
from kantai_tui.core.files import JsonLinesWriter, commit_folder, read_json_lines, staging_path, sweep_stale
from kantai_tui.core.runs import process
from kantai_tui.core.runs.folder import list_runs, trajectory
from kantai_tui.core.training.checkpoint import what_is_kept
from kantai_tui.core.training.config import TrainConfig
from tests.helpers import SAMPLE, tiny_config


def _config(corpus: Path) -> TrainConfig:
    return tiny_config(corpus, checkpoint_every=2)


def test_a_writer_starts_on_a_fresh_line_after_a_cut_one(tmp_path: Path) -> None:
    """A trainer killed mid-line left `{"kind": "step", "st`; the next trainer's `started` row was glued
    onto it, every reader skipped the glued line, and the history was not rewound (step 1 twice)."""
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        json.dumps({"kind": "started", "start_step": 0}) + "\n" + json.dumps({"kind": "step", "step": 1}) + "\n"
        '{"kind": "step", "st'
    )
    writer = JsonLinesWriter(path)
    writer.write({"kind": "started", "start_step": 0})
    writer.write({"kind": "step", "step": 1})
    writer.close()
    rows, _ = read_json_lines(path)
    assert [r["kind"] for r in rows] == ["started", "step", "started", "step"]
    assert [r["step"] for r in trajectory(rows) if r["kind"] == "step"] == [1]


def test_a_writer_on_a_whole_or_empty_file_adds_no_blank_line(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    for _ in range(2):
        writer = JsonLinesWriter(path)
        writer.write({"a": 1})
        writer.close()
    assert path.read_text() == '{"a": 1}\n{"a": 1}\n'


def test_commit_folder_replaces_whole_and_leaves_nothing_aside(tmp_path: Path) -> None:
    target = tmp_path / "final"
    target.mkdir()
    (target / "old.txt").write_text("old")
    staging = staging_path(target)
    staging.mkdir()
    (staging / "new.txt").write_text("new")
    commit_folder(staging, target)
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]


def test_sweep_removes_what_a_dead_builder_left_and_keeps_a_live_ones(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f".dk.creating-{dead.pid}").mkdir()
    (tmp_path / f".final.old-{dead.pid}").mkdir()
    (tmp_path / f".dk.creating-{os.getpid()}").mkdir()
    (tmp_path / ".not-ours").mkdir()
    sweep_stale(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f".dk.creating-{os.getpid()}", ".not-ours"])


def test_a_half_built_run_folder_is_not_a_run(tmp_path: Path, small_corpus: Path) -> None:
    """A kill before the run folder's rename leaves only a hidden build folder: no run is listed, and the
    name is free for a new run (before: a folder without run.json that could be neither resumed nor reused)."""
    runs = tmp_path / "runs"
    run = process.create_run(runs, "a", _config(small_corpus), None)
    half = runs / ".b.creating-999999999"
    shutil.copytree(run, half)
    assert [r.name for r in list_runs(runs)] == ["a"]
    process.create_run(runs, "b", _config(small_corpus), None)
    assert sorted(r.name for r in list_runs(runs)) == ["a", "b"]
    assert not half.exists()


def test_an_incomplete_tokenizer_folder_given_to_a_run_is_refused(
    tmp_path: Path, small_corpus: Path, small_tokenizer: Path
) -> None:
    """It was accepted (only tokenizer.json was checked) and the export failed after every step had run."""
    partial = tmp_path / "partial"
    shutil.copytree(small_tokenizer, partial)
    (partial / "tokenizer_config.json").unlink()
    with pytest.raises(BadInputError, match=r"partial: an incomplete tokenizer folder \(no tokenizer_config.json\)"):
        process.create_run(tmp_path / "runs", "t", _config(small_corpus), partial)


def test_a_run_whose_tokenizer_an_older_kantai_left_half_saved_trains_it_again(
    tmp_path: Path, small_corpus: Path, small_tokenizer: Path
) -> None:
    """What a kill between the file-by-file renames of older versions left: tokenizer.json but no
    tokenizer_config.json. Every resume trained every step, then failed at export (FileNotFoundError)."""
    run = process.create_run(tmp_path / "runs", "t", _config(small_corpus), small_tokenizer)
    (run / "tokenizer" / "tokenizer_config.json").unlink()
    notes: list[str] = []
    assert process.execute(run, lambda e: None, notes.append) == 0
    assert any("the run's tokenizer is incomplete (no tokenizer_config.json): training it again" in n for n in notes)
    assert (run / "final" / "tokenizer_config.json").is_file()


def test_a_half_saved_tokenizer_that_checkpoints_depend_on_is_refused(
    tmp_path: Path, small_corpus: Path, small_tokenizer: Path
) -> None:
    run = process.create_run(tmp_path / "runs", "t", _config(small_corpus), small_tokenizer)
    assert process.execute(run, lambda e: None, lambda n: None) == 0
    (run / "status.json").write_text(json.dumps({"state": "running", "step": 4}))
    (run / "tokenizer" / "tokenizer_config.json").unlink()
    with pytest.raises(
        TokenizerError, match=r"the run.s tokenizer is incomplete .* its checkpoints were trained with it"
    ):
        process.execute(run, lambda e: None, lambda n: None)


def test_what_is_kept_says_when_there_is_no_checkpoint(tmp_path: Path) -> None:
    assert what_is_kept(tmp_path / "checkpoints") == "no checkpoint exists yet"


def test_ctrl_c_in_tokenizer_training_stops_it_and_leaves_no_folder(tmp_path: Path) -> None:
    """Ctrl-C was ignored until the Rust trainer finished its merges, and left an empty folder."""
    corpus = tmp_path / "corpus.txt"  # the bundled books 16 times: seconds of merges to interrupt
    corpus.write_text("".join(p.read_text(encoding="utf-8") for p in sorted(SAMPLE.glob("*.txt"))) * 16)
    out = tmp_path / "tok"
    trainer = subprocess.Popen(
        [sys.executable, "-m", "kantai_tui", "tokenizer", "train", str(corpus), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2.5)  # past start-up, inside the training
    trainer.send_signal(signal.SIGINT)
    _, err = trainer.communicate(timeout=60)
    assert trainer.returncode == 130, err
    assert "kantai: interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt"]


def test_the_training_clock_leaves_out_a_pause_ended_by_sigcont() -> None:
    """A trainer frozen with SIGSTOP counted the pause as training: its --time budget ended early and
    the next tokens/s was near zero."""
    from kantai_tui.core.training.clock import PauseAwareClock

    now = [100.0]
    clock = PauseAwareClock(lambda: now[0])
    assert clock() == 100.0
    now[0] = 101.0
    assert clock() == 101.0
    now[0] = 3701.0  # frozen for an hour, then SIGCONT
    clock.continued()
    assert clock() == 101.0
    now[0] = 3702.0
    assert clock() == 102.0 and clock.paused_s == 3600.0


def test_a_running_trainer_without_steps_for_ten_intervals_reads_stalled(tmp_path: Path, small_corpus: Path) -> None:
    """A frozen trainer showed "running" forever in runs, follow and the TUI."""
    from kantai_tui.core.runs.folder import RunLock, list_runs, stalled_for, write_status
    from kantai_tui.format import state_text

    run = process.create_run(tmp_path / "runs", "s", _config(small_corpus), None)  # log_every 10
    with RunLock(run):
        status = write_status(run, "running", step=100, elapsed_s=50.0)  # 5 s per log interval
        assert stalled_for(run, now=status["updated"] + 49) is None
        assert stalled_for(run, now=status["updated"] + 59) is None  # never under a minute
        assert stalled_for(run, now=status["updated"] + 61) == pytest.approx(61)
        write_status(run, "running", step=100, elapsed_s=500.0)  # 50 s per interval: ten is 500 s
        assert stalled_for(run, now=time.time() + 400) is None
        write_status(run, "stopping")
        assert stalled_for(run, now=time.time() + 10_000) is None
        write_status(run, "running", step=100, elapsed_s=50.0)
        assert list_runs(tmp_path / "runs")[0].stalled_s is None
    assert stalled_for(run, now=time.time() + 10_000) is None  # the lock is free: crashed, not stalled
    assert state_text("running", 125.0) == "running · stalled — no step for 2m05s"
