"""Device pane: GPU cards (torch and driver numbers, labelled), processes, CPU and RAM, with short histories.

The pane does no IO: the app takes a snapshot about once a second in a thread worker and hands
it here (and a one-line summary to the header). Histories are the last 60 snapshots, drawn on a
fixed 0-100% scale (a sparkline scaled to its own range makes a flat 3% look full).
"""

from __future__ import annotations

from collections import deque

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Label, Static

from kantai_tui import views
from kantai_tui.core.device import DeviceSnapshot
from kantai_tui.tui.panes.base import Pane

HISTORY = 60


class DevicePane(Pane):
    """Shows the newest DeviceSnapshot and the recent history of utilization and memory."""

    TITLE = "Device"
    BODY = "#device-body"

    BINDINGS: list = []

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.snapshot: DeviceSnapshot | None = None
        self.history: dict[str, deque[float]] = {}
        self._mounted: set[int] = set()

    def compose(self) -> ComposeResult:
        yield Label("waiting for the first device snapshot…", id="device-title", classes="pane-title")
        with VerticalScroll(id="device-body"):
            yield Static("", id="device-table")
            with Horizontal(classes="spark-row"):
                yield Label("CPU %", classes="spark-label")
                yield Static("", id="spark-cpu", classes="spark")
            with Horizontal(classes="spark-row"):
                yield Label("RAM %", classes="spark-label")
                yield Static("", id="spark-ram", classes="spark")
            yield Vertical(id="gpu-sparks")

    def show(self, snapshot: DeviceSnapshot) -> None:
        """Draw a snapshot and extend the histories."""
        self.snapshot = snapshot
        build = (
            "CPU-only torch build" if snapshot.torch_cuda is None else f"torch built with CUDA {snapshot.torch_cuda}"
        )
        gpus = f"{len(snapshot.gpus)} GPU(s)" if snapshot.gpus else "no CUDA device"
        self.query_one("#device-title", Label).update(escape(f"{gpus} · {build} · driver: {snapshot.nvml}"))
        self.query_one("#device-table", Static).update(views.device_renderable(snapshot))
        host = snapshot.host
        self._push("spark-cpu", host.cpu_pct)
        ram = 100 * host.ram_used_bytes / host.ram_total_bytes if host.ram_used_bytes and host.ram_total_bytes else None
        self._push("spark-ram", ram)
        self._mount_gpu_sparks(snapshot)
        for gpu in snapshot.gpus:
            used = gpu.driver.memory_used_bytes if gpu.driver else (gpu.total_bytes - (gpu.free_bytes or 0))
            self._push(f"spark-gpu{gpu.index}-mem", 100 * (used or 0) / gpu.total_bytes)
            self._push(f"spark-gpu{gpu.index}-util", gpu.driver.utilization_pct if gpu.driver else None)

    def _mount_gpu_sparks(self, snapshot: DeviceSnapshot) -> None:
        """History rows for GPUs not shown before (the set can change, e.g. a recorded snapshot in tests)."""
        box = self.query_one("#gpu-sparks", Vertical)
        for gpu in snapshot.gpus:
            if gpu.index in self._mounted:
                continue
            self._mounted.add(gpu.index)
            for kind in ("util", "mem"):
                row = Horizontal(
                    Label(f"GPU{gpu.index} {kind} %", classes="spark-label"),
                    Static("", id=f"spark-gpu{gpu.index}-{kind}", classes="spark"),
                    classes="spark-row",
                )
                box.mount(row)

    def _push(self, spark_id: str, value: float | None) -> None:
        if value is None:
            return
        series = self.history.setdefault(spark_id, deque(maxlen=HISTORY))
        series.append(float(value))
        for spark in self.query(f"#{spark_id}").results(Static):
            spark.update(views.spark(series))
