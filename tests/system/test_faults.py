"""Faults injected for real into real trainer processes: a full disk, SIGTERM/SIGINT in the
foreground, a lock left by a dead process, damaged checkpoints of every kind."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kantai_tui.cli import main
from kantai_tui.core.files import read_json, read_json_lines
from kantai_tui.core.runs import process
from kantai_tui.core.runs.folder import effective_state, trajectory
from kantai_tui.core.training import checkpoint
from kantai_tui.core.training.config import TrainConfig

KANTAI = [sys.executable, "-m", "kantai_tui"]


def _run(runs: Path, corpus: Path, tokenizer: Path, name: str, **fields: object) -> Path:
    cfg = TrainConfig(
        **{
            "corpus": str(corpus),
            "tokenizer_dir": "",
            "max_steps": 12,
            "batch_size": 8,
            "block_size": 32,
            "log_every": 1,
            "eval_every": 1000,
            "checkpoint_every": 4,
            **fields,
        }
    )
    return process.create_run(runs, name, cfg, tokenizer)


def _resume(runs: Path, name: str, **popen: object) -> subprocess.Popen:
    return subprocess.Popen(
        [*KANTAI, "train", "--resume", name, "--runs-dir", str(runs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        **popen,
    )


def _wait(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _steps(run: Path) -> list[int]:
    return [r["step"] for r in trajectory(read_json_lines(run / "metrics.jsonl")[0]) if r["kind"] == "step"]


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_checkpoint_then_exit(
    small_corpus: Path, small_tokenizer: Path, tmp_path: Path, sig: int, code: int
) -> None:
    runs = tmp_path / "runs"
    run = _run(runs, small_corpus, small_tokenizer, "sig", max_steps=100_000, checkpoint_every=100_000)
    trainer = _resume(runs, "sig")
    _wait(lambda: len(_steps(run)) >= 3, what="a few steps")
    trainer.send_signal(sig)
    _, err = trainer.communicate(timeout=60)
    assert trainer.returncode == code, err
    status = read_json(run / "status.json")
    assert status["state"] == "stopped" and "Traceback" not in err
    newest = checkpoint.newest_verified(run / "checkpoints")
    assert newest is not None and newest.step == status["step"] >= 3  # a checkpoint at the step it stopped


def test_disk_full_while_checkpointing_exits_7_and_keeps_the_last_checkpoint(
    small_corpus: Path, small_tokenizer: Path, tmp_path: Path
) -> None:
    """RLIMIT_FSIZE below the size of a checkpoint's tensor file: the kernel refuses the write (EFBIG),
    exactly where a full disk would (ENOSPC); the same code path turns either into exit 7."""
    runs = tmp_path / "runs"
    run = _run(runs, small_corpus, small_tokenizer, "full", checkpoint_every=4, max_steps=12)
    first = _resume(runs, "full")
    _wait(lambda: checkpoint.newest_verified(run / "checkpoints") is not None, what="the first checkpoint")
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=60)
    kept = checkpoint.newest_verified(run / "checkpoints")
    assert kept is not None
    limit = (kept.path / "model.safetensors").stat().st_size // 2

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    full = _resume(runs, "full", preexec_fn=small_files)
    _, err = full.communicate(timeout=120)
    assert full.returncode == 7, err
    assert "Traceback" not in err
    message = err.strip().splitlines()[-1]
    assert message.startswith("kantai: error: disk full: no room to write checkpoint step")
    assert f"checkpoint step {kept.step} is kept" in message and "kantai train --resume full" in message
    status = read_json(run / "status.json")
    assert status["state"] == "failed" and status["exit_code"] == 7 and "disk full" in status["error"]
    assert checkpoint.newest_verified(run / "checkpoints") == kept  # the previous checkpoint, intact
    assert not list((run / "checkpoints").glob(".staging-*"))  # the half-written one was removed
    assert process.execute(run, lambda e: None, lambda n: None) == 0  # space is back: resume finishes
    assert _steps(run) == list(range(1, 13))


def test_a_lock_left_by_a_dead_trainer_is_recovered(small_corpus: Path, small_tokenizer: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run = _run(runs, small_corpus, small_tokenizer, "dead", max_steps=100_000)
    trainer = _resume(runs, "dead")
    _wait(lambda: len(_steps(run)) >= 1, what="a step")
    trainer.kill()
    trainer.communicate(timeout=30)
    assert (run / ".lock").read_text().strip() == str(trainer.pid)  # the dead trainer's lock file is still there
    assert effective_state(run) == "crashed"
    again = _resume(runs, "dead")
    _wait(
        lambda: read_json(run / "status.json").get("pid") == again.pid and effective_state(run) == "running",
        what="the new trainer",
    )
    again.send_signal(signal.SIGTERM)
    assert again.wait(timeout=60) == 143


# --- damaged checkpoints -------------------------------------------------------------------------


def _truncate(folder: Path) -> str:
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return "model.safetensors has"


def _flip(folder: Path) -> str:
    path = folder / "optimizer.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return "optimizer.pt does not match its sha256"


def _no_complete(folder: Path) -> str:
    (folder / "COMPLETE").unlink()
    return "no COMPLETE marker"


def _manifest_mismatch(folder: Path) -> str:
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    manifest["files"][0]["sha256"] = "0" * 64
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))
    return f"{manifest['files'][0]['name']} does not match its sha256"


def _manifest_garbage(folder: Path) -> str:
    (folder / "MANIFEST.json").write_bytes(b"\x00{not json")
    return "unreadable MANIFEST.json"


def _missing_file(folder: Path) -> str:
    (folder / "rng.safetensors").unlink()
    return "rng.safetensors is missing"


DAMAGE = [_truncate, _flip, _no_complete, _manifest_mismatch, _manifest_garbage, _missing_file]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, small_corpus: Path, small_tokenizer: Path) -> Path:
    run = _run(tmp_path_factory.mktemp("runs"), small_corpus, small_tokenizer, "done", max_steps=8, checkpoint_every=4)
    assert process.execute(run, lambda e: None, lambda n: None) == 0
    return run


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__.strip("_"))
def test_a_damaged_newest_checkpoint_is_skipped_with_its_reason(
    finished_run: Path, tmp_path: Path, damage, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    run = tmp_path / "done"
    shutil.copytree(finished_run, run)
    newest = checkpoint.list_checkpoints(run / "checkpoints")[0][1]
    expected = damage(newest)
    shutil.rmtree(run / "final")  # without final/, fill-mask on a run uses its newest verified checkpoint
    assert main(["fill-mask", str(run), "Reason is <mask>."]) == 0
    out, err = capsys.readouterr()
    assert f"kantai: skipped checkpoint {newest.name}: {expected}" in err
    assert "step-00000004" in out  # the model used is the one before


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__.strip("_"))
def test_no_valid_checkpoint_left_is_exit_4(
    finished_run: Path, tmp_path: Path, damage, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    run = tmp_path / "done"
    shutil.copytree(finished_run, run)
    shutil.rmtree(run / "final")  # as if it had stopped before the end: resume has work to do
    for _, folder in checkpoint.list_checkpoints(run / "checkpoints"):
        expected = damage(folder)
    assert main(["train", "--resume", "done", "--runs-dir", str(tmp_path)]) == 4
    err = capsys.readouterr().err
    assert (
        f"skipped checkpoint step-00000008: {expected}" in err
        and f"skipped checkpoint step-00000004: {expected}" in err
    )
    assert err.strip().splitlines()[-1].startswith("kantai: error: run done: none of its checkpoints verifies")


# --- out of memory -----------------------------------------------------------------------------


def _oom_above(limit: int):
    """FAKE at the hardware boundary (no GPU here): the real loss, except that a chunk of more than
    ``limit`` sequences raises what torch raises when CUDA memory runs out."""
    import torch

    from kantai_tui.core.training import step as engine

    real = engine.mlm_loss

    def loss(model, inputs, labels, attention, sparse, *rest):
        if model.training and len(inputs) > limit:  # training steps only, not the evaluator
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {len(inputs)} GiB")
        return real(model, inputs, labels, attention, sparse, *rest)

    return loss


def test_auto_batch_size_splits_the_batch_and_keeps_the_trajectory(
    small_corpus: Path,
    small_tokenizer: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runs = tmp_path / "runs"
    reference = _run(runs, small_corpus, small_tokenizer, "whole", max_steps=6, checkpoint_every=100)
    assert process.execute(reference, lambda e: None, lambda n: None) == 0
    monkeypatch.setattr("kantai_tui.core.training.step.mlm_loss", _oom_above(2))
    assert (
        main(
            [
                "train",
                str(small_corpus),
                "--tokenizer",
                str(small_tokenizer),
                "--runs-dir",
                str(runs),
                "--run",
                "split",
                "--max-steps",
                "6",
                "--batch-size",
                "8",
                "--block-size",
                "32",
                "--log-every",
                "1",
                "--auto-batch-size",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "out of memory at micro-batch 8: retrying step 1 as 2 chunks of 4" in out
    assert "out of memory at micro-batch 4: retrying step 1 as 4 chunks of 2" in out
    losses = {
        name: [r["loss"] for r in read_json_lines(runs / name / "metrics.jsonl")[0] if r["kind"] == "step"]
        for name in ("whole", "split")
    }
    assert len(losses["split"]) == 6  # it went on: every step trained
    # the same batches and masks; dropout draws fall in another order, so close, not equal (exactness: below)
    assert losses["split"] == pytest.approx(losses["whole"], rel=2e-2)


def test_a_split_batch_has_the_whole_batch_gradient(small_corpus: Path, small_tokenizer: Path, tmp_path: Path) -> None:
    import torch

    from kantai_tui.core.training.masking import mask_tokens
    from kantai_tui.core.training.trainer import Trainer

    run = _run(tmp_path, small_corpus, small_tokenizer, "grad", precision="fp32")
    trainer = Trainer(process.load_config(run), run)
    trainer.model.eval()  # no dropout: the two computations must agree to float rounding
    ids = torch.from_numpy(trainer.batches.get(0, 0))
    inputs, labels = mask_tokens(
        ids, mask_id=trainer.mask_id, vocab_size=trainer.vocab, generator=torch.Generator().manual_seed(0)
    )
    results = []
    for split in (1, 4):
        trainer.state.split = split
        loss = trainer._batch_loss(ids, inputs, labels)
        results.append((loss.item(), [p.grad.clone() for p in trainer.model.parameters() if p.grad is not None]))
        trainer.optimizer.zero_grad(set_to_none=True)
    (whole, whole_grads), (split_loss, split_grads) = results
    assert split_loss == pytest.approx(whole, rel=1e-5)
    assert len(split_grads) == len(whole_grads)
    for a, b in zip(whole_grads, split_grads, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


def test_auto_batch_size_gives_up_at_one_sequence(
    small_corpus: Path,
    small_tokenizer: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("kantai_tui.core.training.step.mlm_loss", _oom_above(0))
    assert (
        main(
            [
                "train",
                str(small_corpus),
                "--tokenizer",
                str(small_tokenizer),
                "--runs-dir",
                str(tmp_path),
                "--run",
                "hopeless",
                "--max-steps",
                "3",
                "--batch-size",
                "4",
                "--block-size",
                "32",
                "--auto-batch-size",
            ]
        )
        == 6
    )
    assert "out of memory on cpu even at micro-batch 1 (block size 32)" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["truncate", "garbage", "mismatch"])
def test_a_damaged_token_cache_is_rebuilt(small_corpus: Path, small_tokenizer: Path, damage: str) -> None:
    import numpy as np

    from kantai_tui.core.training.data import open_token_cache

    cache = open_token_cache(small_corpus, small_tokenizer)
    expected = np.array(cache.ids).copy(), cache.starts.copy()
    ids_file, starts_file = cache.path / "ids.npy", cache.path / "starts.npy"
    if damage == "truncate":
        ids_file.write_bytes(ids_file.read_bytes()[:1000])
    elif damage == "garbage":
        ids_file.write_bytes(b"\x93NUMPY garbage")
    else:
        np.save(starts_file, expected[1][:-5])
    again = open_token_cache(small_corpus, small_tokenizer)
    assert np.array_equal(np.array(again.ids), expected[0]) and np.array_equal(again.starts, expected[1])


def test_resuming_a_finished_run_changes_nothing(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    run = tmp_path / "done"
    shutil.copytree(finished_run, run)
    before = (run / "metrics.jsonl").read_bytes(), (run / "final" / "model.safetensors").stat().st_mtime_ns
    assert main(["train", "--resume", "done", "--runs-dir", str(tmp_path)]) == 0
    assert "run done already finished at step 8; its model is in" in capsys.readouterr().err
    assert ((run / "metrics.jsonl").read_bytes(), (run / "final" / "model.safetensors").stat().st_mtime_ns) == before
