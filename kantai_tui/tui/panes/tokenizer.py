"""Tokenizer pane: train the tutorial's BPE with visible progress, browse and search the vocabulary, encode text.

Training, loading and searching run in thread workers; the training worker
only stores (phase, fraction) and a 10 Hz timer shows it. Searches are
exclusive workers, so the newest keystroke wins and stale results are dropped.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Label, ProgressBar, Select, Static
from textual.worker import get_current_worker

from kantai_tui import views
from kantai_tui.core.errors import KantaiError
from kantai_tui.core.tokenizer.bpe import (
    DEFAULT_MIN_FREQUENCY,
    DEFAULT_VOCAB_SIZE,
    encode,
    load_tokenizer,
    read_meta,
    train_tokenizer,
)
from kantai_tui.core.tokenizer.vocab import SEARCH_MODES, SORT_KEYS, VocabEntry, Vocabulary
from kantai_tui.format import progress_text
from kantai_tui.tui.focus import focus_now
from kantai_tui.tui.guards import from_worker
from kantai_tui.tui.panes.base import Pane
from kantai_tui.tui.widgets.text_box import TextBox
from kantai_tui.tui.widgets.vocab_table import HEADER, VocabTable

if TYPE_CHECKING:
    from tokenizers import Tokenizer

PICKERS = {"mode": SEARCH_MODES, "sort": SORT_KEYS}  # the vocabulary's pickers, by the key that cycles them
EMPTY_STATE = (
    "no tokenizer yet — press [b]t[/] to train one (vocab {vocab:,}, min frequency {freq}, as in the tutorial)"
)


class TokenizerPane(Pane):
    """Owns one tokenizer folder: trains into it, loads from it, browses it."""

    TITLE = "Tokenizer"
    BODY = "#vocab-table"
    ERROR = "#tok-error"

    BINDINGS = [
        Binding("t", "train", "Train tokenizer"),
        Binding("slash", "focus_search", "Search", key_display="/"),
        Binding("e", "focus_encode", "Encode"),
        Binding("m", "cycle('mode')", "Search mode"),
        Binding("s", "cycle('sort')", "Sort"),
        Binding("escape", "focus_table", "Back to the table", show=False),
    ]

    class Ready(Message):
        """A tokenizer was trained or loaded from ``path``."""

        def __init__(self, path: Path) -> None:
            self.path = path
            super().__init__()

    def __init__(self, *, errors: str = "strict", text_field: str = "text", id: str | None = None) -> None:
        super().__init__(id=id)
        self.errors = errors
        self.text_field = text_field
        self.corpus: Path | None = None
        self.tokenizer_dir: Path | None = None
        self.vocab: Vocabulary | None = None
        self.tokenizer: Tokenizer | None = None
        self._phase: tuple[str, int, int, float] = ("starting", 0, 0, 0.0)  # phase, done, total, began
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Label("waiting for the corpus scan…", id="tok-status", classes="pane-title")
        with Horizontal(id="tok-train-row"):
            yield ProgressBar(id="tok-progress", show_eta=False)
            yield Label("", id="tok-phase")
        yield Static("", id="tok-error", classes="error")
        with Horizontal(id="vocab-search-row"):
            yield TextBox(placeholder="/ search tokens (␣ = leading space)", id="vocab-search")
            yield Select(
                [(m, m) for m in SEARCH_MODES], value="substring", allow_blank=False, id="vocab-mode", compact=True
            )
            yield Select(
                [(f"sort: {k}", k) for k in SORT_KEYS], value="id", allow_blank=False, id="vocab-sort", compact=True
            )
        yield Label(HEADER, id="vocab-header")
        yield VocabTable(id="vocab-table")
        yield Label("", id="vocab-count")
        yield Static("", id="vocab-detail")
        yield TextBox(placeholder="e  type text to encode", id="encode-input")
        yield Static("", id="encode-result")

    # --- attributes down -------------------------------------------------------------

    def set_source(self, corpus: Path | None, tokenizer_dir: Path) -> None:
        """Point the pane at a corpus and its tokenizer folder; load the tokenizer if it exists."""
        self.corpus, self.tokenizer_dir = corpus, tokenizer_dir
        self.set_class(False, "-failed")  # an error about the previous corpus no longer applies
        if (tokenizer_dir / "tokenizer.json").is_file():
            self._set_status(f"loading {tokenizer_dir}…")
            self._load(tokenizer_dir)
        else:
            self._set_status(EMPTY_STATE.format(vocab=DEFAULT_VOCAB_SIZE, freq=DEFAULT_MIN_FREQUENCY))
            self.set_class(True, "-empty")

    def _set_status(self, markup: str) -> None:
        self.query_one("#tok-status", Label).update(markup)

    def corpus_unavailable(self, message: str) -> None:
        """The corpus could not be opened: say so here too, since nothing can be trained."""
        self._set_status("no corpus to train on")
        self.show_error(message)

    def worker_failed(self, group: str, message: str, notify: bool = True) -> None:
        if group == "tokenizer-train":  # the progress timer stops and the train key works again
            self._train_finished(None, message, notify)
        else:
            super().worker_failed(group, message, notify)

    # --- training ----------------------------------------------------------------------

    def action_train(self) -> None:
        """Train the tokenizer on the current corpus, in a thread, with progress."""
        if self.corpus is None or self.tokenizer_dir is None:
            self.show_error("cannot train: the corpus could not be read (see the message above)", notify=True)
            return
        if self.has_class("-training"):
            self.notify("a tokenizer is already training", title="Tokenizer")
            return
        self.set_class(False, "-failed")
        self.set_class(True, "-training")
        self._phase = ("starting", 0, 0, time.monotonic())
        self._timer = self.set_interval(0.1, self._show_phase)
        self._train(self.corpus, self.tokenizer_dir)

    def _show_phase(self) -> None:
        phase, done, total, began = self._phase
        bar = self.query_one("#tok-progress", ProgressBar)
        bar.update(total=total or None, progress=done)
        self.query_one("#tok-phase", Label).update(progress_text(phase, done, total, time.monotonic() - began))

    @work(thread=True, exit_on_error=False, exclusive=True, group="tokenizer-train", description="train tokenizer")
    def _train(self, corpus: Path, out: Path) -> None:
        def progress(phase: str, done: int, total: int) -> None:
            began = self._phase[3] if phase == self._phase[0] else time.monotonic()
            self._phase = (phase, done, total, began)

        try:
            train_tokenizer(corpus, out, progress=progress, errors=self.errors, text_field=self.text_field)
            loaded = self._read(out)
        except KantaiError as err:
            self.app.call_from_thread(self._train_finished, None, str(err))
            return
        self.app.call_from_thread(self._train_finished, loaded, None)

    @from_worker
    def _train_finished(
        self, loaded: tuple[Vocabulary, Tokenizer, dict] | None, error: str | None, notify: bool = True
    ) -> None:
        if self._timer is not None:
            self._timer.stop()
        self.set_class(False, "-training")
        if error is not None:
            self.show_error(error, notify=notify)
            return
        assert loaded is not None
        self._show_loaded(*loaded)
        self.notify(f"trained {len(loaded[0]):,} tokens", title="Tokenizer")

    # --- loading -----------------------------------------------------------------------

    @staticmethod
    def _read(folder: Path) -> tuple[Vocabulary, Tokenizer, dict]:
        """Everything the pane shows, read off the UI thread."""
        return Vocabulary.load(folder), load_tokenizer(folder), read_meta(folder) or {}

    @work(thread=True, exit_on_error=False, exclusive=True, group="tokenizer-load", description="load tokenizer")
    def _load(self, folder: Path) -> None:
        try:
            loaded = self._read(folder)
        except KantaiError as err:
            self.app.call_from_thread(self.show_error, str(err), True)
            return
        self.app.call_from_thread(self._show_loaded, *loaded)

    @from_worker
    def _show_loaded(self, vocab: Vocabulary, tokenizer: Tokenizer, meta: dict) -> None:
        self.vocab, self.tokenizer = vocab, tokenizer
        self.set_class(False, "-empty")
        self.set_class(False, "-failed")
        requested = meta.get("requested_vocab_size")
        of = f" (of {requested:,} requested)" if requested and requested != len(vocab) else ""
        trained = f" · trained in {meta['seconds']:.2f} s" if "seconds" in meta else ""
        self._set_status(f"[b]{len(vocab):,} tokens[/]{of}{trained} · {self.tokenizer_dir}")
        self._refresh_search()
        self._refresh_encoding()
        assert self.tokenizer_dir is not None
        self.post_message(self.Ready(self.tokenizer_dir))

    # --- search ------------------------------------------------------------------------

    @on(Input.Changed, "#vocab-search")
    @on(Select.Changed, "#vocab-mode")
    @on(Select.Changed, "#vocab-sort")
    def _refresh_search(self) -> None:
        if self.vocab is None:
            return
        query = self.query_one("#vocab-search", Input).value
        mode = str(self.query_one("#vocab-mode", Select).value)
        sort = str(self.query_one("#vocab-sort", Select).value)
        self._search(self.vocab, query, mode, sort)

    @work(thread=True, exit_on_error=False, exclusive=True, group="vocab-search", description="search vocabulary")
    def _search(self, vocab: Vocabulary, query: str, mode: str, sort: str) -> None:
        worker = get_current_worker()
        try:
            rows = vocab.search(query, mode, sort)
        except KantaiError as err:
            self.app.call_from_thread(self._search_failed, str(err))
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(self._search_done, rows, len(vocab))

    @from_worker
    def _search_done(self, rows: list[VocabEntry], total: int) -> None:
        self.query_one(VocabTable).show(rows)
        count = self.query_one("#vocab-count", Label)
        count.set_class(False, "error")
        count.update(f"{len(rows):,} of {total:,} tokens")

    @from_worker
    def _search_failed(self, message: str) -> None:
        count = self.query_one("#vocab-count", Label)
        count.set_class(True, "error")
        count.update(message)

    @on(VocabTable.Highlighted)
    def _show_detail(self, event: VocabTable.Highlighted) -> None:
        entry = event.entry
        detail = self.query_one("#vocab-detail", Static)
        if entry is None:
            detail.update("")
            return
        freq = "—" if entry.frequency is None else f"{entry.frequency:,}"
        rank = "base symbol" if entry.merge_rank is None else f"merge #{entry.merge_rank:,}"
        raw = entry.text.encode("utf-8", errors="replace").hex(" ") if not entry.special else "special token"
        detail.update(
            Text.assemble(
                (entry.readable, "bold"),
                f"  id {entry.id} · raw {entry.token!r} · "
                f"{entry.byte_length} bytes [{raw}] · corpus frequency {freq} · {rank}",
            )
        )

    # --- encoding ----------------------------------------------------------------------

    @on(Input.Changed, "#encode-input")
    def _refresh_encoding(self) -> None:
        """Encode as the user types; a short text encodes in microseconds, so no worker is needed."""
        result = self.query_one("#encode-result", Static)
        text = self.query_one("#encode-input", Input).value
        if self.tokenizer is None or not text:
            result.update("")
            return
        encoded = encode(self.tokenizer, text)
        ids = " ".join(map(str, encoded.ids))
        result.update(Text.assemble(views.encoded_text(encoded), f"\n{len(encoded.ids)} tokens · ids {ids}"))

    # --- focus -------------------------------------------------------------------------

    def action_focus_search(self) -> None:
        focus_now(self.query_one("#vocab-search", Input))

    def action_focus_encode(self) -> None:
        focus_now(self.query_one("#encode-input", Input))

    def action_focus_table(self) -> None:
        focus_now(self.query_one(VocabTable))

    def action_cycle(self, picker: str) -> None:
        """The next choice of the ``mode`` or ``sort`` picker, round again after the last: one key, no menu."""
        choices = PICKERS[picker]
        select = self.query_one(f"#vocab-{picker}", Select)
        current = str(select.value)
        select.value = choices[(choices.index(current) + 1) % len(choices)] if current in choices else choices[0]
