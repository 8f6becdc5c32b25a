"""Beside (or under) the overlaid curves: which of the compared runs learned fastest, and how they differ.

One column per run, headed by its name in its chart colour: each run's latest held-out loss, then
(when the runs ended at different points) the held-out loss each had at the furthest point of the
chart's x-axis all of them reached (60 steps, 1.2M tokens or 2m30s, interpolated between evaluations
by ``history.interpolate``, the rule ``kantai compare`` reads), its masked and content-word accuracy,
then the settings that differ (``history.config_diff`` of the resolved configs, nothing else). The
best of each figure is bold, so the fastest learner reads at a glance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from kantai_tui.core.runs.history import config_diff, interpolate
from kantai_tui.format import NA, loss_text, number
from kantai_tui.tui.widgets import ticks
from kantai_tui.tui.widgets.loss_chart import Trace

MIN_COLUMN = 6  # a run's column is never narrower (a loss is 5 wide: 6.120)
# (row label, eval field, lower is better); the latest evaluation of each run
LATEST = (("held-out", "eval_loss", True), ("masked", "mask_acc", False), ("content", "content_acc", False))


@dataclass(frozen=True)
class Compared:
    """One run of the comparison: its chart trace (name, colour, evals) and its resolved config."""

    trace: Trace
    config: dict


class RunDiff(Static):
    """The comparison table; empty (and hidden by the pane) with fewer than two runs."""

    keys: list[str] = []  # the settings it lists now (replaced, never changed in place)
    width_budget = 80  # columns it may take (the pane's layout says, ``fit``)
    _shown: tuple[list[Compared], str] = ([], "step")

    def show(self, runs: list[Compared], x_axis: str) -> None:
        self._shown = (runs, x_axis)
        self._draw()

    def fit(self, width: int) -> None:
        if width != self.width_budget:
            self.width_budget = width
            self._draw()

    def _draw(self) -> None:
        runs, x_axis = self._shown
        differing = config_diff([run.config for run in runs]) if len(runs) > 1 else {}
        self.keys = list(differing)
        self.update(diff_table(runs, differing, x_axis, self.width_budget) if len(runs) > 1 else "")


def diff_table(runs: list[Compared], differing: dict[str, list[object]], x_axis: str, width: int) -> Table:
    """The latest held-out figures, then the settings that differ (``differing``: ``config_diff`` of the
    runs' configs, the ones people compare first leading): the verdict stays in sight when a short pane
    cuts the table. In ``width`` columns: a name or value too long for its column keeps its end (default
    run names differ there)."""
    rows: list[tuple[str, list[Text]]] = []
    for label, key, lower in LATEST:
        latest = [run.trace.evals[-1].get(key) if run.trace.evals else None for run in runs]
        rows.append((label, _ranked(latest, _loss if key == "eval_loss" else _percent, lower)))
        if key == "eval_loss" and (equal := _at_equal_x(runs, x_axis)) is not None:
            rows.append((f" @ {equal[0]}", _ranked(equal[1], _loss, lower=True)))
    rows += [(key, [Text(_setting(value)) for value in values]) for key, values in differing.items()]
    if not differing:
        rows.append(("settings", [Text("same") for _ in runs]))
    column = max((width - max(len(label) for label, _ in rows) - len(runs)) // len(runs), MIN_COLUMN)
    table = Table(box=None, padding=(0, 1), show_edge=False, pad_edge=False, collapse_padding=True)
    table.add_column(style="dim", no_wrap=True)
    for run in runs:
        name = Text(_keep_end(run.trace.name, column), style=f"bold {run.trace.colour}")
        table.add_column(name, no_wrap=True, justify="right")
    for label, cells in rows:
        table.add_row(label, *(Text(_keep_end(cell.plain, column), style=cell.style) for cell in cells))
    return table


def _at_equal_x(runs: list[Compared], x_axis: str) -> tuple[str, list[float | None]] | None:
    """Each run's held-out loss at the furthest x all runs' evaluations reached, with that x as a label;
    None when there is none, or when every run's latest evaluation is there already (the row above)."""
    series = [run.trace.eval_series("eval_loss", x_axis) for run in runs]
    if not all(series):
        return None
    reached = min(points[-1][0] for points in series)
    if all(points[-1][0] == reached for points in series):
        return None
    values = [interpolate(points, reached) for points in series]
    if x_axis == "elapsed_s":
        return ticks.time_label(reached), values
    return f"{ticks.count_label(reached)} {'steps' if x_axis == 'step' else 'tok'}", values


def _ranked(values: list[float | None], show: Callable[[float | None], str], lower: bool) -> list[Text]:
    """The values as text, the best one bold (none when they tie or only one run has the figure)."""
    known = [v for v in values if isinstance(v, (int, float))]
    best = (min(known) if lower else max(known)) if len(set(known)) > 1 else None
    return [Text(show(v), style="bold" if v is not None and v == best else "") for v in values]


def _loss(value: float | None) -> str:
    return loss_text(value, 3)


def _percent(value: float | None) -> str:
    return number(value, ".1%")


def _setting(value: object) -> str:
    """A config value in a column: a float without trailing zeros (3e-4 under 0.01), None as '—'."""
    if value is None:
        return NA
    if isinstance(value, float):
        return ticks.scientific(value) if 0 < abs(value) < 1e-2 else f"{value:g}"
    return str(value)


def _keep_end(text: str, width: int) -> str:
    """'tiny-packed-20261125-162452' in 10 columns: '…25-162452' (names and paths differ at their end)."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]
