"""Live speed: the FLOP model is presets.model_size's, peaks are named (a GPU table, a cached CPU measurement),
and a real run's step rows carry achieved TFLOP/s, MFU and the share of time spent waiting for data."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from kantai_tui.core.training import speed
from kantai_tui.core.training.config import TrainConfig
from kantai_tui.core.training.events import RunStarted, StepLogged
from kantai_tui.core.training.masking import slot_count
from kantai_tui.core.training.presets import PRESETS, model_size
from kantai_tui.core.training.trainer import Trainer
from tests.helpers import tiny_config

VOCAB = 2_000


def config(**changes: object) -> TrainConfig:
    """A resolved config; nothing here reads its corpus or tokenizer."""
    return TrainConfig(corpus="/corpus", tokenizer_dir="/tokenizer", **changes).resolved()  # type: ignore[arg-type]


def test_the_flop_count_is_presets_model_size_at_the_runs_block_and_head_share() -> None:
    packed = config(preset="small", block_size=64)
    fraction = slot_count(64, packed.mask_rate) / 64  # the LM head runs on the fixed masked slots only
    expected = model_size(PRESETS["small"], VOCAB, packed.batch, 64, fraction).train_flops_per_token
    assert speed.flops_per_token(packed, VOCAB) == expected
    seed = config(recipe="seed")  # the sparse head on padded lines: at the masked positions, mask_rate of them
    assert speed.head_fraction(seed) == seed.mask_rate == 0.15
    dense = replace(packed, sparse_head=False)
    assert speed.flops_per_token(dense, VOCAB) == model_size(PRESETS["small"], VOCAB, 32, 64, 1.0).train_flops_per_token
    assert speed.flops_per_token(dense, VOCAB) > speed.flops_per_token(packed, VOCAB)
    assert "masked positions only" in speed.flop_model(packed) and "every position" in speed.flop_model(dense)


# The GPU is a true boundary here: no GPU on the test machine, so these are the names torch reports for
# each card, as strings (gpu_peak is the lookup the trainer makes with torch.cuda.get_device_name).
@pytest.mark.parametrize(
    ("fake_device_name", "tflops", "dtype"),
    [
        ("NVIDIA H200", 989.0, "bf16"),
        ("NVIDIA H100 80GB HBM3", 989.0, "bf16"),
        ("NVIDIA H100 PCIe", 756.0, "bf16"),
        ("NVIDIA H100 NVL", 835.0, "bf16"),
        ("NVIDIA A100-SXM4-80GB", 312.0, "bf16"),
        ("NVIDIA A100 80GB PCIe", 312.0, "bf16"),
        ("NVIDIA L40S", 362.0, "bf16"),
        ("NVIDIA L4", 121.0, "bf16"),
        ("NVIDIA A10", 125.0, "bf16"),
        ("NVIDIA GeForce RTX 4090", 165.0, "bf16"),
        ("Tesla V100-SXM2-16GB", 125.0, "fp16"),
        ("Tesla T4", 65.0, "fp16"),
    ],
)
def test_known_gpus_have_their_nominal_dense_peak(fake_device_name: str, tflops: float, dtype: str) -> None:
    peak = speed.gpu_peak(fake_device_name)
    assert peak == speed.Peak(tflops, f"{fake_device_name} nominal dense {dtype}")


@pytest.mark.parametrize("fake_device_name", ["NVIDIA A10G", "NVIDIA GeForce GTX 1080", "NVIDIA L40"])
def test_an_unknown_gpu_has_no_peak_rather_than_a_neighbours(fake_device_name: str) -> None:
    assert speed.gpu_peak(fake_device_name) is None


def test_torchrun_counts_every_process_peak(counted: list[str]) -> None:
    cfg = config()
    one = speed.run_speed(cfg, VOCAB, "cpu", bf16=False)
    four = speed.run_speed(cfg, VOCAB, "cpu", bf16=False, world=4)
    assert one.peak and four.peak and four.peak.tflops == pytest.approx(4 * one.peak.tflops)
    assert four.peak.source.startswith("4 × measured fp32 matmul")
    assert speed.run_speed(cfg, VOCAB, "cpu", bf16=False, with_peak=False).peak is None


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The CPU measurement replaced by a counter (1.5 TFLOP/s), with an empty cache of its own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    calls: list[str] = []
    rates = iter([1.5, 1.5, 1.2, 1.5, 2.0])  # a busy machine's low figure, then a quiet one's

    def measure(dtype: str, seconds: float = speed.MEASURE_S, device: str = "cpu") -> float:
        calls.append(dtype)
        return next(rates, 1.5)

    monkeypatch.setattr(speed, "measure_matmul_tflops", measure)
    return calls


def test_the_cpu_peak_is_the_best_measurement_kept_in_the_xdg_cache(counted: list[str], tmp_path: Path) -> None:
    first = speed.cpu_peak("fp32")
    assert speed.cpu_peak("fp32") == first and counted == ["fp32", "fp32"]  # checked again, kept
    assert first.tflops == 1.5 and first.source.startswith("measured fp32 matmul, ")
    assert speed.cpu_name() in first.source
    cache_file = tmp_path / "cache" / "kantai" / speed.CACHE_FILE
    cache = json.loads(cache_file.read_text())  # JSON, never a pickle
    assert [entry["tflops"] for entry in cache["peaks"].values()] == [1.5]
    assert speed.cpu_peak("fp32").tflops == 1.5  # a lower figure (a busy moment) does not replace the best
    speed.cpu_peak("bf16")  # another dtype is another measurement
    assert counted == ["fp32", "fp32", "fp32", "bf16"]
    assert speed.cpu_peak("fp32").tflops == 2.0  # a higher one does
    assert max(e["tflops"] for e in json.loads(cache_file.read_text())["peaks"].values()) == 2.0


def test_a_damaged_or_unwritable_cache_only_means_measuring_again(counted: list[str], tmp_path: Path) -> None:
    folder = tmp_path / "cache" / "kantai"
    folder.mkdir(parents=True)
    (folder / speed.CACHE_FILE).write_text('{"peaks": {"x": "garbage"')
    assert speed.cpu_peak("fp32").tflops == 1.5 and counted == ["fp32"]
    blocked = tmp_path / "a-file"
    blocked.write_text("")  # a cache folder that cannot be created
    assert speed.cpu_peak("fp32", cache_dir=blocked / "kantai").tflops == 1.5
    assert len(counted) == 2


def test_measuring_is_quick_and_leaves_the_global_rng_alone() -> None:
    import time

    import torch

    state = torch.get_rng_state()
    began = time.perf_counter()
    tflops = speed.measure_matmul_tflops("fp32", seconds=0.1)
    assert time.perf_counter() - began < 2.0 and tflops > 0
    assert torch.equal(torch.get_rng_state(), state)  # dropout draws from it: resume stays exact


def test_a_real_runs_rows_carry_tflops_mfu_and_data_wait(
    small_corpus: Path, small_tokenizer: Path, tmp_path: Path
) -> None:
    cfg = tiny_config(
        small_corpus, tokenizer_dir=str(small_tokenizer), max_steps=6, log_every=2, checkpoint_every=100, seed=3
    ).resolved()
    trainer = Trainer(cfg, tmp_path / "run")
    events = list(trainer.events())
    started = events[0]
    assert isinstance(started, RunStarted)
    assert started.flops_per_token == speed.flops_per_token(cfg, trainer.vocab)
    assert started.peak_tflops and started.peak_tflops > 0 and started.peak_source
    assert started.peak_source.startswith(f"measured {'bf16' if trainer.bf16 else 'fp32'} matmul")
    assert started.flop_model == speed.flop_model(cfg)
    steps = [e for e in events if isinstance(e, StepLogged)]
    assert [s.step for s in steps] == [2, 4, 6]
    for row in steps:
        assert row.tflops == pytest.approx(row.tokens_per_s * started.flops_per_token / 1e12, rel=1e-4)
        assert row.mfu is not None and row.mfu == pytest.approx(row.tflops / started.peak_tflops, rel=1e-3)
        assert 0 < row.mfu < 2 and 0 <= row.data_wait <= 1
