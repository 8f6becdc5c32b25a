"""Snapshot tests (pytest-textual-snapshot) on a committed corpus, so every pixel is deterministic.

Update after an intended change with ``pytest tests/tui/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from kantai_tui.tui.app import KantaiApp
from tests.helpers import ROOT, recorded_h100, recorded_run, workers_settled

TINY = "tests/data/tiny_corpus.txt"


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the corpus path is shown relative, as a user would type it
    monkeypatch.setenv("XDG_DATA_HOME", "/nonexistent-kantai-snapshots")


async def _settled(pilot: Pilot) -> None:
    await workers_settled(pilot.app)
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_corpus_pane(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(KantaiApp(corpus=TINY, watch_devices=False), terminal_size=size, run_before=_settled)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_tokenizer_pane_empty_state(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(
        KantaiApp(corpus=TINY, watch_devices=False), press=["2"], terminal_size=size, run_before=_settled
    )


def test_help_screen(snap_compare) -> None:
    assert snap_compare(
        KantaiApp(corpus=TINY, watch_devices=False),
        press=["2", "question_mark"],
        terminal_size=(80, 24),
        run_before=_settled,
    )


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_training_pane_empty(snap_compare, size: tuple[int, int]) -> None:
    app = KantaiApp(corpus=TINY, runs_dir="/nonexistent-kantai-runs", watch_devices=False)
    assert snap_compare(app, press=["3"], terminal_size=size, run_before=_settled)


async def _attach_first_run(pilot: Pilot) -> None:
    await _settled(pilot)
    await pilot.press("3")
    await pilot.pause(0.3)
    await pilot.press("enter")
    await pilot.pause(0.5)
    await _settled(pilot)


def test_training_pane_with_a_recorded_run(snap_compare, tmp_path: Path) -> None:
    app = KantaiApp(corpus=TINY, runs_dir=recorded_run(tmp_path), watch_devices=False)
    assert snap_compare(app, terminal_size=(120, 40), run_before=_attach_first_run)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_device_pane_with_a_recorded_gpu(snap_compare, size: tuple[int, int]) -> None:
    """RECORDED GPU data (this machine has no GPU): the hardware boundary is the only fake."""
    from kantai_tui.core.device import GpuProcess

    async def show(pilot: Pilot) -> None:
        await _settled(pilot)
        await pilot.press("5")
        pane = pilot.app.query_one("#device-pane")
        for _ in range(3):
            pane.show(recorded_h100((GpuProcess(4242, 58 * 2**30, "python -m kantai_tui train", "kant-1"),)))
        await pilot.pause()

    assert snap_compare(KantaiApp(corpus=TINY, watch_devices=False), terminal_size=size, run_before=show)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_tokenizer_pane_with_a_trained_tokenizer(snap_compare, size: tuple[int, int]) -> None:
    """A real tokenizer trained on the committed corpus (training is deterministic) into a fixed folder
    (the pane shows its path); its recorded training time is pinned, the one figure that changes."""
    import json
    import shutil

    from kantai_tui.core.tokenizer.bpe import train_tokenizer

    # one folder per size: the two sizes run at once on two test workers, and one emptied the other's folder
    folder = Path(f"/tmp/kantai-snapshot-tokenizer-{size[0]}x{size[1]}")
    shutil.rmtree(folder, ignore_errors=True)
    train_tokenizer(ROOT / TINY, folder, vocab_size=400)
    meta = json.loads((folder / "kantai.json").read_text())
    (folder / "kantai.json").write_text(json.dumps({**meta, "seconds": 0.25}))

    async def browse(pilot: Pilot) -> None:
        await _settled(pilot)
        await pilot.press("2")
        await _settled(pilot)
        await pilot.press("/")
        await pilot.press(*"re")
        for _ in range(4):  # the search, then the token counts it may start, then their display
            await pilot.pause(0.2)
            await _settled(pilot)
        await pilot.press("escape")  # back to the table: no blinking cursor in the picture
        await _settled(pilot)

    app = KantaiApp(corpus=TINY, tokenizer=folder, watch_devices=False)
    assert snap_compare(app, terminal_size=size, run_before=browse)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_fill_mask_pane_empty_state(snap_compare, size: tuple[int, int]) -> None:
    app = KantaiApp(corpus=TINY, runs_dir="/nonexistent-kantai-runs", watch_devices=False)
    assert snap_compare(app, press=["4"], terminal_size=size, run_before=_settled)


def test_training_pane_with_a_recorded_run_80x24(snap_compare, tmp_path: Path) -> None:
    app = KantaiApp(corpus=TINY, runs_dir=recorded_run(tmp_path), watch_devices=False)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_attach_first_run)


async def _compare_three_runs(pilot: Pilot) -> None:
    """Attach to the newest run, mark the other two with space (each read in a worker), then settle."""
    await _settled(pilot)
    await pilot.press("3")
    await pilot.pause(0.3)
    await _settled(pilot)
    await pilot.press("enter", "down", "space", "down", "space")
    for _ in range(3):  # the marked runs' read, then the attached run's first poll
        await pilot.pause(0.3)
        await _settled(pilot)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_training_pane_overlay(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:
    """Three recorded runs with different lr overlaid, each in its colour, the diff under the chart: at a
    glance, lr-3e-3 learned fastest (its held-out loss is bold) and the runs differ in lr and batch size."""
    from tests.tui.compared_runs import compared_runs

    app = KantaiApp(corpus=TINY, runs_dir=compared_runs(tmp_path), watch_devices=False)
    assert snap_compare(app, terminal_size=size, run_before=_compare_three_runs)
