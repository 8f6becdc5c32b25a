"""Device status as immutable snapshots that never raise: a missing GPU, driver or library is a value.

Two sources, labelled because they disagree: torch (``torch.cuda``: what this process sees,
``mem_get_info`` free/total, and what this process allocated and reserved) and the driver
through NVML (``nvidia-ml-py``: utilization, memory used by every process, temperature, power,
per-process memory with PIDs). Devices are the ones ``CUDA_VISIBLE_DEVICES`` leaves visible,
in torch's order, matched to NVML by index or UUID. CPU and RAM come from psutil.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class GpuProcess:
    """A process holding memory on a GPU (from NVML); ``run`` is set for kantai's own trainers."""

    pid: int
    used_bytes: int | None
    name: str
    run: str | None = None


@dataclass(frozen=True)
class DriverStats:
    """What NVML reports for one GPU."""

    utilization_pct: float | None
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    temperature_c: float | None
    power_w: float | None
    power_limit_w: float | None
    processes: tuple[GpuProcess, ...] = ()


@dataclass(frozen=True)
class GpuSnapshot:
    """One visible GPU: torch's view, and the driver's when NVML is available."""

    index: int
    name: str
    capability: str
    total_bytes: int
    free_bytes: int | None  # torch.cuda.mem_get_info: free on the whole device
    allocated_bytes: int  # by this process (torch)
    reserved_bytes: int  # by this process's caching allocator (torch)
    driver: DriverStats | None = None

    @property
    def torch_used_bytes(self) -> int | None:
        """Memory in use on the whole device as torch sees it (total - free), None when unknown."""
        return None if self.free_bytes is None else self.total_bytes - self.free_bytes

    @property
    def used_bytes(self) -> int | None:
        """Memory in use on the device: the driver's figure when NVML answers, else torch's."""
        return self.driver.memory_used_bytes if self.driver else self.torch_used_bytes


@dataclass(frozen=True)
class HostSnapshot:
    cpu_pct: float | None
    cpu_count: int
    ram_used_bytes: int | None
    ram_total_bytes: int | None


@dataclass(frozen=True)
class DeviceSnapshot:
    """Everything the device pane and ``kantai gpu`` show, taken at one moment."""

    taken_at: float
    torch_version: str | None
    torch_cuda: str | None  # the CUDA version torch was built with; None for a CPU-only build
    cuda_available: bool
    visible_devices: str | None
    gpus: tuple[GpuSnapshot, ...]
    nvml: str  # "ok", or why the driver's numbers are missing
    host: HostSnapshot
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DeviceSnapshot:
        """A snapshot back from ``to_dict`` (``kantai gpu --json``): a capture from a real GPU replayed in a
        test (tests/fixtures/gpu/), there being no GPU where the tests run."""
        gpus = tuple(
            GpuSnapshot(
                **{
                    **g,
                    "driver": None
                    if g.get("driver") is None
                    else DriverStats(
                        **{
                            **g["driver"],
                            "processes": tuple(GpuProcess(**p) for p in g["driver"].get("processes", ())),
                        }
                    ),
                }
            )
            for g in data.get("gpus", ())
        )
        fields = {**data, "gpus": gpus, "host": HostSnapshot(**data["host"]), "notes": tuple(data.get("notes", ()))}
        return cls(**fields)


def probe_devices(kantai_pids: dict[int, str] | None = None) -> DeviceSnapshot:
    """Take a snapshot; every failure becomes a note or a None, never an exception."""
    notes: list[str] = []
    torch_version, torch_cuda, available, gpus = _torch_view(notes)
    nvml_status, driver = _driver_view(len(gpus), kantai_pids or {})
    gpus = tuple(_with_driver(g, driver.get(g.index)) for g in gpus)
    return DeviceSnapshot(
        time.time(),
        torch_version,
        torch_cuda,
        available,
        os.environ.get("CUDA_VISIBLE_DEVICES"),
        gpus,
        nvml_status,
        _host_view(notes),
        tuple(notes),
    )


def _with_driver(gpu: GpuSnapshot, stats: DriverStats | None) -> GpuSnapshot:
    return GpuSnapshot(**{**asdict(gpu), "driver": stats}) if stats else gpu


def _torch_view(notes: list[str]) -> tuple[str | None, str | None, bool, tuple[GpuSnapshot, ...]]:
    try:
        import torch
    except ImportError:
        notes.append("torch is not installed")
        return None, None, False, ()
    try:
        available = torch.cuda.is_available()
        gpus = tuple(_torch_gpu(torch, i) for i in range(torch.cuda.device_count())) if available else ()
    except RuntimeError as err:  # a broken driver or CUDA setup
        notes.append(f"torch.cuda failed: {err}")
        available, gpus = False, ()
    return torch.__version__, torch.version.cuda, available, gpus


def _torch_gpu(torch: ModuleType, index: int) -> GpuSnapshot:
    cuda = torch.cuda
    props = cuda.get_device_properties(index)
    try:
        free, total = cuda.mem_get_info(index)
    except RuntimeError:
        free, total = None, props.total_memory
    return GpuSnapshot(
        index,
        props.name,
        f"{props.major}.{props.minor}",
        total,
        free,
        cuda.memory_allocated(index),
        cuda.memory_reserved(index),
    )


def _nvml_indices(count: int) -> list[int | str]:
    """Physical NVML index (or UUID) of each torch device, following CUDA_VISIBLE_DEVICES."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None or not visible.strip():
        return list(range(count))
    items = [v.strip() for v in visible.split(",") if v.strip()]
    return [int(v) if v.isdigit() else v for v in items][:count]


def _driver_view(count: int, kantai_pids: dict[int, str]) -> tuple[str, dict[int, DriverStats]]:
    try:
        import pynvml
    except ImportError:
        return "nvidia-ml-py is not installed (pip install 'kantai-tui[gpu]')", {}
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as err:
        return f"no NVIDIA driver: {err}", {}
    try:
        stats = {i: _nvml_stats(pynvml, ref, kantai_pids) for i, ref in enumerate(_nvml_indices(count))}
    except pynvml.NVMLError as err:
        return f"NVML error: {err}", {}
    finally:
        pynvml.nvmlShutdown()
    return "ok", stats


def _nvml_stats(nv: ModuleType, ref: int | str, kantai_pids: dict[int, str]) -> DriverStats:
    """The driver's figures for one GPU; a query NVML refuses (an old driver, a MIG slice) is None."""
    handle = nv.nvmlDeviceGetHandleByIndex(ref) if isinstance(ref, int) else nv.nvmlDeviceGetHandleByUUID(ref)

    def read(fn: str, *args: object) -> Any:  # NVML's structs and numbers (nvidia-ml-py has no types)
        try:
            return getattr(nv, fn)(handle, *args)
        except nv.NVMLError:
            return None

    util, memory = read("nvmlDeviceGetUtilizationRates"), read("nvmlDeviceGetMemoryInfo")
    power, limit = read("nvmlDeviceGetPowerUsage"), read("nvmlDeviceGetEnforcedPowerLimit")
    temp = read("nvmlDeviceGetTemperature", 0)  # NVML_TEMPERATURE_GPU
    procs = read("nvmlDeviceGetComputeRunningProcesses") or []
    return DriverStats(
        utilization_pct=getattr(util, "gpu", None),
        memory_used_bytes=getattr(memory, "used", None),
        memory_total_bytes=getattr(memory, "total", None),
        temperature_c=temp,
        power_w=power / 1000 if power is not None else None,
        power_limit_w=limit / 1000 if limit is not None else None,
        processes=tuple(
            GpuProcess(p.pid, p.usedGpuMemory, _process_name(p.pid), kantai_pids.get(p.pid)) for p in procs
        ),
    )


def _process_name(pid: int) -> str:
    try:
        import psutil
    except ImportError:
        return "?"
    try:
        process = psutil.Process(pid)
        return " ".join(process.cmdline()[:3]) or process.name()
    except psutil.Error:  # gone, a zombie, or another user's process
        return "?"


def _host_view(notes: list[str]) -> HostSnapshot:
    try:
        import psutil
    except ImportError:
        notes.append("psutil is not installed: no CPU or RAM figures")
        return HostSnapshot(None, os.cpu_count() or 1, None, None)
    global _cpu_primed
    memory = psutil.virtual_memory()
    # psutil measures CPU between two calls; the first call of a process has nothing to compare with
    cpu = psutil.cpu_percent(interval=None if _cpu_primed else 0.1)
    _cpu_primed = True
    return HostSnapshot(cpu, psutil.cpu_count() or 1, memory.total - memory.available, memory.total)


_cpu_primed = False
