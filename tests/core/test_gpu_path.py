"""The pieces of the CUDA path that a CPU can check: masking with no read-back, the compile mode, the
mask stream of a run moved between devices, and the peaks. What needs a GPU is in tests/gpu/."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from kantai_tui.core.training.masking import FIRST_REGULAR_ID, IGNORE_INDEX, mask_tokens
from kantai_tui.core.training.step import compile_mode, to_device, use_compile
from tests.helpers import tiny_config


def _boolean_assignment_masking(
    input_ids: torch.Tensor, mask_id: int, vocab_size: int, generator: torch.Generator, probability: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """mask_tokens as it was written before masking moved to the device (``x[mask] = y`` syncs on CUDA)."""
    labels = input_ids.clone()
    special = input_ids < FIRST_REGULAR_ID
    chance = torch.full(input_ids.shape, probability).masked_fill_(special, 0.0)
    chosen = torch.bernoulli(chance, generator=generator).bool()
    labels[~chosen] = IGNORE_INDEX
    inputs = input_ids.clone()
    to_mask = torch.bernoulli(torch.full(input_ids.shape, 0.8), generator=generator).bool() & chosen
    inputs[to_mask] = mask_id
    to_random = torch.bernoulli(torch.full(input_ids.shape, 0.5), generator=generator).bool() & chosen & ~to_mask
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator, dtype=input_ids.dtype)
    inputs[to_random] = random_ids[to_random]
    return inputs, labels


def test_masking_without_read_back_draws_exactly_what_it_drew_before() -> None:
    """A CPU run checkpointed by an older kantai resumes with the same masks (and so the same losses)."""
    ids = torch.randint(0, 2000, (16, 64), generator=torch.Generator().manual_seed(0))
    ids[:, 0], ids[:, -6:] = 0, 1  # <s> and padding: never chosen
    new = mask_tokens(ids, mask_id=4, vocab_size=2000, generator=torch.Generator().manual_seed(7), probability=0.3)
    old = _boolean_assignment_masking(ids, 4, 2000, torch.Generator().manual_seed(7), 0.3)
    assert torch.equal(new[0], old[0]) and torch.equal(new[1], old[1])


def test_cuda_graphs_only_where_one_process_runs_whole_steps() -> None:
    assert compile_mode("auto", "cuda", whole_steps=True) == "reduce-overhead"
    assert compile_mode("auto", "cuda:1", whole_steps=False) == "default"  # accumulation, chunks, DDP
    assert compile_mode("auto", "cpu", whole_steps=True) == "default"  # a CPU has no CUDA graphs
    assert compile_mode("on", "cuda", whole_steps=True) == "default"
    assert compile_mode("max-autotune", "cpu", whole_steps=False) == "max-autotune"
    assert use_compile("reduce-overhead", "cpu") and not use_compile("off", "cuda")


def test_a_cpu_batch_stays_where_it_is() -> None:
    batch = np.arange(12, dtype=np.int64).reshape(3, 4)
    tensor = to_device(batch, "cpu")
    assert tensor.device.type == "cpu" and tensor.tolist() == batch.tolist()


def test_a_checkpoint_from_the_other_kind_of_device_resumes_with_a_fresh_mask_stream_and_says_so(
    small_corpus: Path, small_tokenizer: Path, tmp_path: Path
) -> None:
    from kantai_tui.core.training.trainer import Trainer

    cfg = tiny_config(small_corpus, tokenizer_dir=str(small_tokenizer), batch_size=None, max_steps=2, device="cpu")
    cfg = cfg.resolved()
    trainer = Trainer(cfg, tmp_path / "r")
    trainer.state = replace(trainer.state, step=40)
    trainer._restore_masks({"mask_cuda": torch.zeros(16, dtype=torch.uint8)})  # what a CUDA generator saves
    assert trainer.notes == [
        "the checkpoint at step 40 was written on a GPU: masks go on from a fresh stream, so this resume is "
        "not bit-exact (the weights, optimizer and data order are)"
    ]
    expected = torch.Generator().manual_seed(cfg.seed + 1 + 40).get_state()
    assert torch.equal(trainer.mask_generator.get_state(), expected)


def test_on_a_cpu_the_peak_is_the_measurement_and_there_is_no_second_figure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from kantai_tui.core.training import speed

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    peak, matmul = speed.device_peaks("cpu", bf16=False)
    assert peak is not None and peak.source.startswith("measured fp32 matmul") and matmul is None


def test_a_machine_without_an_nvidia_driver_is_told_apart_without_importing_torch() -> None:
    """Regression: asking torch cost every `kantai train` on a CPU machine its import (seconds) before the
    trainer even started; the suite took 80 s longer."""
    import os
    import shutil
    import subprocess
    import sys

    from kantai_tui.core.training.step import NVIDIA_SIGNS

    if any(os.path.exists(sign) for sign in NVIDIA_SIGNS) or shutil.which("nvidia-smi"):
        pytest.skip("this machine has an NVIDIA driver: torch is rightly asked")
    code = "import sys; from kantai_tui.core.training.step import may_use_cuda; print(may_use_cuda('auto'), 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
