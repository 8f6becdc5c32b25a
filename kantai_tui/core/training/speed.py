"""Live speed that means something: training FLOPs per token, a named peak, and the utilisation between.

tokens/s alone cannot be compared across presets, block sizes or machines; achieved TFLOP/s can, and
its share of a named peak (model FLOPs utilisation, MFU) says how much of the hardware the run uses.

The FLOP model is ``presets.model_size``'s (the one the TUI and ``kantai presets`` show), called with
the run's block size and the share of positions the LM head runs on; it counts model FLOPs of real
tokens (padding and recomputation are not counted), which is the MFU convention (PaLM, appendix B).

Peaks: on CUDA, NVIDIA's nominal dense bf16 tensor figure for the GPU, looked up by name (the figure
torchtitan and MosaicML report MFU against), and beside it the bf16 matmul rate measured on the GPU
(what the device really reaches: an H200 measured 792 of its nominal 989); on a CPU only the measured
rate, since no table knows a CPU's vector units, clock and core count. Measurements are the best of every
run's check, kept as JSON in the user's cache folder.
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
MEASURE_S = 0.3  # matmul time a first measurement spends (plus one warm-up product)
RECHECK_S = 0.1  # … and each later run's check of it
GPU_GROUP = 10  # GPU matmuls queued between syncs (one 8192² bf16 product is about 1.4 ms on an H200)

# NVIDIA's published dense (not "with sparsity", which doubles them) tensor TFLOP/s, bf16 where the GPU
# has it (fp16 for V100 and T4, which have no bf16), and the datasheet each figure is read from. First match
# wins, so the specific names come first; torch names them e.g. "NVIDIA H100 80GB HBM3" (SXM), "NVIDIA H100
# PCIe", "NVIDIA A100-SXM4-80GB".
GPU_PEAKS: tuple[tuple[str, float, str, str], ...] = (
    (r"H100 PCIe", 756.0, "bf16", "H100 datasheet (2023), PCIe: 1,513 TFLOP/s bf16 with sparsity"),
    (r"H[12]00 NVL", 835.0, "bf16", "H100 NVL and H200 NVL datasheets: 1,671 TFLOP/s bf16 with sparsity"),
    # SXM; GH200 too (an H100/H200-class GPU)
    (r"H200|H100", 989.0, "bf16", "H100 and H200 datasheets, SXM: 1,979 TFLOP/s bf16 with sparsity"),
    (r"A100", 312.0, "bf16", "A100 datasheet (2021): 312 TFLOP/s bf16 dense, SXM and PCIe alike"),
    (r"L40S", 362.0, "bf16", "L40S datasheet: 733 TFLOP/s bf16 with sparsity"),
    (r"\bL4\b", 121.0, "bf16", "L4 datasheet: 242 TFLOP/s bf16 with sparsity"),
    (r"\bA10\b", 125.0, "bf16", "A10 datasheet: 250 TFLOP/s bf16 with sparsity (not the A10G, a different part)"),
    (r"RTX 4090", 165.0, "bf16", "Ada whitepaper, RTX 4090: 165.2 TFLOP/s bf16 dense with fp32 accumulate"),
    (r"V100", 125.0, "fp16", "V100 datasheet, SXM2: 125 TFLOP/s fp16 tensor"),
    (r"\bT4\b", 65.0, "fp16", "T4 datasheet: 65 TFLOP/s fp16 tensor"),
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
    peak: Peak | None  # MFU's denominator: a GPU's nominal figure, a CPU's measured one; None: not looked for
    matmul: Peak | None = None  # on CUDA, the matmul rate measured on the GPU, shown beside the nominal MFU

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
    peak, matmul = device_peaks(device, bf16) if with_peak else (None, None)
    if world > 1:
        peak, matmul = _times(peak, world), _times(matmul, world)
    return RunSpeed(flops_per_token(cfg, tokenizer_vocab), flop_model(cfg), peak, matmul)


def _times(peak: Peak | None, world: int) -> Peak | None:
    return None if peak is None else Peak(peak.tflops * world, f"{world} × {peak.source}")


def device_peaks(device: str, bf16: bool) -> tuple[Peak | None, Peak | None]:
    """(MFU's peak, the measured matmul rate shown beside it) for ``device``. On CUDA: the nominal figure
    from the table and a measurement (an unknown GPU: the measurement is the peak, and says so); on a CPU:
    the measurement alone."""
    if not device.startswith("cuda"):
        return cpu_peak("bf16" if bf16 else "fp32"), None
    import torch

    name = torch.cuda.get_device_name(device)
    measured = measured_peak("bf16", device)
    nominal = gpu_peak(name)
    if nominal is None:
        return Peak(measured.tflops, f"{measured.source} (no nominal figure known for {name})"), measured
    return nominal, measured


def gpu_peak(name: str) -> Peak | None:
    """NVIDIA's nominal dense bf16 (V100, T4: fp16) tensor peak for a GPU called ``name``; None if unknown.

    Always the 16-bit tensor figure, also for an fp32 (TF32) run: MFU against the bf16 peak is the
    convention, and it says what the run leaves on the table by not using bf16."""
    for pattern, tflops, dtype, _datasheet in GPU_PEAKS:
        if re.search(pattern, name):
            return Peak(tflops, f"{name} nominal dense {dtype}")
    return None


def cpu_peak(dtype: str, cache_dir: Path | None = None) -> Peak:
    """The measured matmul peak of this CPU for ``dtype`` ("fp32" or "bf16") at torch's thread count."""
    return measured_peak(dtype, "cpu", cache_dir)


def measured_peak(dtype: str, device: str = "cpu", cache_dir: Path | None = None) -> Peak:
    """The measured matmul peak of ``device`` for ``dtype``: the best of every measurement this machine made
    (cached as JSON, per CPU and thread count or per GPU name). The first takes about 0.3 s; later runs
    check again for RECHECK_S and keep the higher figure, so a peak first measured while other work
    shared the device (a low peak, an MFU read too high) does not stay wrong."""
    import torch

    version = torch.__version__
    if device.startswith("cuda"):
        where = torch.cuda.get_device_name(device)
        key, label = f"{where} | {dtype} | torch {version}", f"measured {dtype} matmul, {where}"
    else:
        threads, where = torch.get_num_threads(), cpu_name()
        key = f"{where} | {threads} threads | {dtype} | torch {version}"
        label = f"measured {dtype} matmul, {threads} thread{'s' if threads != 1 else ''}, {where}"
    path = (cache_dir or cache_home()) / CACHE_FILE
    cached = _cached(path, key)
    measured = measure_matmul_tflops(dtype, MEASURE_S if cached is None else RECHECK_S, device)
    tflops = max(cached or 0.0, measured)
    if tflops != cached:
        _store(path, key, tflops)
    return Peak(tflops, label)


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


def measure_matmul_tflops(dtype: str, seconds: float = MEASURE_S, device: str = "cpu") -> float:
    """The best rate of square matmuls over about ``seconds``: big enough to keep every unit busy (CPU: 1024,
    2048 above 8 threads; GPU: 8192, timed in groups of GPU_GROUP between syncs), the best of many to see
    through a neighbour's burst. Operands come from a private generator: the global RNG, which dropout
    draws from, is untouched (resume stays exact)."""
    import torch

    cuda = device.startswith("cuda")
    n = 8192 if cuda else 1024 if torch.get_num_threads() <= 8 else 2048
    group = GPU_GROUP if cuda else 1
    kind = torch.bfloat16 if dtype == "bf16" else torch.float32
    generator = torch.Generator().manual_seed(0)
    a = torch.rand((n, n), generator=generator).to(device=device, dtype=kind)
    b = torch.rand((n, n), generator=generator).to(device=device, dtype=kind)
    out = torch.empty((n, n), dtype=kind, device=device)
    sync = torch.cuda.synchronize if cuda else (lambda device=None: None)
    torch.matmul(a, b, out=out)  # warm-up: thread pool, packing buffers, cuBLAS handles
    sync(device)
    best, spent = 0.0, 0.0
    while spent < seconds:
        began = time.perf_counter()
        for _ in range(group):
            torch.matmul(a, b, out=out)
        sync(device)
        took = max(time.perf_counter() - began, 1e-9)
        spent += took
        best = max(best, group * 2 * n**3 / took)
    del a, b, out
    if cuda:
        torch.cuda.empty_cache()  # the 400 MB of operands go back: the run's memory figures are its own
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
