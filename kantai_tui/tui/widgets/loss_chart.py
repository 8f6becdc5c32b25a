"""A loss chart drawn with block characters: smoothed loss as columns, raw loss as dots, eval points as ●.

It draws whatever it is given (no IO): the Training pane feeds it rows it read from
``metrics.jsonl``. Each column is one bucket of steps (the last value in the bucket), so the
whole run always fits the width; ``log_scale`` plots log(loss), which shows late progress.
"""

from __future__ import annotations

import math
from itertools import groupby

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from kantai_tui.core.runs.folder import kept_after_resume
from kantai_tui.format import Smoother

EIGHTHS = " ▁▂▃▄▅▆▇█"
AXIS_WIDTH = 8


class LossChart(Widget):
    """Raw and smoothed training loss over steps, with held-out eval points."""

    log_scale = reactive(False)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.loss = Smoother()  # the same smoothing and rewind rule as `kantai follow`
        self.evals: list[tuple[int, float]] = []

    @property
    def steps(self) -> list[int]:
        return self.loss.steps

    @property
    def raw(self) -> list[float]:
        return self.loss.raw

    @property
    def smooth(self) -> list[float]:
        return self.loss.smooth

    def clear(self) -> None:
        self.loss.clear()
        self.evals = []
        self.refresh()

    def rewind(self, step: int) -> None:
        """Forget points after ``step``: the run resumed from a checkpoint there and trains them again."""
        self.loss.rewind(step)
        self.evals = [(s, loss) for s, loss in self.evals if kept_after_resume(s, step)]

    def add_step(self, step: int, loss: float | None) -> None:
        self.loss.add(step, loss)

    def add_eval(self, step: int, loss: float | None) -> None:
        if loss is not None and math.isfinite(loss):
            self.evals.append((step, loss))

    def watch_log_scale(self) -> None:
        self.refresh()

    def _y(self, value: float) -> float:
        return math.log(max(value, 1e-9)) if self.log_scale else value

    def render(self) -> Text:
        width, height = max(self.size.width - AXIS_WIDTH, 4), max(self.size.height - 1, 2)
        if not self.steps:
            return Text("no steps logged yet", style="dim")
        values = self.raw + self.smooth + [loss for _, loss in self.evals]
        low, high = self._y(min(values)), self._y(max(values))
        span = (high - low) or 1.0
        last_step = max(self.steps[-1], max((s for s, _ in self.evals), default=0), 1)
        columns = self._bucket(self.smooth, width, last_step)
        dots = self._bucket(self.raw, width, last_step)
        evals = {min(width - 1, s * width // (last_step + 1)): loss for s, loss in self.evals}
        level = lambda v: (self._y(v) - low) / span * height  # noqa: E731 - rows from the bottom, fractional
        text = Text()
        for row in range(height - 1, -1, -1):
            label = (
                f"{(math.exp if self.log_scale else float)(low + span * (row + 1) / height):7.3f} "
                if row in (0, height - 1)
                else " " * AXIS_WIDTH
            )
            text.append(label, style="dim")
            # one span per run of same-styled cells, not one per cell: a full-screen chart is ~2,000 cells,
            # and rendering that many spans cost tens of ms on every pane switch (bench_interactive.py)
            cells = [self._cell(col, row, columns, dots, evals, level) for col in range(width)]
            for style, run in groupby(cells, key=lambda cell: cell[1]):
                text.append("".join(char for char, _ in run), style=style)
            text.append("\n")
        scale = "log" if self.log_scale else "linear"
        text.append(f"{'':{AXIS_WIDTH}}step 0 … {last_step:,}  ({scale} scale; █ smoothed, · raw, ● eval)", style="dim")
        return text

    def _bucket(self, series: list[float], width: int, last_step: int) -> dict[int, float]:
        """Column -> the last value whose step falls in that column, carried forward over empty columns."""
        out: dict[int, float] = {}
        for step, value in zip(self.steps, series, strict=True):
            out[min(width - 1, step * width // (last_step + 1))] = value
        if out:
            previous = out[min(out)]
            for col in range(min(out), max(out) + 1):
                previous = out.setdefault(col, previous)
        return out

    @staticmethod
    def _cell(col: int, row: int, columns: dict, dots: dict, evals: dict, level) -> tuple[str, str]:
        if col in evals and int(level(evals[col])) == row:
            return "●", "bold magenta"
        if col in dots and int(level(dots[col])) == row:
            return "·", "yellow"
        if col not in columns:
            return " ", ""
        fill = level(columns[col]) - row
        if fill >= 1:
            return "█", "cyan"
        if fill > 0:
            return EIGHTHS[max(1, int(fill * 8))], "cyan"
        return " ", ""
