"""Device status: the real probe on this CPU-only machine, and the pane on recorded GPU snapshots.

The GPU snapshots below are RECORDED DATA standing in for hardware this machine does not have
(the fake is at the hardware boundary only: the pane and views code are the real ones).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kantai_tui.cli import main
from kantai_tui.core.device import DeviceSnapshot, GpuProcess, probe_devices
from kantai_tui.format import device_summary
from kantai_tui.tui.app import KantaiApp
from kantai_tui.tui.panes.device import DevicePane
from tests.helpers import GIB, recorded_h100


def test_probe_on_this_machine_is_the_no_gpu_snapshot() -> None:
    snapshot = probe_devices()
    assert snapshot.cuda_available is False and snapshot.gpus == ()
    assert snapshot.torch_cuda is None  # the CPU-only build
    assert snapshot.nvml != "ok"
    assert snapshot.host.cpu_count >= 1 and snapshot.host.ram_total_bytes > 0
    assert device_summary(snapshot).startswith("no GPU · CPU ")


def test_kantai_gpu_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gpu", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["gpus"] == [] and data["cuda_available"] is False and data["host"]["cpu_count"] >= 1
    assert main(["gpu"]) == 0
    assert "no CUDA device" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("snapshot", "expected", "absent"),
    [
        (
            recorded_h100((GpuProcess(4242, 58 * GIB, "python -m kantai_tui train", "kant-1"),)),
            [
                "NVIDIA H100 80GB HBM3",
                "utilization [driver]",
                "87%",
                "pid 4242",
                "[kantai run kant-1]",
                "memory [torch]",
            ],
            [],
        ),
        (recorded_h100(()), ["processes", "none"], ["pid "]),
        (
            recorded_h100((), nvml=False),
            ["driver", "nvidia-ml-py is not installed", "memory [torch]"],
            ["utilization [driver]"],
        ),
    ],
    ids=["with-kantai-process", "no-processes", "nvml-missing"],
)
async def test_device_pane_renders_recorded_gpu_snapshots(
    snapshot: DeviceSnapshot, expected: list[str], absent: list[str], tmp_path: Path
) -> None:
    app = KantaiApp(corpus=tmp_path / "none.txt", runs_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("5")
        pane = app.query_one(DevicePane)
        pane.show(snapshot)
        pane.show(snapshot)
        await pilot.pause()
        screen = app.export_screenshot().replace("&#160;", " ")
        for text in expected:
            assert text in screen, text
        for text in absent:
            assert text not in screen, text
        assert len(pane.history["spark-gpu0-mem"]) == 2
