"""Fill-mask pane: probe any run's final model or checkpoint as you type; compare two; the probe timeline.

Models load once per source in a thread worker and stay cached; each keystroke starts an
exclusive inference worker, so the newest text wins and older answers are dropped.
The model list is re-read every few seconds, so checkpoints of a run that is still training
appear as they are written (the newest is the default).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.signal import Signal
from textual.widgets import Input, Select, Static
from textual.worker import get_current_worker

from kantai_tui import views
from kantai_tui.core.errors import KantaiError
from kantai_tui.core.runs.folder import RunsListing
from kantai_tui.format import checkpoint_label, model_label
from kantai_tui.tui.focus import focus_now
from kantai_tui.tui.guards import from_worker
from kantai_tui.tui.panes.base import Pane
from kantai_tui.tui.widgets.text_box import TextBox

if TYPE_CHECKING:
    from kantai_tui.core.fillmask import FillMask, FillResult

NONE = "none"
DEFAULT_PROMPT = "Human thinking involves human <mask>."


class PromptInput(TextBox):
    """An Input with history: up and down walk through earlier prompts."""

    BINDINGS = [
        Binding("up", "history(-1)", "Older prompt", show=False),
        Binding("down", "history(1)", "Newer prompt", show=False),
        Binding("escape", "leave", "Leave the prompt", show=False),
    ]

    def action_leave(self) -> None:
        """Escape hands the keys back to the pane (1-5 switch panes again)."""
        self.remember()
        self.screen.focus_next()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.history: list[str] = []
        self._cursor = 0

    def remember(self) -> None:
        if self.value and (not self.history or self.history[-1] != self.value):
            self.history.append(self.value)
        self._cursor = len(self.history)

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        self._cursor = max(0, min(len(self.history), self._cursor + step))
        self.value = self.history[self._cursor] if self._cursor < len(self.history) else ""
        self.cursor_position = len(self.value)


def model_choices(listing: RunsListing) -> list[tuple[str, str]]:
    """(label, target) for every run's final/ and checkpoints, newest first; target is "run_dir|step"."""
    return [
        (checkpoint_label(name, step), f"{path}|{'' if step is None else step}") for name, path, step in listing.models
    ]


class FillMaskPane(Pane):
    """Prompt, model pickers, ranked results with bars, and the probe timeline of the picked run."""

    TITLE = "Fill-mask"
    BODY = "#fill-model"
    ERROR = "#fill-error"

    BINDINGS = [
        Binding("m", "focus_model", "Model"),
        Binding("p", "focus_prompt", "Prompt"),
        Binding("c", "focus_compare", "Compare"),
    ]

    def __init__(self, runs_dir: Path, runs_polled: Signal[RunsListing], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.runs_dir = runs_dir
        self.runs_polled = runs_polled  # the app's one poller of the runs folder
        self._models: dict[str, FillMask] = {}
        self._choices: list[tuple[str, str]] = []
        self._auto_pick: object = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="fill-pickers"):
            yield Select([], prompt="model", id="fill-model", compact=True)
            yield Select([(f"compare: {NONE}", NONE)], value=NONE, allow_blank=False, id="fill-compare", compact=True)
        yield PromptInput(DEFAULT_PROMPT, placeholder="a sentence with <mask>  (↑/↓ history)", id="fill-prompt")
        yield Static("", id="fill-error", classes="error")
        with Horizontal(id="fill-results"):
            yield Static("no model yet: train a run in the Training pane (3)", id="fill-a")
            yield Static("", id="fill-b")
        with VerticalScroll(id="fill-probes-box"):
            yield Static("", id="fill-probes")

    def on_mount(self) -> None:
        self.runs_polled.subscribe(self, self._runs_polled)

    def action_focus_prompt(self) -> None:
        focus_now(self.query_one(PromptInput))

    def action_focus_model(self) -> None:
        focus_now(self.query_one("#fill-model", Select))

    def action_focus_compare(self) -> None:
        focus_now(self.query_one("#fill-compare", Select))

    # --- model list --------------------------------------------------------------------

    def _runs_polled(self, listing: RunsListing) -> None:
        self._show_models(model_choices(listing))

    @from_worker
    def _show_models(self, choices: list[tuple[str, str]]) -> None:
        if choices == self._choices:
            return
        self._choices = choices
        picker, compare = self.query_one("#fill-model", Select), self.query_one("#fill-compare", Select)
        current, compared = picker.value, compare.value
        picker.set_options(choices)
        compare.set_options([(f"compare: {NONE}", NONE)] + [(f"compare: {label}", t) for label, t in choices])
        targets = {t for _, t in choices}
        if compared in targets:
            compare.value = compared
        if not choices:
            return
        # follow the newest model (e.g. new checkpoints of a run in training) unless the user picked another
        keep = current in targets and current != self._auto_pick
        picker.value = current if keep else choices[0][1]
        self._auto_pick = choices[0][1] if not keep else self._auto_pick

    # --- prediction --------------------------------------------------------------------

    @on(Select.Changed)
    @on(Input.Changed, "#fill-prompt")
    def _predict(self) -> None:
        model = self.query_one("#fill-model", Select).value
        if not isinstance(model, str):
            return
        compare = str(self.query_one("#fill-compare", Select).value)
        text = self.query_one(PromptInput).value
        self._run(text, model, None if compare == NONE else compare)

    @on(Input.Submitted, "#fill-prompt")
    def _submitted(self) -> None:
        self.query_one(PromptInput).remember()

    @work(thread=True, exit_on_error=False, exclusive=True, group="fill-infer", description="fill-mask")
    def _run(self, text: str, model: str, compare: str | None) -> None:
        worker = get_current_worker()
        try:
            results = [self._fill(target).predict(text) for target in (model, compare) if target]
        except KantaiError as err:
            if not worker.is_cancelled:
                self.app.call_from_thread(self.show_error, str(err))
            return
        probes = self._probe_text(model)
        if not worker.is_cancelled:
            self.app.call_from_thread(self._show_results, results, probes)

    def _fill(self, target: str) -> FillMask:
        """The loaded model for "run_dir|step", loading it the first time (models stay cached)."""
        from kantai_tui.core.fillmask import FillMask

        if target not in self._models:
            run_dir, _, step = target.partition("|")
            self._models[target] = FillMask.open(run_dir, step=int(step) if step else None)
        return self._models[target]

    def _probe_text(self, target: str) -> Group | Text:
        from kantai_tui.core.runs.probes import probe_timeline

        timeline = probe_timeline(Path(target.partition("|")[0]))
        if not timeline["probes"]:
            return Text("no probe results yet (they are written at each checkpoint)", style="dim")
        parts = [Text("probes: top prediction at each checkpoint", style="bold")]
        for probe in timeline["probes"]:
            line = Text.assemble((probe["text"], "italic"), " ")
            for point in probe["points"][-8:]:  # content-word answers stand out: the model says something
                content = point.get("content", [False])[:1] == [True]
                line.append(f" {point['step']}:{point['top'][0][0]}", style="bold green" if content else "cyan")
            if probe.get("first_content_step") is not None:
                line.append(f"  (first content word at step {probe['first_content_step']:,})", style="dim")
            parts.append(line)
        return Group(*parts)

    @from_worker
    def _show_results(self, results: list, probes: Group | Text) -> None:
        self.set_class(False, "-failed")
        self.query_one("#fill-a", Static).update(_result_table(results[0]))
        self.query_one("#fill-b", Static).update(_result_table(results[1]) if len(results) > 1 else "")
        self.query_one("#fill-probes", Static).update(probes)


def _result_table(result: FillResult) -> Group:
    """Each mask's candidates with probability bars; several masks are labelled as independent."""
    parts: list[RenderableType] = [Text(model_label(result.source), style="bold")]
    masks = result.masks
    if len(masks) > 1:
        parts.append(Text("each <mask> predicted on its own", style="dim"))
    for mask in masks:
        table = Table(
            box=None, padding=(0, 1), show_header=False, title=f"<mask> #{mask.index + 1}" if len(masks) > 1 else None
        )
        for c in mask.candidates:
            table.add_row(c.text, views.bar(c.score, 12), f"{c.score:6.1%}")
        parts.append(table)
    return Group(*parts)
