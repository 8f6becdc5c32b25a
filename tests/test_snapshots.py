"""Snapshot tests (pytest-textual-snapshot) on a committed corpus, so every pixel is deterministic.

Update after an intended change with ``pytest tests/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.pilot import Pilot

from kantai_tui.tui.app import KantaiApp

TINY = "tests/data/tiny_corpus.txt"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the corpus path is shown relative, as a user would type it
    monkeypatch.setenv("XDG_DATA_HOME", "/nonexistent-kantai-snapshots")


async def _settled(pilot: Pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_corpus_pane(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(KantaiApp(corpus=TINY), terminal_size=size, run_before=_settled)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_tokenizer_pane_empty_state(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(KantaiApp(corpus=TINY), press=["2"], terminal_size=size, run_before=_settled)


def test_help_screen(snap_compare) -> None:
    assert snap_compare(KantaiApp(corpus=TINY), press=["2", "question_mark"], terminal_size=(80, 24), run_before=_settled)
