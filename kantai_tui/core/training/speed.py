"""Live speed that means something: training FLOPs per token, a named peak, and the utilisation between.

tokens/s alone cannot be compared across presets, block sizes or machines; achieved TFLOP/s can, and
its share of a named peak (model FLOPs utilisation, MFU) says how much of the hardware the run uses.

The FLOP model is ``presets.model_size``'s (the one the TUI and ``kantai presets`` show), called with
the run's block size and the share of positions the LM head runs on; it counts model FLOPs of real
tokens (padding and recomputation are not counted), which is the MFU convention (PaLM, appendix B).

Peaks: on CUDA, NVIDIA's nominal dense bf16 tensor figure for the GPU, looked up by name (no device
work); on a CPU, a square-matmul rate measured on the machine, the best of every run's check kept as JSON in
the user's cache folder, since no table knows a CPU's vector units, clock and core count.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kantai_tui.core.files import read_json, write_json_atomic
from kantai_tui.core.paths import cache_home
from kantai_tui.core.training.masking import slot_count
from kantai_tui.core.training.presets import get_preset, model_size

if TYPE_CHECKING:
    from kantai_tui.core.training.config import TrainConfig

# N: the encoder's and the LM head's matmul weights (embedding lookups cost no FLOPs); 12·L·T·H: attention
# scores and values at block size T; forward and backward: 3 times the forward's 2 FLOPs per multiply-add
FLOP_MODEL = "6·N + 12·L·T·H per token (N: encoder and LM-head weights), LM head at {head}"
CACHE_FILE = "matmul_peak.json"
MEASURE_S = 0.3  # matmul time the CPU measurement spends (plus one warm-up product)
RECHECK_S = 0.1  # … and each later run's check of it

# NVIDIA's published dense (not "with sparsity", which doubles them) tensor TFLOP/s, bf16 where the GPU
# has it (fp16 for V100 and T4, which have no bf16). First match wins, so the specific names come first;
# torch names them e.g. "NVIDIA H100 80GB HBM3" (SXM), "NVIDIA H100 PCIe", "NVIDIA A100-SXM4-80GB".
GPU_PEAKS: tuple[tuple[str, float, str], ...] = (
    (r"H100 PCIe", 756.0, "bf16"),
    (r"H[12]00 NVL", 835.0, "bf16"),
    (r"H200|H100", 989.0, "bf16"),  # SXM; GH200 too (an H100/H200-class GPU)
    (r"A100", 312.0, "bf16"),  # SXM and PCIe alike
    (r"L40S", 362.0, "bf16"),
    (r"\bL4\b", 121.0, "bf16"),
    (r"\bA10\b", 125.0, "bf16"),  # not the A10G, a different part
    (r"RTX 4090", 165.0, "bf16"),  # with fp32 accumulate, as training uses
    (r"V100", 125.0, "fp16"),
    (r"\bT4\b", 65.0, "fp16"),
)


@dataclass(frozen=True)
class Peak:
    """The TFLOP/s MFU is measured against, and where the figure comes from (shown beside it)."""

    tflops: float
    source: str


@dataclass(frozen=True)
class RunSpeed:
    """What turns a run's tokens/s into achieved TFLOP/s and MFU."""

    flops_per_token: int
    flop_model: str
    peak: Peak | None  # None: a GPU the table does not know; MFU is then not given

    def tflops(self, tokens_per_s: float) -> float:
        """Achieved training TFLOP/s at ``tokens_per_s`` real tokens a second."""
        return tokens_per_s * self.flops_per_token / 1e12

    def mfu(self, tokens_per_s: float) -> float | None:
        """Model FLOPs utilisation: achieved over peak (0-1, above 1 only if the peak was measured low)."""
        return None if self.peak is None else self.tflops(tokens_per_s) / self.peak.tflops


def head_fraction(cfg: TrainConfig) -> float:
    """The share of positions the LM head runs on: the fixed masked slots of a packed block, the mask rate
    with the sparse head on padded lines, every position with the classic full head."""
    if not cfg.sparse_head:
        return 1.0
    if cfg.recipe == "packed":
        return slot_count(cfg.block_size, cfg.mask_rate) / cfg.block_size
    return cfg.mask_rate


def flop_model(cfg: TrainConfig) -> str:
    """The FLOP model in words, for the started row and the printer."""
    return FLOP_MODEL.format(head="masked positions only" if cfg.sparse_head else "every position")


def flops_per_token(cfg: TrainConfig, tokenizer_vocab: int) -> int:
    """Training FLOPs (forward and backward) per real token of this run, by ``presets.model_size``."""
    size = model_size(get_preset(cfg.preset), tokenizer_vocab, cfg.batch, cfg.block_size, head_fraction(cfg))
    return size.train_flops_per_token


def run_speed(
    cfg: TrainConfig, tokenizer_vocab: int, device: str, bf16: bool, world: int = 1, with_peak: bool = True
) -> RunSpeed:
    """The run's FLOP model and peak; ``world`` processes (torchrun) count ``world`` devices' peak, as the
    logged tokens/s is the whole global batch's. ``with_peak`` False leaves the peak out (ranks other than
    0 record nothing, and on a CPU their measurements would compete with each other for the cores)."""
    peak = device_peak(device, bf16) if with_peak else None
    if peak is not None and world > 1:
        peak = Peak(peak.tflops * world, f"{world} × {peak.source}")
    return RunSpeed(flops_per_token(cfg, tokenizer_vocab), flop_model(cfg), peak)


def device_peak(device: str, bf16: bool) -> Peak | None:
    """The peak of ``device``: a table lookup on CUDA, a cached measurement on a CPU."""
    if device.startswith("cuda"):
        import torch

        return gpu_peak(torch.cuda.get_device_name(device))
    return cpu_peak("bf16" if bf16 else "fp32")


def gpu_peak(name: str) -> Peak | None:
    """NVIDIA's nominal dense bf16 (V100, T4: fp16) tensor peak for a GPU called ``name``; None if unknown.

    Always the 16-bit tensor figure, also for an fp32 (TF32) run: MFU against the bf16 peak is the
    convention, and it says what the run leaves on the table by not using bf16."""
    for pattern, tflops, dtype in GPU_PEAKS:
        if re.search(pattern, name):
            return Peak(tflops, f"{name} nominal dense {dtype}")
    return None


def cpu_peak(dtype: str, cache_dir: Path | None = None) -> Peak:
    """The measured matmul peak of this CPU for ``dtype`` ("fp32" or "bf16") at torch's thread count: the
    best of every measurement this machine made (cached as JSON). The first takes about 0.3 s; later runs
    check again for RECHECK_S and keep the higher figure, so a peak first measured while other work
    shared the cores (a low peak, an MFU read too high) does not stay wrong."""
    import torch

    threads, cpu, version = torch.get_num_threads(), cpu_name(), torch.__version__
    key = f"{cpu} | {threads} threads | {dtype} | torch {version}"
    path = (cache_dir or cache_home()) / CACHE_FILE
    cached = _cached(path, key)
    measured = measure_matmul_tflops(dtype, MEASURE_S if cached is None else RECHECK_S)
    tflops = max(cached or 0.0, measured)
    if tflops != cached:
        _store(path, key, tflops)
    plural = "s" if threads != 1 else ""
    return Peak(tflops, f"measured {dtype} matmul, {threads} thread{plural}, {cpu}")


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), else the machine type."""
    import platform

    fallback = platform.processor() or platform.machine() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:  # no /proc (macOS)
        return fallback
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name") and ":" in line]
    return names[0] if names and names[0] else fallback


def measure_matmul_tflops(dtype: str, seconds: float = MEASURE_S) -> float:
    """The best rate of square matmuls over about ``seconds``: big enough to keep every core busy (1024;
    2048 above 8 threads), the best of many to see through a neighbour's burst. Operands come from a
    private generator: the global RNG, which dropout draws from, is untouched (resume stays exact)."""
    import torch

    n = 1024 if torch.get_num_threads() <= 8 else 2048
    kind = torch.bfloat16 if dtype == "bf16" else torch.float32
    generator = torch.Generator().manual_seed(0)
    a = torch.rand((n, n), generator=generator).to(kind)
    b = torch.rand((n, n), generator=generator).to(kind)
    out = torch.empty((n, n), dtype=kind)
    torch.matmul(a, b, out=out)  # warm-up: thread pool, packing buffers
    best, spent = 0.0, 0.0
    while spent < seconds:
        began = time.perf_counter()
        torch.matmul(a, b, out=out)
        took = max(time.perf_counter() - began, 1e-9)
        spent += took
        best = max(best, 2 * n**3 / took)
    return best / 1e12


def _cached(path: Path, key: str) -> float | None:
    entry = ((read_json(path) or {}).get("peaks") or {}).get(key)
    value = entry.get("tflops") if isinstance(entry, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return float(value)
    return None


def _store(path: Path, key: str, tflops: float) -> None:
    """Add one measurement to the cache file (JSON, replaced atomically). A cache that cannot be written (a
    read-only home) only means measuring again next time, never a failed run."""
    found = (read_json(path) or {}).get("peaks")
    peaks: dict = found if isinstance(found, dict) else {}
    peaks[key] = {"tflops": tflops, "measured": time.time()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {"peaks": peaks})
    except OSError:
        return  # measured again next run; the figure itself is good
