"""Preferences: kept in the XDG config folder, never required, applied and updated by the TUI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kantai_tui.core.prefs import FILE, Preferences, config_home, load_preferences, save_preferences
from kantai_tui.tui.app import KantaiApp, starting_point
from kantai_tui.tui.panes.training import TrainingPane
from tests.helpers import TINY, recorded_run


def test_the_file_lives_in_xdg_config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_home() == tmp_path / "kantai"
    assert save_preferences(Preferences(theme="nord", runs_dir="/r"))
    assert json.loads((tmp_path / "kantai" / FILE).read_text())["theme"] == "nord"
    assert load_preferences() == Preferences(theme="nord", runs_dir="/r")


@pytest.mark.parametrize("content", ["", "{", "[1, 2]", '"theme"', '{"theme": 7, "runs_dir": ["x"], "last_run": "r"}'])
def test_a_broken_file_means_defaults(tmp_path: Path, content: str) -> None:
    (tmp_path / FILE).write_text(content)
    prefs = load_preferences(tmp_path)
    assert prefs.theme is None and prefs.runs_dir is None
    assert prefs.last_run == ("r" if "last_run" in content else None)  # the one well-typed value is kept


def test_an_unwritable_config_folder_is_not_an_error(tmp_path: Path) -> None:
    """A config 'folder' under a regular file cannot be created, even by root (a read-only home would skip as root)."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    assert save_preferences(Preferences(theme="nord"), blocker / "kantai") is False
    assert load_preferences(blocker / "kantai") == Preferences()


def test_options_win_then_last_time_then_defaults(tmp_path: Path) -> None:
    prefs = Preferences(last_corpus=str(TINY), runs_dir=str(tmp_path / "old-runs"))
    assert starting_point(None, None, prefs) == (str(TINY), str(tmp_path / "old-runs"))
    assert starting_point("other.txt", "new-runs", prefs) == ("other.txt", "new-runs")
    gone = Preferences(last_corpus=str(tmp_path / "deleted.txt"))
    assert starting_point(None, None, gone) == (None, "runs")  # None: the bundled corpus


async def test_the_tui_applies_and_keeps_preferences(tmp_path: Path) -> None:
    runs = recorded_run(tmp_path)
    config = tmp_path / "config"
    save_preferences(Preferences(theme="textual-light", last_run="demo"), config)
    app = KantaiApp(corpus=TINY, runs_dir=runs, watch_devices=False, prefs_folder=config)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.theme == "textual-light"
        pane = app.query_one(TrainingPane)
        for _ in range(50):
            if pane.attached is not None:
                break
            await pilot.pause(0.1)
        assert pane.attached == runs / "demo"  # the run watched last time
        app.theme = "nord"
        await pilot.pause()
    saved = load_preferences(config)
    assert saved.theme == "nord" and saved.last_run == "demo"
    assert saved.last_corpus == str(TINY.resolve()) and saved.runs_dir == str(runs.resolve())


async def test_without_a_preferences_folder_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    app = KantaiApp(corpus=TINY, runs_dir=tmp_path / "runs", watch_devices=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.theme = "nord"
        await pilot.pause()
    assert not (tmp_path / "config").exists()


@pytest.mark.parametrize("where", ["a-file", "a-file/runs"])
async def test_a_runs_folder_that_cannot_hold_runs_is_shown_in_the_pane_and_not_remembered(
    tmp_path: Path, small_corpus: Path, where: str
) -> None:
    """`s` with such a folder ended the app (an OSError the pane did not catch) after the folder had been
    saved in the preferences, so the next bare `kantai` failed again."""
    from tests.tui.test_training_pane import until

    (tmp_path / "a-file").write_text("x")
    config = tmp_path / "config"
    app = KantaiApp(corpus=small_corpus, runs_dir=tmp_path / where, watch_devices=False, prefs_folder=config)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3", "escape", "s")
        error = app.query_one("#train-error")
        await until(pilot, lambda: "a-file" in str(error.render()))
        assert app.is_running
        assert "not a folder" in str(error.render()) or "cannot create runs there" in str(error.render())
    assert load_preferences(config).runs_dir is None
