"""Every control can be reached, and seen, by keyboard (issue 14, item 23): the focused box stands out, each
control has a key in the footer, ``?`` and the palette, and coming back to a text box never selects its text."""

from __future__ import annotations

import json
from pathlib import Path

from textual.color import Color
from textual.widgets import Input, OptionList, Select

from kantai_tui.tui.app import KantaiApp
from kantai_tui.tui.help_screen import HelpScreen
from kantai_tui.tui.panes.fillmask import FillMaskPane
from kantai_tui.tui.panes.tokenizer import TokenizerPane
from kantai_tui.tui.panes.training import TrainingPane
from tests.helpers import TINY, recorded_run, workers_settled
from tests.tui.test_app import screen_text, settle


def _distance(a: Color, b: Color) -> int:
    return max(abs(a.r - b.r), abs(a.g - b.g), abs(a.b - b.b))


async def test_the_focused_box_and_picker_stand_out(tmp_path: Path) -> None:
    """Before: a compact box's focus was Textual's 5% tint, background 39 against 30 (xterm 235 on 234)."""
    from textual.widgets._select import SelectCurrent

    app = KantaiApp(corpus=TINY, runs_dir=tmp_path / "runs", watch_devices=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        focused, other = app.query_one("#train-corpus", Input), app.query_one("#train-lr", Input)
        focused.focus()
        await pilot.pause()
        assert _distance(focused.background_colors[1], other.background_colors[1]) >= 40
        app.query_one("#train-preset", Select).focus()
        await pilot.pause()
        picked, unpicked = (app.query_one(f"#train-{n} SelectCurrent", SelectCurrent) for n in ("preset", "recipe"))
        assert _distance(picked.background_colors[1], unpicked.background_colors[1]) >= 40


async def test_attach_is_a_footer_key_and_the_runs_list_does_not_wrap(tmp_path: Path) -> None:
    """Before: attaching needed escape (shown only by ?) then enter; up on the first run went to the last."""
    runs = recorded_run(tmp_path)
    for name in ("second", "third"):
        (runs / name).mkdir()
        (runs / name / "run.json").write_text(json.dumps({"name": name, "config": {}}))
    app = KantaiApp(corpus=TINY, runs_dir=runs, watch_devices=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        runs_list = app.query_one("#train-runs", OptionList)
        for _ in range(50):
            if runs_list.option_count == 3:
                break
            await pilot.pause(0.1)
        footer = {key.key: key for key in app.query("FooterKey")}  # textual.widgets._footer.FooterKey
        assert footer["a"].description == "Attach run"
        assert footer["a"].region.right <= footer["ctrl+p"].region.x  # shown whole at 80 columns
        pane = app.query_one(TrainingPane)
        await pilot.press("up")
        assert runs_list.highlighted == 0
        await pilot.press("end", "down")
        assert runs_list.highlighted == 2
        app.query_one("#train-preset", Select).focus()
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        assert app.focused is runs_list and pane.attached == runs / str(runs_list.highlighted_option.id)
        await pilot.press("up", "a")
        await pilot.pause()
        assert pane.attached == runs / str(runs_list.highlighted_option.id) and runs_list.highlighted == 1
        await workers_settled(app)


async def test_the_open_box_has_a_label_completes_paths_and_keeps_its_text_on_shift_tab(tmp_path: Path) -> None:
    """Before: no label once the box was prefilled (the placeholder was its only label), no completion, and
    shift+tab back into it selected the whole path, so the next key replaced it."""
    (tmp_path / "kant-books").mkdir()
    (tmp_path / "kant-books" / "pure.txt").write_text("Reason.\n")
    app = KantaiApp(corpus=TINY, watch_devices=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("o")
        box = app.query_one("#corpus-open", Input)
        assert app.query_one("#corpus-open-row").display and "open corpus" in screen_text(app)
        assert box.has_focus and box.value == str(TINY) and box.selection.is_empty
        await pilot.press("tab", "shift+tab")
        assert box.has_focus and box.selection.is_empty
        await pilot.press("x")
        assert box.value == f"{TINY}x"  # typed at the end, not over the path
        box.value = f"{tmp_path}/kant-"  # the long temporary path at once, the last key typed
        box.cursor_position = len(box.value)
        await pilot.press("b")
        await pilot.pause(0.3)
        await pilot.press("right")
        assert box.value == f"{tmp_path}/kant-books/"
        await pilot.press("p")
        await pilot.pause(0.3)
        await pilot.press("right", "enter")
        await settle(pilot)
        assert app.corpus == tmp_path / "kant-books" / "pure.txt"


def test_path_completion_offers_folders_and_text_files(tmp_path: Path) -> None:
    from kantai_tui.tui.widgets.path_suggester import complete_path

    (tmp_path / "books").mkdir()
    (tmp_path / "book.txt").write_text("")
    (tmp_path / "book.bin").write_text("")
    (tmp_path / ".hidden.txt").write_text("")
    assert complete_path(f"{tmp_path}/bo") == f"{tmp_path}/book.txt"  # files and folders, sorted: "book.txt" < "books/"
    assert complete_path(f"{tmp_path}/books") == f"{tmp_path}/books/"
    assert complete_path(f"{tmp_path}/") == f"{tmp_path}/book.txt"  # hidden names only when asked for
    assert complete_path(f"{tmp_path}/.h") == f"{tmp_path}/.hidden.txt"
    assert complete_path(f"{tmp_path}/nothing") is None and complete_path("") is None
    assert complete_path(f"{tmp_path}/book.txt") is None  # complete already
    assert complete_path(f"{tmp_path}/no-such-folder/x") is None


async def test_sort_search_mode_and_model_picker_have_keys_in_help_and_palette(
    small_corpus: Path, small_tokenizer: Path
) -> None:
    """Before: the vocabulary's search mode and sort and the fill-mask model picker had no key."""
    app = KantaiApp(corpus=small_corpus, tokenizer=small_tokenizer, watch_devices=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("2", "m")
        assert app.query_one("#vocab-mode", Select).value == "prefix"
        await pilot.press("s", "s")
        assert app.query_one("#vocab-sort", Select).value == "bytes"
        await pilot.press("s")
        assert app.query_one("#vocab-sort", Select).value == "id"  # round again
        await settle(pilot)
        assert app.query_one(TokenizerPane).vocab is not None
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        help_text = screen_text(app).replace("&#160;", " ")
        assert "Search mode" in help_text and "Sort" in help_text
        await pilot.press("escape", "4", "p", "escape", "m")
        assert app.focused is app.query_one("#fill-model", Select)
        assert isinstance(app.query_one(FillMaskPane), FillMaskPane)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Tokenizer: Search mode", "Tokenizer: Sort", "Fill-mask: Model", "Training: Attach run"} <= titles
