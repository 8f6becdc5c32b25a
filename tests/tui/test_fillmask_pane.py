"""Pilot test of the Fill-mask pane on a model trained inside the tests."""

from __future__ import annotations

import html
import time
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Select

from kantai_tui.tui.app import KantaiApp
from kantai_tui.tui.panes.fillmask import PromptInput
from tests.helpers import workers_settled


async def until(pilot: Pilot, predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            app = pilot.app
            raise AssertionError(
                f"timed out; error: {app.query_one('#fill-error').render()!r}; "
                f"compare: {app.query_one('#fill-compare').value!r}; prompt: {app.query_one(PromptInput).value!r}; focus: {app.focused}"
            )
        await pilot.pause(0.1)


def screen(app: KantaiApp) -> str:
    """The text on screen (the SVG export escapes < > and uses non-breaking spaces)."""
    return html.unescape(app.export_screenshot()).replace("\xa0", " ")


async def test_fill_mask_pane_predicts_compares_and_shows_probes(trained_run: Path, small_corpus: Path) -> None:
    app = KantaiApp(corpus=small_corpus, runs_dir=trained_run.parent)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        picker = app.query_one("#fill-model", Select)
        await until(pilot, lambda: isinstance(picker.value, str))
        assert picker.value.endswith("|")  # final/ is the default
        await until(pilot, lambda: "probe-run · final" in screen(app) and "%" in screen(app))
        assert "probes: top prediction at each checkpoint" in screen(app)
        prompt = app.query_one(PromptInput)
        await pilot.press("p", "ctrl+u", *"The <mask> of <mask>.", "enter")
        await until(pilot, lambda: "each <mask> predicted on its own" in screen(app))
        assert "<mask> #2" in screen(app)
        compare = app.query_one("#fill-compare", Select)
        compare.value = f"{trained_run}|10"
        await until(pilot, lambda: "probe-run · step 10" in screen(app))
        assert "probe-run · final" in screen(app)  # side by side
        await pilot.press("ctrl+u", *"no mask here")
        await until(pilot, lambda: "no <mask> in the text" in screen(app))
        await pilot.press("ctrl+u", "up")
        assert prompt.value == "The <mask> of <mask>."


async def test_picker_follows_the_newest_model_until_the_user_picks(trained_run: Path, small_corpus: Path) -> None:
    from kantai_tui.tui.panes.fillmask import FillMaskPane

    app = KantaiApp(corpus=small_corpus, runs_dir=trained_run.parent / "nothing-here")
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(FillMaskPane)
        picker = app.query_one("#fill-model", Select)
        step10, step20, final = f"{trained_run}|10", f"{trained_run}|20", f"{trained_run}|"
        await workers_settled(app)  # the first poll of the (empty) runs folder is in
        await pilot.pause()
        pane._show_models([("step 10", step10)])
        assert picker.value == step10
        pane._show_models([("step 20", step20), ("step 10", step10)])  # a new checkpoint was written
        assert picker.value == step20
        picker.value = step10  # the user picks an older one
        await pilot.pause()
        pane._show_models([("final", final), ("step 20", step20), ("step 10", step10)])
        assert picker.value == step10
        await workers_settled(app)
