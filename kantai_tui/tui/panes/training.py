"""Training pane: configure and start detached runs, attach to any run (also CLI-started), watch it live.

The pane never trains in the TUI's process: "start" creates the run folder and launches the
trainer in its own session, so quitting the TUI or losing SSH leaves it running, and opening
the TUI again lists it to re-attach. Watching is reading: a 0.5 s timer starts an exclusive
thread worker that reads the new lines of metrics.jsonl and status.json and hands them to the
UI in one call, so the event loop never waits on the disk.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.message import Message
from textual.signal import Signal
from textual.widgets import Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from kantai_tui.core.errors import BadInputError, KantaiError
from kantai_tui.core.files import read_json, read_json_lines
from kantai_tui.core.progress import Progress
from kantai_tui.core.runs.folder import ACTIVE, RunsListing, RunSummary, metrics_row, read_run_config, read_status
from kantai_tui.core.runs.history import load_history
from kantai_tui.core.training.config import (
    DEFAULT_EPOCHS,
    DEFAULT_TIME_S,
    RECIPES,
    TrainConfig,
    parse_duration,
    run_length,
)
from kantai_tui.core.training.presets import PRESETS, model_size
from kantai_tui.format import (
    NA,
    default_run_name,
    duration,
    eta,
    human_bytes,
    lineage_words,
    number,
    progress_text,
    row_progress,
    speed_text,
    state_text,
    steps_text,
)
from kantai_tui.tui.focus import focus_now
from kantai_tui.tui.guards import from_worker
from kantai_tui.tui.panes.base import Pane
from kantai_tui.tui.widgets.loss_chart import PALETTE, LossChart, Trace
from kantai_tui.tui.widgets.run_diff import Compared, RunDiff
from kantai_tui.tui.widgets.runs_list import RunsList
from kantai_tui.tui.widgets.text_box import TextBox
from kantai_tui.views import quality_history

DEFAULT_LENGTH = f"default: {duration(DEFAULT_TIME_S)} or {DEFAULT_EPOCHS:g} epochs"
# (field, initial value, placeholder)
FIELDS = (
    ("time", "", DEFAULT_LENGTH),
    ("epochs", "", DEFAULT_LENGTH),
    ("batch-size", "", "32; GPU: measured"),
    ("lr", "", "recipe default"),
    ("block-size", "128", ""),
    ("max-steps", "", "no limit"),
)
BESIDE_WIDTH = 100  # the diff goes beside the chart when the pane's right side is this wide, else under it


class PlotArea(Container):
    """The chart and the diff: side by side where there is room for both, else the diff under the chart."""

    def on_resize(self, event: events.Resize) -> None:
        beside = event.size.width >= BESIDE_WIDTH
        self.set_class(beside, "-beside")
        self.query_one(RunDiff).fit(event.size.width // 2 - 2 if beside else event.size.width)


def lineage_note(run_dir: Path) -> str:
    """' · from base@500, extended' for the run's title (run.json's parent and extensions)."""
    record = read_json(run_dir / "run.json") or {}
    parent, extensions = record.get("parent"), record.get("extensions")
    words = lineage_words(
        parent if isinstance(parent, dict) else None, len(extensions) if isinstance(extensions, list) else 0
    )
    return f" · {words}" if words else ""


WIDE_STATUS = 90  # status-line columns from which it names the peak MFU is measured against


class TrainingPane(Pane):
    """Form + runs list on the left, the attached run's live figures and loss chart on the right."""

    TITLE = "Training"
    BODY = "#train-runs"
    ERROR = "#train-error"

    BINDINGS = [
        Binding("s", "start", "Start run"),
        Binding("x", "stop", "Stop run"),
        Binding("R", "resume", "Resume run", key_display="R"),
        Binding("l", "log_scale", "Log scale", tooltip="the chart's y-axis linear ↔ log"),
        Binding("a", "attach_highlighted", "Attach run"),
        Binding(
            "space",
            "mark",
            "Compare run",
            key_display="space",
            tooltip="mark or unmark the highlighted run: its curves join the chart, its settings the diff",
        ),
        Binding("t", "x_axis", "X axis", tooltip="chart by steps → tokens → training time"),
        Binding("c", "chart_metric", "Chart", tooltip="chart loss → held-out accuracy → learning rate → grad norm"),
        Binding("escape", "focus_runs", "Runs list", show=False),
    ]

    class Attached(Message):
        """The pane now watches this run (the app remembers it as the last run)."""

        def __init__(self, run_dir: Path) -> None:
            super().__init__()
            self.run_dir = run_dir

    def __init__(
        self,
        runs_dir: Path,
        runs_polled: Signal[RunsListing],
        *,
        errors: str = "strict",
        text_field: str = "text",
        last_run: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.runs_dir = runs_dir
        self.runs_polled = runs_polled  # the app's one poller of the runs folder
        self.last_run = last_run
        self.errors = errors
        self.text_field = text_field
        self.corpus: Path | None = None
        self.tokenizer_dir: Path | None = None
        self.attached: Path | None = None
        self._first_step: tuple[float, float] | None = None  # (progress, elapsed_s) of this trainer's first log row
        self._last_step: dict = {}
        self._evals: list[dict] = []  # the attached run's eval rows (rewound with the chart on a resume)
        self._total: int | None = None
        self._offset = 0
        self._runs: list[RunSummary] = []
        self._shown_tokenizer: Path | None = None
        self._vocab_sizes: dict[str, int] = {}
        self._attached_config: dict = {}  # the attached run's resolved config (for the diff)
        self._marked: dict[str, str] = {}  # runs marked for comparison -> their chart colour
        self._compared: dict[str, Compared] = {}  # the marked runs read so far
        self._read_as: dict[str, tuple] = {}  # the runs-poll summary each was read at (a new one: read again)
        self._compare_reads = 0  # the latest read's number: an older read that ends later is dropped

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="train-left"):
                with VerticalScroll(id="train-form"):
                    yield Label("new run", classes="pane-title")
                    with Horizontal(classes="form-row"):
                        yield Label("corpus")
                        yield TextBox("", placeholder="a corpus file or folder", id="train-corpus")
                    with Horizontal(classes="form-row"):
                        yield Label("tokenizer")
                        yield TextBox("", placeholder="none: train one into the run", id="train-tokenizer")
                    yield Select(
                        [(f"preset: {p}", p) for p in PRESETS],
                        value="tiny",
                        allow_blank=False,
                        id="train-preset",
                        compact=True,
                    )
                    yield Select(
                        [(f"recipe: {r}", r) for r in RECIPES],
                        value="packed",
                        allow_blank=False,
                        id="train-recipe",
                        compact=True,
                    )
                    for name, default, hint in FIELDS:
                        with Horizontal(classes="form-row"):
                            yield Label(name)
                            yield TextBox(default, placeholder=hint, id=f"train-{name}")
                    with Horizontal(classes="form-row"):
                        yield Label("run name")
                        yield TextBox("", placeholder="automatic", id="train-name")
                    yield Static("", id="train-size")
                yield Label("runs  (enter attach · space compare)", classes="pane-title")
                yield RunsList(id="train-runs")
            with Vertical(id="train-right"):
                yield Label(
                    "no run attached — press s to start one, or pick one on the left",
                    id="train-run",
                    classes="pane-title",
                )
                yield Static("", id="train-status")
                yield Static("", id="train-error", classes="error")
                with PlotArea(id="train-plot"):
                    yield LossChart(id="train-chart")
                    yield RunDiff(id="train-diff")
                yield Static("", id="train-evals")

    def on_mount(self) -> None:
        self.set_interval(0.5, self._poll_attached)
        self.runs_polled.subscribe(self, self._runs_polled)
        self._show_size()

    def set_source(self, corpus: Path | None, tokenizer_dir: Path | None) -> None:
        """Fill the form with the app's corpus and its tokenizer (if trained), unless the user typed others."""
        trained = tokenizer_dir if tokenizer_dir and (tokenizer_dir / "tokenizer.json").is_file() else None
        for field, old, new in (("corpus", self.corpus, corpus), ("tokenizer", self._shown_tokenizer, trained)):
            box = self.query_one(f"#train-{field}", Input)
            if box.value in ("", str(old or "")):
                box.value = str(new or "")
        self.corpus, self.tokenizer_dir, self._shown_tokenizer = corpus, tokenizer_dir, trained
        self._show_size()

    # --- form --------------------------------------------------------------------------

    def _config(self) -> TrainConfig:
        """The form as a TrainConfig; a bad number raises a message that names the field."""
        values: dict[str, object] = {"epochs": None, "max_steps": None, "time": None}
        for name, _, _ in FIELDS:
            raw = self.query_one(f"#train-{name}", Input).value.strip()
            if raw and name == "time":
                values["time"] = parse_duration(raw)
            elif name == "batch-size" and raw.lower() == "auto":
                values["measure_batch"] = True  # measured on this device, as a GPU run is without asking
            elif raw:
                try:
                    values[name.replace("-", "_")] = float(raw) if name in ("epochs", "lr") else int(raw)
                except ValueError:
                    raise BadInputError(f"{name}: {raw!r} is not a number") from None
        length = run_length(values.pop("epochs"), values.pop("max_steps"), values.pop("time"))  # type: ignore[arg-type]
        return TrainConfig(
            **length,
            corpus=self.query_one("#train-corpus", Input).value.strip(),
            tokenizer_dir="",
            errors=self.errors,
            text_field=self.text_field,
            preset=str(self.query_one("#train-preset", Select).value),
            recipe=str(self.query_one("#train-recipe", Select).value),
            **values,
        )  # type: ignore[arg-type]

    @on(Select.Changed)
    @on(Input.Changed)
    def _show_size(self) -> None:
        """Parameters, memory and FLOPs for the preset and sizes in the form, as they change."""
        size_box = self.query_one("#train-size", Static)
        try:
            cfg = self._config().resolved()
        except KantaiError as err:
            size_box.update(Text(str(err), style="bold red"))
            return
        vocab = self._tokenizer_vocab()
        size = model_size(
            PRESETS[cfg.preset], vocab or 52_000, cfg.batch_size or 32, cfg.block_size, 0.15 if cfg.sparse_head else 1.0
        )
        note = "" if vocab else " (no tokenizer yet: sized for 52,000 tokens)"
        pooler = (
            "\n(the tutorial printed 84,095,008: its transformers counted a 590,592-parameter pooler)"
            if cfg.preset == "kantai"
            else ""
        )
        size_box.update(
            f"{size.total:,} parameters{note}\n embeddings {size.embeddings:,} · encoder {size.encoder:,} · "
            f"LM head {size.lm_head:,}\n{size.unused_rows:,} unused embedding rows · ~{human_bytes(size.train_memory_bytes)} "
            f"to train · {size.train_flops_per_token / 1e6:,.1f} MFLOP/token{pooler}"
        )

    def _tokenizer_vocab(self) -> int | None:
        """The chosen tokenizer's size, read once per folder (this runs on every keystroke)."""
        chosen = self.query_one("#train-tokenizer", Input).value.strip()
        if not chosen:
            return None
        if chosen not in self._vocab_sizes:
            size = (read_json(Path(chosen).expanduser() / "kantai.json") or {}).get("vocab_size")
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                return None  # not (yet) a tokenizer, or a hand-edited file: look again next time
            self._vocab_sizes[chosen] = size
        return self._vocab_sizes[chosen]

    # --- actions -------------------------------------------------------------------------

    def action_start(self) -> None:
        """Create a run from the form and launch its trainer in the background."""
        try:
            cfg = self._config()
            if not cfg.corpus:
                raise BadInputError("corpus: give a .txt file or a folder of them")
        except KantaiError as err:
            self.show_error(str(err), notify=True)
            return
        name = self.query_one("#train-name", Input).value.strip() or default_run_name(cfg.preset, cfg.recipe)
        chosen = self.query_one("#train-tokenizer", Input).value.strip()
        self._launch(cfg, name, Path(chosen).expanduser() if chosen else None)

    @work(thread=True, exit_on_error=False, exclusive=True, group="run-launch", description="start run")
    def _launch(self, cfg: TrainConfig, name: str, tokenizer: Path | None) -> None:
        from kantai_tui.core.runs import process

        run_dir = process.create_run(self.runs_dir, name, cfg, tokenizer)  # an error shows in the pane (Pane)
        process.start_detached(self.runs_dir, name)
        self.app.call_from_thread(self.attach, run_dir)

    def action_stop(self) -> None:
        if self.attached is not None:
            self._signal_run(self.attached.name, stop=True)

    def action_resume(self) -> None:
        if self.attached is not None:
            self._signal_run(self.attached.name, stop=False)

    @work(thread=True, exit_on_error=False, group="run-control", description="stop or resume run")
    def _signal_run(self, name: str, stop: bool) -> None:
        from kantai_tui.core.runs import process

        if stop:  # an error shows in the pane (Pane.worker_failed)
            process.stop_run(self.runs_dir, name)
        else:
            process.start_detached(self.runs_dir, name)
        self.app.call_from_thread(self.notify, f"{'stopping' if stop else 'resuming'} {name}", title="Training")

    def action_log_scale(self) -> None:
        chart = self.query_one(LossChart)
        chart.log_scale = not chart.log_scale

    def action_x_axis(self) -> None:
        """Steps → tokens → training time: the chart and the diff's held-out loss at equal x follow."""
        self.query_one(LossChart).cycle_x_axis()
        self._show_diff()

    def action_chart_metric(self) -> None:
        """Loss → held-out accuracy → learning rate → grad norm."""
        self.query_one(LossChart).cycle_metric()

    def action_mark(self) -> None:
        """Mark or unmark the highlighted run for comparison: its curves join the chart in its own colour,
        its differing settings and held-out figures the diff beside it."""
        option = self.query_one("#train-runs", OptionList).highlighted_option
        if option is None or not option.id:
            return
        if option.id in self._marked:
            self._unmark(option.id)
        else:
            free = [colour for colour in PALETTE[1:] if colour not in self._marked.values()]
            if not free:
                self.notify(f"{len(PALETTE) - 1} runs are compared already: unmark one first", title="Training")
                return
            self._marked[option.id] = free[0]
        self._show_runs_list()
        self._read_compared_runs()
        self._show_compare()

    def action_focus_runs(self) -> None:
        focus_now(self.query_one("#train-runs", OptionList))

    def action_attach_highlighted(self) -> None:
        """Attach to the run highlighted in the list, from anywhere in the pane (the list keeps the focus, so
        up/down and enter pick another)."""
        runs = self.query_one("#train-runs", OptionList)
        focus_now(runs)
        option = runs.highlighted_option
        if option is not None and option.id:
            self.attach(self.runs_dir / option.id)

    # --- runs list and attaching ------------------------------------------------------

    def _runs_polled(self, listing: RunsListing) -> None:
        self._show_runs(list(listing.runs))

    def _show_runs(self, runs: list[RunSummary]) -> None:
        if runs == self._runs:
            return
        self._runs = runs
        for gone in set(self._marked) - {r.name for r in runs}:  # deleted or renamed: nothing left to compare
            self._unmark(gone)
        self._show_runs_list()
        self._read_compared_runs()  # a compared run that trained on since it was read is read again
        self._show_compare()
        active = [r for r in runs if r.state in ACTIVE]
        if self.attached is None and active:  # reopening the TUI re-attaches to what is training
            self.attach(self.runs_dir / active[0].name)
        elif self.attached is None and self.last_run in {r.name for r in runs}:  # or to the run watched last time
            self.attach(self.runs_dir / str(self.last_run))

    def _show_runs_list(self) -> None:
        """The runs, each behind its mark: ● in its chart colour when compared, ▶ for the attached one."""
        options = self.query_one("#train-runs", OptionList)
        highlighted = options.highlighted
        options.set_options(Option(self._run_line(r), id=r.name) for r in self._runs)
        if self._runs:
            options.highlighted = highlighted if highlighted is not None and highlighted < len(self._runs) else 0

    def _run_line(self, run: RunSummary) -> Text:
        if run.name in self._marked:
            mark = ("● ", self._marked[run.name])
        elif self._is_attached(run.name):
            mark = ("▶ ", PALETTE[0])
        else:
            mark = ("  ", "")
        return Text.assemble(
            mark, f"{run.name}  {state_text(run.state, run.stalled_s)}  {steps_text(run.step or 0, run.total_steps)}"
        )

    def _is_attached(self, name: str) -> bool:
        return self.attached == self.runs_dir / name

    @on(OptionList.OptionSelected, "#train-runs")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        if event.option_id:
            self.attach(self.runs_dir / event.option_id)

    def attach(self, run_dir: Path) -> None:
        """Watch ``run_dir`` from its first metrics line."""
        self.attached, self._offset = run_dir, 0
        self._first_step, self._last_step, self._evals, self._total = None, {}, [], None
        self._started: dict = {}  # the latest started row: the peak MFU is measured against
        self.set_class(False, "-failed")
        self.query_one(LossChart).clear(run_dir.name, self._live_colour())
        self.query_one("#train-evals", Static).update("")  # the previous run's evaluations are not this one's
        config = self._attached_config = read_run_config(run_dir)
        self.post_message(self.Attached(run_dir))
        preset, recipe = (escape(str(config.get(key, "?"))) for key in ("preset", "recipe"))  # hand-editable
        self.query_one("#train-run", Label).update(
            f"run [b]{escape(run_dir.name)}[/] · {preset} preset · {recipe} recipe{escape(lineage_note(run_dir))}"
        )
        self._show_runs_list()
        self._read_compared_runs()  # the run attached before, if marked, is now one of the compared
        self._show_compare()
        self._poll_attached()

    def _poll_attached(self) -> None:
        if self.attached is not None:
            self._read_run(self.attached, self._offset)

    @work(thread=True, exit_on_error=False, exclusive=True, group="run-follow", description="follow run")
    def _read_run(self, run_dir: Path, offset: int) -> None:
        from kantai_tui.core.runs.folder import effective_state, stalled_for

        rows, new_offset = read_json_lines(run_dir / "metrics.jsonl", offset)
        status = read_status(run_dir)
        status["state"] = state_text(effective_state(run_dir), stalled_for(run_dir, status=status))
        self.app.call_from_thread(self._apply, run_dir, offset, rows, new_offset, status)

    @from_worker
    def _apply(self, run_dir: Path, start: int, rows: list[dict], offset: int, status: dict) -> None:
        """Fold new metrics rows into the chart and the status line (one UI update per poll).

        Only a read from where the pane is (``start``): the attach's read and the timer's can both start at
        the same offset, and the later one would chart the same rows again."""
        if run_dir != self.attached or start != self._offset:
            return
        self._offset = offset
        chart = self.query_one(LossChart)
        for row in filter(None, map(metrics_row, rows)):  # typed: a field is a number (str...) or absent
            if row.get("kind") == "step":
                chart.add_step(row)
                self._last_step = row
                done = row_progress(row, self._total)
                if self._first_step is None and done is not None and isinstance(row.get("elapsed_s"), (int, float)):
                    self._first_step = (done, row["elapsed_s"])
            elif row.get("kind") == "eval":
                chart.add_eval(row)
                self._evals.append(row)
            elif row.get("kind") == "started" and isinstance(row.get("start_step"), int):
                chart.rewind(row["start_step"])
                self._evals = [e for e in self._evals if e["step"] <= row["start_step"]]
                self._total = row.get("total_steps") if isinstance(row.get("total_steps"), int) else None
                self._first_step = None  # the ETA's rate is this trainer process's
                self._started = row
        chart.refresh()
        self._show_status(status, chart)
        if rows and self._compared:
            self._show_diff()  # the attached run's latest held-out figures

    def _wide_status(self) -> bool:
        """Room to name the peak MFU is measured against (at 80 columns it would cost the chart two rows;
        ``kantai follow`` names it in any case)."""
        return self.query_one("#train-status", Static).size.width >= WIDE_STATUS

    def _show_status(self, status: dict, chart: LossChart) -> None:
        state = status.get("state", "?")
        prep = Progress.from_dict(status.get("preparation")) if str(state).startswith("preparing") else None
        if prep is not None:  # the tokenizer, token cache or packing of a run's first start
            text = progress_text(prep.phase, prep.done, prep.total, prep.elapsed_s, prep.unit)
            self.query_one("#train-status", Static).update(f"[b]{escape(str(state))}[/] · {escape(text)}")
            return
        row = self._last_step
        total = status.get("total_steps") or 0
        step = status.get("step") or 0
        elapsed, done = row.get("elapsed_s"), row_progress(row, total)
        usable = isinstance(elapsed, (int, float)) and done is not None
        left = eta(self._first_step, (done, elapsed)) if usable else NA  # type: ignore[arg-type]
        label = "time left" if status.get("time_s") and not total else "ETA"
        time_left = f" · {label} {left}" if state in ACTIVE and left != NA else ""  # not while stalled
        smooth = f"{chart.smooth[-1]:.4f}" if chart.smooth else "—"
        loss = f"{chart.raw[-1]:.4f}" if chart.raw else "—"
        share = f" ({done:.0%})" if done is not None else ""
        progress = f"{step:,}/{total:,}{share}" if total else f"{step:,}{share}"
        self.query_one("#train-status", Static).update(
            f"[b]{state}[/] · step {progress} · loss {loss} · smoothed {smooth} · lr {number(row.get('lr'), '.2e')} · "
            f"{escape(speed_text(row, self._started, peak=self._wide_status()))}{time_left}"
            + (f"\n[red]{escape(str(status['error']))}[/]" if status.get("error") else "")
        )
        # before the first evaluation the line is free: the trainer's word on the batch it picked, if it did
        reason = self._started.get("batch_reason")
        waiting = f"[dim]{escape(reason)}[/]" if isinstance(reason, str) else ""
        self.query_one("#train-evals", Static).update(quality_history(self._evals) if self._evals else waiting)

    # --- comparing runs ----------------------------------------------------------------

    def _unmark(self, name: str) -> None:
        self._marked.pop(name, None)
        self._compared.pop(name, None)
        self._read_as.pop(name, None)

    def _live_colour(self) -> str:
        """The attached run's colour: its mark's if it is marked (so it keeps it when another is attached)."""
        return next((colour for name, colour in self._marked.items() if self._is_attached(name)), PALETTE[0])

    def _compared_names(self) -> list[str]:
        """The marked runs other than the attached one (drawn as the live run), in marking order."""
        return [name for name in self._marked if not self._is_attached(name)]

    def _read_compared_runs(self) -> None:
        """Read the compared runs not read yet, or whose state or step changed since (the runs poll's
        summary), in one thread worker."""
        summaries = {r.name: (r.state, r.step, r.updated) for r in self._runs}
        stale = {
            n: summaries.get(n, ()) for n in self._compared_names() if self._read_as.get(n) != summaries.get(n, ())
        }
        if stale:
            self._compare_reads += 1
            self._read_compared(self._compare_reads, stale, {n: self._marked[n] for n in stale})

    @work(thread=True, exit_on_error=False, exclusive=True, group="run-compare", description="read compared runs")
    def _read_compared(self, read: int, stale: dict[str, tuple], colours: dict[str, str]) -> None:
        found = {}
        for name in stale:
            # rewound at its resumes, evals placed on every x-axis; a fork with its parent's history before
            # its own, as `kantai compare` reads it, so it is compared over its whole training
            history = load_history(self.runs_dir / name, with_parent=True)
            found[name] = Compared(Trace.of_history(history, colours[name]), history.config)
        self.app.call_from_thread(self._compared_read, read, stale, found)

    @from_worker
    def _compared_read(self, read: int, stale: dict[str, tuple], found: dict[str, Compared]) -> None:
        """Keep what a read found, unless a later read started meanwhile (it reads these runs again)."""
        if read != self._compare_reads:
            return
        for name, compared in found.items():
            if self._marked.get(name) == compared.trace.colour:  # still marked (and not unmarked and marked again)
                self._compared[name], self._read_as[name] = compared, stale[name]
        self._show_compare()

    def _show_compare(self) -> None:
        """The chart overlays the attached run and the compared ones; the diff appears once there are two."""
        chart = self.query_one(LossChart)
        chart.live.colour = self._live_colour()
        chart.compare([self._compared[n].trace for n in self._compared_names() if n in self._compared])
        self.set_class(bool(chart.compared), "-comparing")
        self._show_diff()

    def _show_diff(self) -> None:
        chart = self.query_one(LossChart)
        runs = [Compared(chart.live, self._attached_config)] if self.attached is not None else []
        runs += [self._compared[n] for n in self._compared_names() if n in self._compared]
        self.query_one(RunDiff).show(runs, chart.x_axis)
