"""The kantai Textual app: a tab per pane, keys in the footer, ``?`` for help, the command palette.

The app only wires panes together (attributes down, messages up): the corpus
pane reports a finished scan, the app points the tokenizer pane at the corpus's
tokenizer folder; the tokenizer pane reports a ready tokenizer, the app asks the
corpus pane for tokens-per-line figures. Nothing heavy is imported here, so the
first frame appears at once; each pane loads what it needs in thread workers.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.signal import Signal
from textual.widgets import Footer, Header, TabbedContent, TabPane
from textual.worker import Worker

from kantai_tui.core.corpus.sample import bundled_corpus
from kantai_tui.core.device import DeviceSnapshot
from kantai_tui.core.errors import KantaiError
from kantai_tui.core.paths import tokenizer_dir_for
from kantai_tui.core.prefs import Preferences, config_home, load_preferences, save_preferences
from kantai_tui.core.runs.folder import RunsListing, read_runs_folder
from kantai_tui.format import device_summary
from kantai_tui.tui.focus import bindings_first
from kantai_tui.tui.guards import from_worker
from kantai_tui.tui.hangup import on_hangup, watch_terminal
from kantai_tui.tui.help_screen import HelpScreen
from kantai_tui.tui.panes.base import FailureNotices, Pane, failure_message
from kantai_tui.tui.panes.corpus import CorpusPane
from kantai_tui.tui.panes.device import DevicePane
from kantai_tui.tui.panes.fillmask import FillMaskPane
from kantai_tui.tui.panes.tokenizer import TokenizerPane
from kantai_tui.tui.panes.training import TrainingPane

RUNS_POLL_S = 2.0  # how often the runs folder is listed (runs, models, trainers)


@dataclass(frozen=True)
class PaneEntry:
    """One pane of the app. This table drives the tabs, the digit keys, the focus, help and the palette;
    the pane's class carries its title, its focus target and its error label."""

    id: str  # the tab's id; the pane widget's id is "<id>-pane"
    key: str  # the key that shows it
    pane: type[Pane]
    build: Callable[[KantaiApp, str], Pane]  # (app, widget id) -> the pane, given what it needs


PANES = (
    PaneEntry(
        "corpus",
        "1",
        CorpusPane,
        lambda app, id: CorpusPane(app.corpus, app.corpus_error, errors=app.errors, text_field=app.text_field, id=id),
    ),
    PaneEntry(
        "tokenizer",
        "2",
        TokenizerPane,
        lambda app, id: TokenizerPane(errors=app.errors, text_field=app.text_field, id=id),
    ),
    PaneEntry(
        "training",
        "3",
        TrainingPane,
        lambda app, id: TrainingPane(
            app.runs_dir,
            app.runs_polled,
            errors=app.errors,
            text_field=app.text_field,
            last_run=app.prefs.last_run,
            id=id,
        ),
    ),
    PaneEntry("fillmask", "4", FillMaskPane, lambda app, id: FillMaskPane(app.runs_dir, app.runs_polled, id=id)),
    PaneEntry("device", "5", DevicePane, lambda app, id: DevicePane(id=id)),
)


class KantaiApp(App[int]):
    """Corpus and tokenizer workbench (training, fill-mask and device panes come next)."""

    CSS_PATH = "kantai.tcss"
    TITLE = "kantai"
    BINDINGS = [
        *(Binding(entry.key, f"show_pane('{entry.id}')", entry.pane.TITLE) for entry in PANES),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        corpus: str | Path | None = None,
        tokenizer: str | Path | None = None,
        errors: str = "strict",
        runs_dir: str | Path = "runs",
        watch_devices: bool = True,
        prefs_folder: Path | None = None,
        text_field: str = "text",
    ) -> None:
        super().__init__()
        self.prefs_folder = prefs_folder  # None: remember nothing (tests, snapshots); run_app passes the XDG folder
        self.prefs = load_preferences(prefs_folder) if prefs_folder else Preferences()
        self.watch_devices = watch_devices  # off only for pixel-exact snapshot tests (live CPU % changes)
        self._frozen_after_torch = False
        self.runs_dir = Path(runs_dir).expanduser()
        self.errors = errors
        self.text_field = text_field  # of JSON-lines and parquet files (kantai tui --text-field)
        self.corpus, self.corpus_error = _resolve_corpus(corpus)
        self.tokenizer_override = Path(tokenizer).expanduser() if tokenizer else None
        self.sub_title = str(self.corpus) if self.corpus else "no corpus"
        # the one poller of the runs folder: the Training and Fill-mask panes subscribe, the device probe
        # marks the trainers it lists
        self.runs_polled: Signal[RunsListing] = Signal(self, "runs-polled")
        self._trainers: dict[int, str] = {}
        self._notices = FailureNotices()

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial=PANES[0].id):
            for entry in PANES:
                with TabPane(f"{entry.key} {entry.pane.TITLE}", id=entry.id):
                    yield entry.build(self, f"{entry.id}-pane")
        yield Footer()

    async def on_event(self, event: events.Event) -> None:
        """A bound key runs its action before the next key is read (see ``tui/focus.py``)."""
        if isinstance(event, events.Key) and not event.is_forwarded and bindings_first(self.focused):
            if await self._check_bindings(event.key, priority=True) or await self._check_bindings(event.key):
                return
        await super().on_event(event)

    def on_mount(self) -> None:
        if not self.is_headless:
            watch_terminal(self)
        if self.prefs.theme in self.available_themes:
            self.theme = self.prefs.theme
        self.watch(self, "theme", lambda theme: self._remember(theme=theme), init=False)
        if self.runs_dir.is_dir():  # a folder that worked; a new one once a run is made in it (_run_attached)
            self._remember(runs_dir=str(self.runs_dir.resolve()))  # the corpus once it scanned (_corpus_scanned)
        self._focus_pane(PANES[0].id)
        self.set_interval(RUNS_POLL_S, self._poll_runs)
        self.call_after_refresh(self._poll_runs)  # once the panes have subscribed
        # the first device probe imports torch: start it after the first frame, then about once a second
        if self.watch_devices:
            self.set_timer(1.0, lambda: self.set_interval(1.0, self._probe_devices))
        # Python's full garbage collections walk every object Textual (and later torch) made at start-up:
        # 100-250 ms pauses every few seconds, each one a key press answered late (bench_interactive.py).
        # Frozen objects are never walked; what is made later is still collected.
        self.set_timer(0.5, _freeze_garbage_collector)
        if self.tokenizer_override is not None:
            self.query_one(TokenizerPane).set_source(self.corpus, self.tokenizer_override)
        elif self.corpus_error:
            self.query_one(TokenizerPane).corpus_unavailable(self.corpus_error)

    def _poll_runs(self) -> None:
        self._read_runs(self.runs_dir)

    @work(thread=True, exit_on_error=False, exclusive=True, group="runs-poll", description="list runs")
    def _read_runs(self, runs_dir: Path) -> None:
        listing = read_runs_folder(runs_dir)
        self.call_from_thread(self._runs_read, listing)

    @from_worker
    def _runs_read(self, listing: RunsListing) -> None:
        self._trainers = listing.trainers
        self.runs_polled.publish(listing)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The app's own workers (runs poll, device probe; panes handle theirs, by the same rule): a failure is
        a plain-text notification, once until that worker succeeds again (the polls repeat), never a crash."""
        if event.worker.node is self and self._notices.is_news(event):
            self.notify(failure_message(event.worker.error), title="kantai", severity="error", markup=False)

    def _probe_devices(self) -> None:
        self._take_snapshot(dict(self._trainers))

    @work(thread=True, exit_on_error=False, exclusive=True, group="device-probe", description="device snapshot")
    def _take_snapshot(self, trainers: dict[int, str]) -> None:
        from kantai_tui.core.device import probe_devices

        snapshot = probe_devices(trainers)
        self.call_from_thread(self._show_devices, snapshot)

    @from_worker
    def _show_devices(self, snapshot: DeviceSnapshot) -> None:
        if not self._frozen_after_torch:
            _freeze_garbage_collector()  # the probe has imported torch: its objects join the frozen ones
            self._frozen_after_torch = True
        self.sub_title = f"{self.corpus or 'no corpus'} · {device_summary(snapshot)}"
        for pane in self.query(DevicePane):  # none once the app quits, as a snapshot may still arrive
            pane.show(snapshot)

    @on(CorpusPane.Scanned)
    def _corpus_scanned(self, event: CorpusPane.Scanned) -> None:
        """The corpus pane's corpus scanned: every pane follows it, and it is the one remembered (a corpus
        that fails to open is never the app's corpus, so the next launch does not open on an error)."""
        if event.corpus != self.corpus:  # another corpus was opened
            self.corpus, self.corpus_error = event.corpus, None
            self.tokenizer_override = None  # a --tokenizer belonged to the corpus it was given with
            self.sub_title = str(event.corpus)
        self._remember(last_corpus=str(event.corpus.resolve()))
        tokenizer = self.tokenizer_override or tokenizer_dir_for(event.stats.fingerprint)
        # query, not query_one: a scan that ends as the app quits finds its panes already gone
        if self.tokenizer_override is None:
            for tokenizer_pane in self.query(TokenizerPane):
                tokenizer_pane.set_source(self.corpus, tokenizer)
        for training_pane in self.query(TrainingPane):
            training_pane.set_source(self.corpus, tokenizer)

    @on(CorpusPane.OpenRequested)
    def _open_corpus(self, event: CorpusPane.OpenRequested) -> None:
        """Another corpus: every pane follows it once it scanned (``_corpus_scanned``)."""
        self.query_one(CorpusPane).open(event.path)

    @on(TrainingPane.Attached)
    def _run_attached(self, event: TrainingPane.Attached) -> None:
        if event.run_dir.parent.resolve() == self.runs_dir.resolve():
            self._remember(runs_dir=str(self.runs_dir.resolve()), last_run=event.run_dir.name)

    def _remember(self, **changes: str | None) -> None:
        """Keep a preference for next time (never required: a failed write changes nothing here)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if self.prefs_folder is None or not changes:
            return
        self.prefs = self.prefs.with_(**changes)
        save_preferences(self.prefs, self.prefs_folder)

    @on(CorpusPane.ScanFailed)
    def _corpus_failed(self, event: CorpusPane.ScanFailed) -> None:
        self.query_one(TokenizerPane).corpus_unavailable(event.message)

    @on(TokenizerPane.Ready)
    def _tokenizer_ready(self, event: TokenizerPane.Ready) -> None:
        self.query_one(CorpusPane).show_tokens_for(event.path)
        self.query_one(TrainingPane).set_source(self.corpus, event.path)

    def action_show_pane(self, pane: str) -> None:
        """Switch to a pane by id."""
        self.query_one(TabbedContent).active = pane
        self._focus_pane(pane)

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        found = self.query(f"#{event.pane.id}-pane").results(Pane) if event.pane.id else iter(())
        pane = next(found, None)  # none yet while the tabs are still being mounted at start-up
        # a tab clicked with the mouse; after a pane key the focus is already inside, maybe moved on by the
        # keys typed after it ("2/reason"), and stays where they put it
        if pane is not None and not (self.focused is not None and pane in self.focused.ancestors_with_self):
            pane.focus_body()

    def _pane(self, pane_id: str) -> Pane:
        return self.query_one(f"#{pane_id}-pane", Pane)

    def _focus_pane(self, pane_id: str) -> None:
        """Put focus inside the pane, so its keys (shown in the footer) work at once."""
        self._pane(pane_id).focus_body()

    def action_help(self) -> None:
        """Show the keys of the active pane."""
        pane = self._pane(self.query_one(TabbedContent).active)
        self.push_screen(HelpScreen(pane.TITLE, list(type(pane).BINDINGS)))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for entry in PANES:
            title = entry.pane.TITLE
            yield SystemCommand(
                f"Show {title} pane", f"switch to the {title} pane", partial(self.action_show_pane, entry.id)
            )
        for entry in PANES:  # every key a pane shows in its footer, by name
            title = entry.pane.TITLE
            for binding in entry.pane.BINDINGS:
                if isinstance(binding, Binding) and binding.show and binding.description:
                    yield SystemCommand(
                        f"{title}: {binding.description}",
                        f"key {binding.key_display or binding.key} in the {title} pane",
                        partial(self._run_pane_action, entry.id, binding.action),
                    )

    async def _run_pane_action(self, pane_id: str, action: str) -> None:
        """A pane's key from the palette: show the pane, then do what the key does there."""
        self.action_show_pane(pane_id)
        await self._pane(pane_id).run_action(action)


def _resolve_corpus(corpus: str | Path | None) -> tuple[Path | None, str | None]:
    """The corpus to open and, if it cannot be opened, the message to show in the panes."""
    if corpus is not None:
        return Path(corpus).expanduser(), None
    try:
        return bundled_corpus(), None
    except KantaiError as err:
        return None, str(err)


def starting_point(corpus: str | None, runs_dir: str | None, prefs: Preferences) -> tuple[str | None, str]:
    """Options first, then last time's corpus (if it is still there) and runs folder, then the defaults."""
    if corpus is None and prefs.last_corpus and Path(prefs.last_corpus).exists():
        corpus = prefs.last_corpus
    return corpus, runs_dir or prefs.runs_dir or "runs"


def _freeze_garbage_collector() -> None:
    """Collect what is garbage now, then exempt every surviving object from later full collections."""
    gc.collect()
    gc.freeze()


def run_app(
    corpus: str | None = None,
    tokenizer: str | None = None,
    errors: str = "strict",
    runs_dir: str | None = None,
    text_field: str = "text",
) -> int:
    """Run the TUI until the user quits; return the exit code. Runs started here keep training after it.

    What is not given comes from the preferences (last corpus if it still exists, runs folder),
    then the defaults (the bundled corpus, ./runs).
    """
    corpus, runs_dir = starting_point(corpus, runs_dir, load_preferences())
    app = KantaiApp(
        corpus=corpus,
        tokenizer=tokenizer,
        errors=errors,
        runs_dir=runs_dir,
        prefs_folder=config_home(),
        text_field=text_field,
    )
    on_hangup(app)
    app.run()
    return app.return_code or 0
