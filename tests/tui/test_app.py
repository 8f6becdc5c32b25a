"""Pilot tests: drive both panes with the keyboard, on real corpora and real tokenizers."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

from kantai_tui.core.paths import tokenizer_dir_for
from kantai_tui.tui.app import KantaiApp
from kantai_tui.tui.help_screen import HelpScreen
from kantai_tui.tui.panes.corpus import CorpusPane
from kantai_tui.tui.panes.tokenizer import TokenizerPane
from kantai_tui.tui.widgets.vocab_table import VocabTable
from tests.helpers import TINY, workers_settled


async def settle(pilot: Pilot) -> None:
    """Wait until no worker is running and every message they caused was handled."""
    app = pilot.app
    for _ in range(20):
        await workers_settled(app)
        await pilot.pause()
        if not any(w.is_running for w in app.workers):
            return


def text_of(app: KantaiApp, selector: str) -> str:
    """The plain text a Static or Label shows."""
    widget = app.query_one(selector, Static)
    return str(widget.render())


def screen_text(app: KantaiApp) -> str:
    return app.export_screenshot().replace("&#160;", " ")


async def test_corpus_pane_shows_statistics(small_corpus: Path) -> None:
    app = KantaiApp(corpus=small_corpus)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        stats = app.query_one(CorpusPane).stats
        assert stats is not None and stats.nonempty_lines > 2000
        screen = screen_text(app)
        assert f"{stats.nonempty_lines:,}" in screen and "top words" in screen and "line length" in screen


async def test_a_json_lines_corpus_with_another_field_scans_and_trains_its_tokenizer(
    small_corpus: Path, tmp_path: Path
) -> None:
    """kantai tui --text-field body: the Corpus pane counts the records' documents, the Tokenizer pane trains on
    their text (a field it could not read would be one line in the pane)."""
    import gzip
    import json

    lines = [line for line in small_corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    records = "".join(json.dumps({"body": "\n".join(lines[i : i + 3])}) + "\n" for i in range(0, len(lines), 3))
    corpus = tmp_path / "books.jsonl.gz"
    corpus.write_bytes(gzip.compress(records.encode()))
    app = KantaiApp(corpus=corpus, text_field="body")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        stats = app.query_one(CorpusPane).stats
        assert stats is not None and stats.documents == -(-len(lines) // 3) and stats.nonempty_lines == len(lines)
        assert stats.files[0].format == "JSON lines · gzip"
        assert "records with text" in screen_text(app)
        await pilot.press("2", "t")
        await settle(pilot)
        assert app.query_one(TokenizerPane).vocab is not None


async def test_bundled_corpus_by_default() -> None:
    app = KantaiApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        stats = app.query_one(CorpusPane).stats
        assert stats is not None and stats.nonempty_lines == 27_540


async def test_train_tokenizer_and_see_it_appear(small_corpus: Path) -> None:
    app = KantaiApp(corpus=small_corpus)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        pane = app.query_one(TokenizerPane)
        assert "no tokenizer yet" in screen_text(app)
        await pilot.press("t")
        await settle(pilot)
        table = app.query_one(VocabTable)
        assert pane.vocab is not None and len(table.entries) == len(pane.vocab) > 1000
        assert (tokenizer_dir_for(app.query_one(CorpusPane).stats.fingerprint) / "tokenizer.json").is_file()
        assert "tokens" in str(app.query_one("#tok-status").render())
        tokens = app.query_one(CorpusPane).tokens  # the corpus pane learned of the tokenizer
        assert tokens is not None and tokens.lines == app.query_one(CorpusPane).stats.nonempty_lines


async def test_search_filters_rows(small_corpus: Path, small_tokenizer: Path) -> None:
    app = KantaiApp(corpus=small_corpus, tokenizer=small_tokenizer)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        table = app.query_one(VocabTable)
        everything = len(table.entries)
        await pilot.press("slash")
        assert isinstance(app.focused, Input) and app.focused.id == "vocab-search"
        await pilot.press(*"reas")
        await settle(pilot)
        assert 0 < len(table.entries) < everything
        assert all("reas" in e.text.lower() or "reas" in e.token.lower() for e in table.entries)
        assert f"{len(table.entries):,} of {everything:,} tokens" in str(app.query_one("#vocab-count").render())
        await pilot.press("escape", "down")
        assert app.focused is table and table.cursor == 1
        await pilot.click(VocabTable, offset=(5, 2))
        assert table.cursor == 2
        await pilot.press("down")
        assert table.entries[3].readable in str(app.query_one("#vocab-detail").render())


async def test_bad_regex_is_shown_not_raised(small_tokenizer: Path, small_corpus: Path) -> None:
    app = KantaiApp(corpus=small_corpus, tokenizer=small_tokenizer)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        app.query_one("#vocab-mode").value = "regex"
        await pilot.press("slash", *"(ab")
        await settle(pilot)
        assert "invalid regular expression '(ab'" in str(app.query_one("#vocab-count").render())


async def test_encode_box_shows_tokens(kant_tokenizer: Path, small_corpus: Path) -> None:
    app = KantaiApp(corpus=small_corpus, tokenizer=kant_tokenizer)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("2", "e", *"The Critique of Pure Reason.")
        result = str(app.query_one("#encode-result").render())
        assert "<s>The␣Critique␣of␣Pure␣Reason.</s>" in result
        assert "8 tokens · ids 0 " in result


async def test_help_lists_pane_keys(small_corpus: Path) -> None:
    app = KantaiApp(corpus=small_corpus)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "Train tokenizer" in screen_text(app)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_missing_corpus_is_shown_in_both_panes(tmp_path: Path) -> None:
    app = KantaiApp(corpus=tmp_path / "nope.txt")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.query_one(CorpusPane).has_class("-failed")
        assert "nope.txt: no such file or folder" in text_of(app, "#corpus-error")
        assert "nope.txt: no such file or folder" in text_of(app, "#tok-error")
        await pilot.press("2", "t")
        assert "Traceback" not in screen_text(app)


async def test_binary_corpus_message_in_pane(tmp_path: Path) -> None:
    path = tmp_path / "weights.txt"
    path.write_bytes(b"\x00\x01\x02")
    app = KantaiApp(corpus=path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert "looks like a binary file (NUL byte at byte offset 0)" in text_of(app, "#corpus-error")


async def test_command_palette_trains(small_corpus: Path) -> None:
    app = KantaiApp(corpus=small_corpus)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p", *"Train tokenizer")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert app.query_one(TokenizerPane).vocab is not None


async def test_replace_mode_opens_a_non_utf8_corpus(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("Critique de la raison pure, \u00e9dition\n".encode("latin-1") * 50)
    async with KantaiApp(corpus=path).run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert "not valid UTF-8 at byte offset 28" in text_of(pilot.app, "#corpus-error")
    async with KantaiApp(corpus=path, errors="replace").run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        stats = pilot.app.query_one(CorpusPane).stats
        assert stats is not None and stats.replaced_bytes == 50
        await pilot.press("2", "t")
        await settle(pilot)
        assert pilot.app.query_one(TokenizerPane).vocab is not None


async def test_every_footer_key_is_in_the_command_palette(small_corpus: Path) -> None:
    from textual.binding import Binding

    from kantai_tui.tui.app import PANES
    from kantai_tui.tui.widgets.loss_chart import LossChart

    app = KantaiApp(corpus=small_corpus, watch_devices=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for entry in PANES:
            for binding in type(app.query_one(f"#{entry.id}-pane")).BINDINGS:
                if isinstance(binding, Binding) and binding.show:
                    assert f"{entry.pane.TITLE}: {binding.description}" in titles
        await pilot.press("ctrl+p", *"Training: Log scale")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert app.query_one("TabbedContent").active == "training" and app.query_one(LossChart).log_scale


async def test_open_another_corpus_by_keyboard(small_corpus: Path, tmp_path: Path) -> None:
    from kantai_tui.core.prefs import load_preferences

    tiny = TINY
    app = KantaiApp(corpus=tiny, watch_devices=False, prefs_folder=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("o")
        box = app.query_one("#corpus-open")
        assert box.has_focus and box.value.endswith("tiny_corpus.txt")
        box.value = str(tmp_path / "missing.txt")
        await pilot.press("enter")
        await settle(pilot)
        assert "missing.txt" in text_of(app, "#corpus-error")  # said in the pane, the app goes on
        await pilot.press("o")
        box.value = str(small_corpus)
        await pilot.press("enter")
        await settle(pilot)
        stats = app.query_one(CorpusPane).stats
        assert stats is not None and stats.nonempty_lines == 2_596 and app.corpus == small_corpus
        await pilot.press("2")
        await settle(pilot)
        assert "no tokenizer yet — press t to train one" in text_of(app, "#tok-status")  # the tokenizer pane followed
        assert not app.query_one(TokenizerPane).has_class("-failed")
    assert load_preferences(tmp_path).last_corpus == str(small_corpus.resolve())


async def test_a_worker_that_fails_unexpectedly_shows_in_its_pane_and_the_app_lives_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every pane worker runs with exit_on_error=False and Pane.on_worker_state_changed shows its error in the
    pane that started it. Before, an error that was not a KantaiError ended the app with a traceback. The
    error is injected (an I/O error while the run folder is created): no real input makes core fail so now."""
    import errno

    from textual.widgets import Static

    from kantai_tui.core.runs import process
    from kantai_tui.tui.panes.training import TrainingPane

    def failing_create_run(*args: object, **kwargs: object) -> Path:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(process, "create_run", failing_create_run)
    app = KantaiApp(corpus=TINY, runs_dir=tmp_path / "runs", watch_devices=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        app.query_one("#train-corpus", Input).value = str(TINY)
        await pilot.press("s")
        await workers_settled(app)
        await pilot.pause()
        pane = app.query_one(TrainingPane)
        message = str(app.query_one("#train-error", Static).render())
        assert pane.has_class("-failed")
        assert message == "internal error in a background task: OSError: [Errno 5] Input/output error"
        assert app.is_running


async def test_from_worker_drops_updates_for_a_removed_widget_but_not_bugs(tmp_path: Path) -> None:
    from textual.css.query import NoMatches

    from kantai_tui.tui.guards import from_worker
    from kantai_tui.tui.panes.training import TrainingPane

    @from_worker
    def look_up(node: TrainingPane) -> object:
        return node.query_one("#no-such-widget")

    app = KantaiApp(corpus=TINY, runs_dir=tmp_path / "runs", watch_devices=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await workers_settled(app)  # the corpus scan is in: nothing asks for the pane once it is gone
        await pilot.pause()
        pane = app.query_one(TrainingPane)
        with pytest.raises(NoMatches):  # live: a missing widget is a bug and says so
            look_up(pane)
        await pane.remove()
        assert look_up(pane) is None  # gone: the update is dropped
        assert pane.show_error("late news") is None


async def test_the_pane_table_drives_tabs_keys_focus_and_help(small_corpus: Path) -> None:
    """One table (tui/app.py PANES): each entry's key shows its tab, titled from its class, with the focus inside
    the pane, and ? lists that pane's keys under its title."""
    from textual.widgets import Tab

    from kantai_tui.tui.app import PANES

    app = KantaiApp(corpus=small_corpus, watch_devices=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        labels = [str(tab.label) for tab in app.query(Tab)]
        assert labels == [f"{e.key} {e.pane.TITLE}" for e in PANES]
        for entry in reversed(PANES):
            await pilot.press("escape", entry.key)
            await pilot.pause(0.1)
            pane = app.query_one(f"#{entry.id}-pane", entry.pane)
            assert app.query_one("TabbedContent").active == entry.id
            assert app.focused is not None and pane in (app.focused, *app.focused.ancestors)
            await pilot.press("question_mark")
            await pilot.pause(0.1)
            assert isinstance(app.screen, HelpScreen) and app.screen.pane_title == entry.pane.TITLE
            assert app.screen.pane_bindings == list(entry.pane.BINDINGS)
            await pilot.press("escape")


async def test_keys_typed_ahead_land_where_the_first_key_sent_them(small_corpus: Path, small_tokenizer: Path) -> None:
    """Regression: over SSH "/reason" can arrive in one read; the focus moved after the queued keys were
    handled, so "r" went to the table and "e" jumped to the encode box (CI saw the search stay empty)."""
    from textual import events

    app = KantaiApp(corpus=small_corpus, tokenizer=small_tokenizer)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for key in ["2", "slash", *"reason"]:  # all queued before the app handles the first
            app.post_message(events.Key(key, "/" if key == "slash" else key))
        await settle(pilot)
        assert app.query_one("#vocab-search", Input).value == "reason"
        assert app.query_one("#encode-input", Input).value == ""


async def test_a_worker_error_is_shown_as_plain_text_once_even_with_brackets_and_repeats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression (issue 14, item 10): the one handler of failed workers showed the message as markup, so an
    OSError naming a path with '[/]' in it raised MarkupError in the handler and ended the app; and a poll that
    fails every 0.5 s raised a notification every 0.5 s. Now: plain text in the pane that started the worker,
    one notification per distinct message, the app lives on."""
    import errno

    from kantai_tui.core.runs import process
    from kantai_tui.tui.panes import training
    from kantai_tui.tui.panes.training import TrainingPane

    def failing_create_run(*args: object, **kwargs: object) -> Path:
        raise OSError(errno.EACCES, "Permission denied", "/runs/[/]odd [b]name")

    def failing_read(*args: object, **kwargs: object) -> tuple[list[dict], int]:
        raise RuntimeError("disk went away [/]")

    monkeypatch.setattr(process, "create_run", failing_create_run)
    app = KantaiApp(corpus=TINY, runs_dir=tmp_path / "runs", watch_devices=False)
    notified: list[str] = []
    real_notify = app.notify
    monkeypatch.setattr(app, "notify", lambda message, **kw: (notified.append(message), real_notify(message, **kw)))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("3")
        app.query_one("#train-corpus", Input).value = str(TINY)
        await pilot.press("s")
        await settle(pilot)
        pane = app.query_one(TrainingPane)
        expected = (
            "internal error in a background task: PermissionError: [Errno 13] Permission denied: '/runs/[/]odd [b]name'"
        )
        assert pane.has_class("-failed") and text_of(app, "#train-error") == expected
        assert notified == [expected] and "Permission denied" in screen_text(app)  # the toast drew, as typed
        monkeypatch.setattr(training, "read_json_lines", failing_read)
        (tmp_path / "runs" / "demo").mkdir(parents=True)
        pane.attach(tmp_path / "runs" / "demo")
        await pilot.pause(1.6)  # three or four polls, each failing
        await settle(pilot)
        assert text_of(app, "#train-error") == "internal error in a background task: RuntimeError: disk went away [/]"
        assert notified.count("internal error in a background task: RuntimeError: disk went away [/]") == 1
        assert app.is_running


async def test_a_corpus_that_fails_to_open_leaves_the_good_one_open_and_unremembered(tmp_path: Path) -> None:
    """Regression (issue 14, item 21): opening a bad corpus replaced the good one (the statistics vanished, the
    tokenizer pane said there was no corpus) and the preferences kept the bad one, so the next launch opened on
    the error. Now the pane says the new one failed and keeps showing and using the one that scanned; only a
    corpus that scanned is remembered. (A path with '[/]' in it is text, not markup.)"""
    from kantai_tui.core.prefs import load_preferences
    from kantai_tui.tui.app import starting_point

    binary = tmp_path / "dir[" / "]weights.txt"  # its path holds '[/]'
    binary.parent.mkdir()
    binary.write_bytes(b"\x00\x01\x02")
    app = KantaiApp(corpus=TINY, watch_devices=False, prefs_folder=tmp_path / "config")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        good = app.query_one(CorpusPane).stats
        for bad in (binary, tmp_path / "missing.txt"):
            await pilot.press("o")
            app.query_one("#corpus-open", Input).value = str(bad)
            await pilot.press("enter")
            await settle(pilot)
            pane = app.query_one(CorpusPane)
            assert bad.name in text_of(app, "#corpus-error") and str(TINY) in text_of(app, "#corpus-error")
            assert app.query_one("#corpus-error").display and app.query_one("#corpus-body").display
            assert pane.corpus == TINY and pane.stats is good and app.corpus == TINY
            assert text_of(app, "#corpus-path") == str(TINY)
            assert not app.query_one(TokenizerPane).has_class("-failed")
        await pilot.press("r")  # the kept corpus is the one rescanned; the error line goes
        await settle(pilot)
        assert not app.query_one("#corpus-error").display and app.query_one(CorpusPane).stats == good
    prefs = load_preferences(tmp_path / "config")
    assert prefs.last_corpus == str(TINY.resolve())
    assert starting_point(None, None, prefs)[0] == str(TINY.resolve())


async def test_a_scan_that_ends_as_the_app_quits_is_not_a_traceback(small_corpus: Path, tmp_path: Path) -> None:
    """Regression (CI, issue 17): the corpus scan's result arrived after the app had torn its panes down, and
    `query_one(TokenizerPane)` raised NoMatches out of the app. The panes are removed here, as a quit does."""
    from kantai_tui.tui.panes.training import TrainingPane

    app = KantaiApp(corpus=small_corpus, runs_dir=tmp_path / "runs", watch_devices=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        stats = app.query_one(CorpusPane).stats
        assert stats is not None
        await app.query_one(TokenizerPane).remove()
        await app.query_one(TrainingPane).remove()
        app.post_message(CorpusPane.Scanned(small_corpus, stats))
        await pilot.pause()
    assert app.return_code in (None, 0)
