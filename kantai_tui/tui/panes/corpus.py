"""Corpus pane: statistics, line-length histogram, top words; tokens per line once a tokenizer exists.

The scan runs in a thread worker; the worker only stores its progress in an
attribute, and a 10 Hz timer copies it to the progress bar, so a fast scan
never floods the event loop with messages.

Opening another corpus scans it first: the pane (and the app) switch to it only once it scanned, so a
bad path is one line above the statistics of the corpus still open, never a pane of errors that the
preferences would remember for the next launch.
"""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Label, ProgressBar, Static
from textual.worker import get_current_worker

from kantai_tui import views
from kantai_tui.core.corpus.stats import CorpusStats, corpus_stats
from kantai_tui.core.errors import KantaiError
from kantai_tui.core.tokenizer.bpe import TokenStats, token_stats
from kantai_tui.tui.focus import focus_now
from kantai_tui.tui.guards import from_worker
from kantai_tui.tui.panes.base import Pane
from kantai_tui.tui.widgets.path_suggester import PathSuggester
from kantai_tui.tui.widgets.text_box import TextBox


class CorpusPane(Pane, can_focus=True):
    """Shows what is in the corpus; tells the app (by message) when the scan is done.

    Focusable so that its keys (o, r) work while an error hides the statistics."""

    TITLE = "Corpus"
    BODY = "#corpus-body"
    ERROR = "#corpus-error"

    BINDINGS = [
        Binding("o", "open", "Open corpus"),
        Binding("r", "rescan", "Rescan corpus"),
        Binding("escape", "close_open", "Cancel", show=False),
    ]

    class OpenRequested(Message):
        """The user typed another corpus path (the app switches every pane to it)."""

        def __init__(self, path: Path) -> None:
            self.path = path
            super().__init__()

    class Scanned(Message):
        """``corpus`` was scanned and is now the pane's corpus (another one, when it was opened); ``stats`` is
        the result."""

        def __init__(self, corpus: Path, stats: CorpusStats) -> None:
            self.corpus = corpus
            self.stats = stats
            super().__init__()

    class ScanFailed(Message):
        """The corpus could not be scanned; ``message`` says why, in one line."""

        def __init__(self, message: str) -> None:
            self.message = message
            super().__init__()

    def __init__(
        self,
        corpus: Path | None,
        error: str | None = None,
        *,
        errors: str = "strict",
        text_field: str = "text",
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.errors = errors
        self.text_field = text_field
        self.corpus = corpus
        self.stats: CorpusStats | None = None
        self.tokens: TokenStats | None = None
        self._startup_error = error
        self._scanning: Path | None = None  # the corpus being scanned: this one, or another being opened
        self._progress: tuple[int, int] = (0, 1)
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Label(Content(str(self.corpus or "no corpus")), id="corpus-path", classes="pane-title")
        with Horizontal(id="corpus-open-row"):
            yield Label("open corpus", id="corpus-open-label")
            yield TextBox(
                placeholder="a .txt file or a folder of them (→ completes), enter opens, escape cancels",
                id="corpus-open",
                suggester=PathSuggester(),
            )
        yield ProgressBar(id="corpus-progress", show_eta=False)
        yield Static("", id="corpus-error", classes="error")
        with VerticalScroll(id="corpus-body"):
            with Horizontal(id="corpus-top"):
                yield Static("", id="corpus-summary")
                yield Static("", id="corpus-words")
            yield Static("", id="corpus-histogram")
            yield Static("", id="corpus-tokens")
            yield Static("", id="corpus-files")

    def on_mount(self) -> None:
        if self._startup_error:
            self.show_error(self._startup_error)
        else:
            self.action_rescan()

    def action_open(self) -> None:
        """Ask for another corpus path (prefilled with this one)."""
        box = self.query_one("#corpus-open", Input)
        box.value = str(self.corpus or "")
        self.set_class(True, "-opening")
        focus_now(box)

    def action_close_open(self) -> None:
        self.set_class(False, "-opening")
        self.focus_body()

    def focus_body(self) -> None:
        """Focus the statistics, or the pane itself while they are hidden by an error (its keys still work)."""
        body = self.query_one("#corpus-body")
        if self.has_class("-failed"):
            focus_now(self)
        else:
            focus_now(body)

    @on(Input.Submitted, "#corpus-open")
    def _open_submitted(self, event: Input.Submitted) -> None:
        path = event.value.strip()
        self.action_close_open()
        if path:
            self.post_message(self.OpenRequested(Path(path).expanduser()))

    def open(self, corpus: Path) -> None:
        """Scan another corpus; the pane switches to it once it scanned (``_scan_done``). One that cannot be
        read says so here, and the corpus that is open stays open (``_scan_failed``)."""
        self._scan(corpus)

    def show_error(self, message: str, notify: bool = False) -> None:
        """Show a one-line error in the pane (and hide what is stale; the pane keeps the focus so o works)."""
        had_focus = self.query_one("#corpus-body").has_focus
        super().show_error(message, notify)
        self.set_class(False, "-scanning")
        if had_focus or self.app.focused is None:
            focus_now(self)

    def worker_failed(self, group: str, message: str, notify: bool = True) -> None:
        if group == "corpus-scan":  # the progress timer stops and the other panes hear of it
            self._scan_failed(message, notify)
        else:
            super().worker_failed(group, message, notify)

    def action_rescan(self) -> None:
        """Scan the corpus again (files may have changed)."""
        if self.corpus is not None:
            self._scan(self.corpus)

    def _scan(self, corpus: Path) -> None:
        self._scanning = corpus
        self.set_class(False, "-failed")
        self.set_class(False, "-open-failed")
        self.set_class(True, "-scanning")
        self._progress = (0, 1)
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_interval(0.1, self._show_progress)
        self._scan_corpus(corpus)

    def _show_progress(self) -> None:
        done, total = self._progress
        self.query_one("#corpus-progress", ProgressBar).update(total=max(total, 1), progress=done)

    @work(thread=True, exit_on_error=False, exclusive=True, group="corpus-scan", description="scan corpus")
    def _scan_corpus(self, corpus: Path) -> None:
        """Stream the corpus in a thread; hand the result to the UI once, at the end."""
        worker = get_current_worker()

        def progress(done: int, total: int) -> None:
            self._progress = (done, total)

        try:
            stats = corpus_stats(corpus, progress=progress, errors=self.errors, text_field=self.text_field)
        except KantaiError as err:
            if not worker.is_cancelled:
                self.app.call_from_thread(self._scan_failed, str(err))
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(self._scan_done, stats)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    @from_worker
    def _scan_failed(self, message: str, notify: bool = True) -> None:
        self._stop_timer()
        if self._scanning != self.corpus and self.stats is not None:  # another corpus: keep the one open
            self.set_class(False, "-scanning")
            self.set_class(True, "-open-failed")
            self.query_one(self.ERROR, Static).update(Content(f"{message} (still open: {self.corpus})"))
            if notify:
                self.notify(message, title=self.TITLE, severity="error", markup=False)
            return
        self._switch_to(self._scanning)
        self.show_error(message, notify)
        self.post_message(self.ScanFailed(message))

    def _switch_to(self, corpus: Path | None) -> None:
        """Make ``corpus`` the pane's corpus (what was shown of the previous one goes)."""
        if corpus is None or corpus == self.corpus:
            return
        self.corpus, self.stats, self.tokens = corpus, None, None
        self.query_one("#corpus-path", Label).update(Content(str(corpus)))
        for part in ("#corpus-tokens", "#corpus-files"):
            self.query_one(part, Static).update("")

    @from_worker
    def _scan_done(self, stats: CorpusStats) -> None:
        self._stop_timer()
        self._switch_to(self._scanning)
        self.stats = stats
        self.set_class(False, "-scanning")
        self.query_one("#corpus-summary", Static).update(views.summary_table(stats))
        self.query_one("#corpus-words", Static).update(views.top_words_table(stats.top_words[:15]))
        self.query_one("#corpus-histogram", Static).update(
            views.distribution_table(stats.line_length, "line length in characters (non-empty lines, trimmed)")
        )
        self._show_files()
        assert self.corpus is not None
        self.post_message(self.Scanned(self.corpus, stats))

    def _show_files(self) -> None:
        files = self.query_one("#corpus-files", Static)
        if self.stats is not None:
            files.update(views.files_table(self.stats, width=files.content_region.width or self.size.width - 4))

    def on_resize(self) -> None:
        """Fit the file table to the new width (names are shortened to fit, never folded mid-word)."""
        self._show_files()

    def show_tokens_for(self, tokenizer_dir: Path) -> None:
        """Add tokens-per-line figures once a tokenizer exists for this corpus."""
        if self.corpus is not None:
            self._count_tokens(tokenizer_dir, self.corpus)

    @work(thread=True, exit_on_error=False, exclusive=True, group="token-stats", description="tokens per line")
    def _count_tokens(self, tokenizer_dir: Path, corpus: Path) -> None:
        try:
            tokens = token_stats(tokenizer_dir, corpus, errors=self.errors, text_field=self.text_field)
        except KantaiError as err:
            self.app.call_from_thread(self.notify, str(err), title="Tokens per line", severity="error")
            return
        self.app.call_from_thread(self._tokens_done, tokens)

    @from_worker
    def _tokens_done(self, tokens: TokenStats) -> None:
        self.tokens = tokens
        self.query_one("#corpus-tokens", Static).update(views.token_stats_table(tokens))
