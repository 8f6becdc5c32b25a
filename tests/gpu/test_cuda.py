"""The CUDA path on a real GPU: no host sync between log steps, masks drawn on the device, the batch
measured and recorded, both peaks, and resume within the tolerance docs/RELIABILITY.md states.

Skipped where torch sees no GPU (the development machine has none); ``benchmarks/gpu_session.sh`` runs
them first on a lent GPU machine."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from kantai_tui.core.training.checkpoint import RESUME_TOLERANCE
from kantai_tui.core.training.config import TrainConfig
from kantai_tui.core.training.events import RunStarted, StepLogged
from tests.helpers import tiny_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _cfg(corpus: Path, tokenizer: Path, **changes: object) -> TrainConfig:
    fields = {
        "block_size": 64,
        "batch_size": None,
        "epochs": None,
        "max_steps": 12,
        "log_every": 1,
        "eval_every": 10**6,
    }
    cfg = tiny_config(corpus, tokenizer_dir=str(tokenizer), device="cuda", **{**fields, **changes})
    return replace(cfg, checkpoint_every=10**6).resolved(cuda=True)


def test_steps_between_log_steps_never_wait_for_the_device(
    small_corpus: Path, small_tokenizer: Path, tmp_path: Path
) -> None:
    """torch's sync debug mode raises on any host sync: none in steps 3-10 (1-2 compile and capture)."""
    from kantai_tui.core.training.trainer import Trainer

    trainer = Trainer(_cfg(small_corpus, small_tokenizer), tmp_path / "r")
    assert trainer.graphs and trainer.mask_generator.device.type == "cuda"
    trainer._window, trainer._data_s = (trainer._now(), 0, 0), 0.0
    for _ in range(2):
        trainer._guarded_step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(8):
            trainer._guarded_step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    ids, inputs, labels, positions, real = trainer._masked_batch()
    assert {t.device.type for t in (ids, inputs, labels, positions)} == {"cuda"} and real == ids.numel()


def test_the_batch_is_measured_said_and_recorded(
    small_corpus: Path, small_tokenizer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kantai_tui.cli import main

    args = ["train", str(small_corpus), "--tokenizer", str(small_tokenizer), "--runs-dir", str(tmp_path)]
    assert main([*args, "--run", "g", "--max-steps", "4", "--block-size", "64"]) == 0
    config = json.loads((tmp_path / "g" / "run.json").read_text())["config"]
    assert isinstance(config["batch_size"], int) and config["batch_size"] >= 32
    started = json.loads((tmp_path / "g" / "metrics.jsonl").read_text().splitlines()[0])
    name = torch.cuda.get_device_name()
    assert started["batch_reason"].startswith(f"batch {config['batch_size']} chosen by measuring on {name}: 32: ")
    assert started["batch_reason"] in capsys.readouterr().out
    assert started["matmul_tflops"] > 1 and started["matmul_source"] == f"measured bf16 matmul, {name}"


def test_a_resumed_run_matches_an_unbroken_one_within_the_stated_tolerance(
    small_corpus: Path, small_tokenizer: Path, tmp_path: Path
) -> None:
    from kantai_tui.core.training.trainer import Trainer

    cfg = _cfg(small_corpus, small_tokenizer, max_steps=20, batch_size=32, compile="off")

    def losses(run: Path, stop_at: int | None = None) -> dict[int, float]:
        trainer = Trainer(cfg, run)
        stop = lambda: stop_at is not None and trainer.state.step >= stop_at  # noqa: E731
        return {e.step: e.loss for e in trainer.events(stop) if isinstance(e, StepLogged)}

    whole = losses(tmp_path / "whole")
    resumed = {**losses(tmp_path / "resumed", stop_at=10), **losses(tmp_path / "resumed")}
    assert sorted(resumed) == sorted(whole)
    worst = max(abs(resumed[s] - whole[s]) / abs(whole[s]) for s in whole)
    assert worst <= RESUME_TOLERANCE["cuda"], f"max relative loss difference {worst:.2e}"


def test_the_started_row_has_the_nominal_peak_and_the_measured_one(
    small_corpus: Path, small_tokenizer: Path, tmp_path: Path
) -> None:
    from kantai_tui.core.training.speed import gpu_peak
    from kantai_tui.core.training.trainer import Trainer

    trainer = Trainer(_cfg(small_corpus, small_tokenizer, max_steps=1, batch_size=32, compile="off"), tmp_path / "p")
    started = next(e for e in trainer.events() if isinstance(e, RunStarted))
    nominal = gpu_peak(torch.cuda.get_device_name())
    if nominal is not None:
        assert (started.peak_tflops, started.peak_source) == (nominal.tflops, nominal.source)
    assert started.matmul_tflops is not None and started.matmul_tflops > 1
