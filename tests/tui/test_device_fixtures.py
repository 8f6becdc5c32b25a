"""The Device pane against captures from real machines: ``benchmarks/capture_device.py`` records the pane
in tmux and, at the same moment, ``kantai gpu --json``; replayed here, the pane must show what that
terminal showed (the figures that do not move between the two moments: names, versions, the driver's
state, the trainer's run). One folder per machine under tests/fixtures/gpu/ (a GPU capture comes from a
lent GPU machine's gpu_session.sh; the CPU one from this machine)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from kantai_tui import views
from kantai_tui.core.device import DeviceSnapshot

FIXTURES = sorted((Path(__file__).parent.parent / "fixtures" / "gpu").glob("*/device-pane-*.json"))


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.parametrize("recorded", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_the_pane_shows_a_recorded_snapshot_as_the_terminal_did(recorded: Path) -> None:
    snapshot = DeviceSnapshot.from_dict(json.loads(recorded.read_text()))
    assert DeviceSnapshot.from_dict(snapshot.to_dict()) == snapshot
    screen = _flat(recorded.with_suffix(".txt").read_text())
    width = int(recorded.stem.split("-")[-1].split("x")[0])
    console = Console(width=width, record=True, color_system=None)
    console.print(views.device_renderable(snapshot))
    table = console.export_text().splitlines()
    build = "CPU-only torch build" if snapshot.torch_cuda is None else f"torch built with CUDA {snapshot.torch_cuda}"
    gpus = f"{len(snapshot.gpus)} GPU(s)" if snapshot.gpus else "no CUDA device"
    assert _flat(f"{gpus} · {build} · driver: {snapshot.nvml}") in screen
    assert _flat(next(line for line in table if line.strip().startswith("torch"))) in screen
    for gpu in snapshot.gpus:
        assert _flat(f"GPU {gpu.index} {gpu.name} · compute capability {gpu.capability}") in screen
        for process in gpu.driver.processes if gpu.driver else ():
            if process.run:  # kantai's own trainer is marked with its run's name
                assert process.run in screen
