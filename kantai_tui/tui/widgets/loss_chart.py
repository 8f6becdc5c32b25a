"""The Training pane's chart: one run or several overlaid, each in its own colour, drawn in braille dots.

What it plots cycles (``METRICS``): the training loss (raw points faint behind the smoothed curve, held-out
loss as ● points), held-out accuracy (masked bright, content words faint), the learning rate, the
gradient norm. The x-axis is steps, tokens or training seconds (``elapsed_s``), and a log y-axis can be
switched on. Ticks come from ``ticks.py``: at least four labelled ones on each axis.

The smoothed curve is ``format.Smoother`` over every logged point, the rule ``kantai follow`` uses: a
function of the points, never of the chart's width or of how many points fit in it. Each braille cell
is 2×4 dots; a series is drawn through every point it has (a column of dots spans what falls in it), so
a long run's noise band is its real range, not a sample of it.

It draws what it is given (no IO): the pane feeds the attached run row by row as it reads metrics.jsonl
(``add_step``, ``add_eval``, ``rewind``) and hands over the compared runs read whole (``compare``).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field, replace
from itertools import groupby

from rich.style import Style
from rich.text import Text
from textual.color import Color
from textual.reactive import reactive
from textual.widget import Widget

from kantai_tui.core.runs.folder import kept_after_resume
from kantai_tui.core.runs.history import X_AXES, RunHistory, interpolate
from kantai_tui.format import Smoother
from kantai_tui.tui.widgets import ticks

# one colour per run, in this order: the attached run first; each reads on dark and light themes
PALETTE = ("#2fb8c4", "#f0a030", "#d070d0", "#80c040", "#f06060", "#8090ff")
FAINT = 0.6  # how far a faint series' colour is blended into the background
METRICS = ("loss", "accuracy", "lr", "grad_norm")
METRIC_TITLES = {"loss": "loss", "accuracy": "held-out accuracy", "lr": "learning rate", "grad_norm": "grad norm"}
X_TITLES = {"step": "steps", "tokens": "tokens", "elapsed_s": "time"}
# what the faint and the ● series are, per metric (its bright line is the metric itself)
LEGENDS = {
    "loss": "faint raw · ● held-out",
    "accuracy": "● masked · faint content words",
    "lr": "",
    "grad_norm": "",
}
EMPTY = {
    "loss": "no steps logged yet",
    "accuracy": "no held-out evaluation yet",
    "lr": "no learning rate logged yet",
    "grad_norm": "no gradient norm logged yet (older runs did not log it)",
}
BRAILLE = 0x2800
DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [dot row][dot column] of a braille cell
FAINT_RANK, BRIGHT_RANK, MARKER_RANK = 1, 2, 3  # a cell shows its highest-ranked series only
MARKER = "●"
TALL = 16  # a chart this high spares a second header line for the legend
SHORT = 6  # a chart with fewer rows of dots than this writes its x labels into the axis line


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class Line:
    """One series as the chart draws it: (x, y) points in order, faint or bright, dots or ● markers."""

    run: str
    role: str  # "raw", "smoothed", "held-out", "masked", "content words", "lr", "grad norm"
    colour: str
    points: list[tuple[float, float]]
    rank: int = BRIGHT_RANK
    line: bool = True  # dots through the points
    markers: bool = False  # a ● on each point


@dataclass
class Trace:
    """One run's history as the chart needs it: its step rows, the smoothed loss over them, its evals."""

    name: str
    colour: str = PALETTE[0]
    loss: Smoother = field(default_factory=Smoother)
    rows: list[dict] = field(default_factory=list)  # step rows, in step order
    loss_rows: list[dict] = field(default_factory=list)  # the rows the smoother took, one per smoothed point
    evals: list[dict] = field(default_factory=list)
    # (metric, x) -> its lines, until a row comes in: a key press redraws the chart from these
    _lines: dict[tuple[str, str], list[Line]] = field(default_factory=dict, repr=False, compare=False)
    version: int = field(default=0, compare=False)  # counts the changes: the chart redraws what it has not drawn

    def _changed(self) -> None:
        self._lines.clear()
        self.version += 1

    @classmethod
    def of_history(cls, history: RunHistory, colour: str) -> Trace:
        """A whole run read by ``load_history`` (already rewound at its resumes), through the same adds."""
        trace = cls(history.name, colour)
        for row in history.steps:
            trace.add_step(row)
        for row in history.evals:
            trace.add_eval(row)
        return trace

    def add_step(self, row: dict) -> None:
        self._changed()
        self.rows.append(row)
        taken = len(self.loss.steps)
        self.loss.add(row["step"], row.get("loss"))
        if len(self.loss.steps) > taken:  # a missing or non-finite loss is not a point
            self.loss_rows.append(row)

    def add_eval(self, row: dict) -> None:
        self._changed()
        self.evals.append(row)

    def rewind(self, start_step: int) -> None:
        """Forget points after ``start_step``: the run resumed from a checkpoint there and trains them again."""
        self._changed()
        self.loss.rewind(start_step)
        del self.loss_rows[len(self.loss.steps) :]
        self.rows = [r for r in self.rows if kept_after_resume(r["step"], start_step)]
        self.evals = [e for e in self.evals if kept_after_resume(e["step"], start_step)]

    def eval_series(self, y: str, x: str) -> list[tuple[float, float]]:
        """(x, y) of the held-out evaluations. An eval row read live has no tokens or seconds of its own:
        it is placed between the step rows around it by ``history.interpolate``, as ``load_history``
        places a whole run's, so the attached run and a compared one put an eval at the same x."""
        placed = [(r["step"], r[x]) for r in self.rows if _number(r.get(x))]
        steps = [s for s, _ in placed]
        out = []
        for row in self.evals:
            if not _number(row.get(y)):
                continue
            if _number(row.get(x)):
                out.append((row[x], row[y]))
                continue
            at = bisect_left(steps, row["step"])
            value = interpolate(placed[max(at - 1, 0) : at + 1], row["step"])
            if value is not None:
                out.append((value, row[y]))
        return out

    def step_series(self, y: str, x: str) -> list[tuple[float, float]]:
        return [(r[x], r[y]) for r in self.rows if _number(r.get(x)) and _number(r.get(y))]

    def lines(self, metric: str, x: str) -> list[Line]:
        """What the chart draws of this run for ``metric`` against ``x`` (kept until the next row)."""
        if (metric, x) not in self._lines:
            self._lines[metric, x] = self._make_lines(metric, x)
        return self._lines[metric, x]

    def _make_lines(self, metric: str, x: str) -> list[Line]:
        name, colour = self.name, self.colour
        if metric == "loss":
            xs = [(r.get(x), s, raw) for r, s, raw in zip(self.loss_rows, self.loss.smooth, self.loss.raw, strict=True)]
            return [
                Line(name, "raw", colour, [(a, raw) for a, _, raw in xs if _number(a)], FAINT_RANK),
                Line(name, "smoothed", colour, [(a, s) for a, s, _ in xs if _number(a)]),
                Line(name, "held-out", colour, self.eval_series("eval_loss", x), MARKER_RANK, False, True),
            ]
        if metric == "accuracy":
            return [
                Line(name, "content words", colour, self.eval_series("content_acc", x), FAINT_RANK, markers=True),
                Line(name, "masked", colour, self.eval_series("mask_acc", x), markers=True),
            ]
        return [Line(name, metric.replace("_", " "), colour, self.step_series(metric, x))]


class LossChart(Widget):
    """Training curves of the attached run and of the runs compared with it, overlaid."""

    log_scale = reactive(False)
    x_axis = reactive("step")
    metric = reactive("loss")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.live = Trace("")  # the attached run, fed as its metrics are read
        self.compared: list[Trace] = []  # the runs marked for comparison, read whole
        self._drawn: tuple[object, Text] = (None, Text())  # (what was drawn, the drawing): render's cache

    # --- the attached run ---------------------------------------------------------------

    @property
    def steps(self) -> list[int]:
        return self.live.loss.steps

    @property
    def raw(self) -> list[float]:
        return self.live.loss.raw

    @property
    def smooth(self) -> list[float]:
        return self.live.loss.smooth

    @property
    def evals(self) -> list[tuple[int, float]]:
        """(step, held-out loss) of the attached run."""
        return [(e["step"], e["eval_loss"]) for e in self.live.evals if _number(e.get("eval_loss"))]

    def clear(self, name: str = "", colour: str = PALETTE[0]) -> None:
        """Start over with another attached run."""
        self.live = Trace(name, colour)
        self.refresh()

    def rewind(self, step: int) -> None:
        self.live.rewind(step)

    def add_step(self, row: dict) -> None:
        self.live.add_step(row)

    def add_eval(self, row: dict) -> None:
        self.live.add_eval(row)

    # --- what is shown --------------------------------------------------------------------

    def compare(self, traces: list[Trace]) -> None:
        """Overlay these runs (drawn under the attached one)."""
        self.compared = traces
        self.refresh()

    def cycle_x_axis(self) -> None:
        self.x_axis = X_AXES[(X_AXES.index(self.x_axis) + 1) % len(X_AXES)]

    def cycle_metric(self) -> None:
        self.metric = METRICS[(METRICS.index(self.metric) + 1) % len(METRICS)]

    @property
    def traces(self) -> list[Trace]:
        """Every run shown, the attached one last (on top)."""
        return [*self.compared, self.live]

    def lines(self) -> list[Line]:
        """Every series drawn now, faint ones first (each later one drawn over the earlier). New Line objects
        (the traces keep theirs for the next frame), in each run's colour now: marking or unmarking the
        attached run changes it, and its kept lines do not know."""
        drawn = []
        for trace in self.traces:
            for line in trace.lines(self.metric, self.x_axis):
                points = [(x, y) for x, y in line.points if y > 0] if self.log_scale else line.points
                drawn.append(replace(line, colour=trace.colour, points=points))
        return sorted((line for line in drawn if line.points), key=lambda line: line.rank)

    # --- drawing ---------------------------------------------------------------------------

    def render(self) -> Text:
        """The chart, drawn again only when what it shows changed: Textual renders a widget whenever its
        region may have (a class set on the pane, the diff under it growing), and with a compared run of
        thousands of points one drawing is tens of ms."""
        key = (
            self.size,
            self.x_axis,
            self.metric,
            self.log_scale,
            self.background_colors[1],
            tuple((id(t), t.version, t.name, t.colour) for t in self.traces),
        )
        if key != self._drawn[0]:
            self._drawn = (key, self._draw())
        return self._drawn[1].copy()

    def _draw(self) -> Text:
        width, height = self.size.width, self.size.height
        lines = self.lines()
        if not lines:  # the title alone: no names or key to series not drawn
            return Text("\n").join([self._title(), Text(EMPTY[self.metric], style="dim")])
        header = self._header(width, height)
        inline = height - len(header) - 2 < SHORT  # labels written into the axis line: one row more for dots
        rows = max(height - len(header) - (1 if inline else 2), 2)
        y_range, y_ticks = self._y_axis(lines, rows)
        y_labels = ticks.value_labels(y_ticks, percent=self.metric == "accuracy", log=self.log_scale)
        gutter = max(len(label) for label in y_labels) + 1
        columns = max(width - gutter, 4)
        x_high = max(max(x for line in lines for x, _ in line.points), 1e-9)
        x_ticks, x_labels = self._x_ticks(x_high, columns)
        canvas = Canvas(columns, rows, (0.0, x_high), y_range, self.log_scale)
        background = self.background_colors[1]
        for line in lines:
            canvas.draw(line, self._style(line, background))
        text = Text(no_wrap=True, overflow="crop")
        for part in header:
            text.append_text(part)
            text.append("\n")
        self._plot_rows(text, canvas, y_ticks, y_labels, gutter)
        self._x_axis_rows(text, canvas, x_ticks, x_labels, gutter, inline)
        return text

    def _title(self) -> Text:
        scale = "log" if self.log_scale else "linear"
        return Text(f"{METRIC_TITLES[self.metric]} by {X_TITLES[self.x_axis]} · {scale}", style="bold")

    def _header(self, width: int, height: int) -> list[Text]:
        """The title (what against what, which scale), then the runs' names each in its colour, then the
        key to the series: on one line while they fit, the rest on a second line if the chart is tall
        enough to spare it (else left out: a short chart keeps its rows for the curves, and the diff
        under it heads each run's column with its name in its colour)."""
        names = Text("  ").join(Text(f"━ {t.name}", style=t.colour) for t in [self.live, *self.compared] if t.name)
        parts = [part for part in (names, Text(LEGENDS[self.metric], style="dim")) if part.cell_len]
        lines = [self._title()]
        for part in parts:
            if lines[-1].cell_len + 2 + part.cell_len > width and len(lines) == 1 and height >= TALL:
                lines.append(Text())
            if lines[-1].cell_len + 2 + part.cell_len <= width:
                lines[-1] = Text("  ").join([lines[-1], part]) if lines[-1].cell_len else part
        return lines

    def _y_axis(self, lines: list[Line], rows: int) -> tuple[tuple[float, float], list[float]]:
        """The y range (from the first tick to the last) and the ticks labelled in ``rows`` rows."""
        values = [y for line in lines for _, y in line.points]
        low, high = min(values), max(values)
        most = max(ticks.MIN_TICKS + 1, rows // 3 + 2)
        found = ticks.log_ticks(low, high) if self.log_scale else ticks.linear_ticks(low, high, most)
        return (found[0], found[-1]), ticks.thin(found, rows)

    def _x_ticks(self, high: float, columns: int) -> tuple[list[float], list[str]]:
        """Ticks from 0 to the furthest point of any run: about one per 10 columns (never under MIN_TICKS),
        fewer when their labels would not fit side by side."""
        label = ticks.time_label if self.x_axis == "elapsed_s" else ticks.count_label
        find = ticks.time_ticks if self.x_axis == "elapsed_s" else ticks.count_ticks
        for want in range(max(columns // 10, ticks.MIN_TICKS), ticks.MIN_TICKS - 1, -1):
            found = find(high, want)
            labels = [label(t) for t in found]
            if len(found) <= max(columns // 8, ticks.MIN_TICKS) and sum(len(s) + 1 for s in labels) <= columns:
                return found, labels
        found = find(high, ticks.MIN_TICKS)
        return found, [label(t) for t in found]

    @staticmethod
    def _style(line: Line, background: Color) -> Style:
        colour = Color.parse(line.colour)
        if line.rank == FAINT_RANK:
            return Style(color=colour.blend(background, FAINT).hex)
        return Style(color=colour.hex, bold=line.rank == MARKER_RANK)

    @staticmethod
    def _plot_rows(text: Text, canvas: Canvas, y_ticks: list[float], labels: list[str], gutter: int) -> None:
        """Each row of dots behind its y label and axis (┤ where a tick falls in the row)."""
        at_row = {canvas.row_of(value): label for value, label in zip(y_ticks, labels, strict=True)}
        for row in range(canvas.rows):
            label = at_row.get(row)
            text.append(f"{label:>{gutter - 1}}┤" if label is not None else f"{'':{gutter - 1}}│", style="dim")
            # one span per run of same-styled cells, not one per cell: a full-screen chart is thousands of
            # cells, and a span each cost tens of ms on every frame (bench_interactive.py)
            for style, cells in groupby(canvas.cells(row), key=lambda cell: cell[1]):
                text.append("".join(char for char, _ in cells), style=style)
            text.append("\n")

    @staticmethod
    def _x_axis_rows(
        text: Text, canvas: Canvas, x_ticks: list[float], labels: list[str], gutter: int, inline: bool
    ) -> None:
        """The axis with a ┬ at each tick and the labels under them (each shifted inside the chart, one
        dropped where it would touch the one before); on a short chart, the labels on the axis line itself."""
        columns = [canvas.column_of(value) for value in x_ticks]
        axis = ["─"] * canvas.columns
        line = axis if inline else [" "] * canvas.columns
        if not inline:
            for column in columns:
                axis[column] = "┬"
        end = -1
        for column, label in zip(columns, labels, strict=True):
            start = min(max(column - (0 if inline else len(label) // 2), 0), canvas.columns - len(label))
            if start > end:
                line[start : start + len(label)] = label
                end = start + len(label)
        text.append(f"{'':{gutter - 1}}└{''.join(axis)}", style="dim")
        if not inline:
            text.append(f"\n{'':{gutter}}{''.join(line).rstrip()}", style="dim")


class Canvas:
    """A grid of braille cells; each cell keeps the dots and style of the highest-ranked series in it."""

    def __init__(
        self, columns: int, rows: int, x_range: tuple[float, float], y_range: tuple[float, float], log: bool
    ) -> None:
        self.columns, self.rows, self.log = columns, rows, log
        self.x0, self.y1 = x_range[0], self._y(y_range[1])
        self.wide, self.high = 2 * columns - 1, 4 * rows - 1  # the last dot column and row
        self.x_scale = self.wide / ((x_range[1] - x_range[0]) or 1.0)
        self.y_scale = self.high / ((self.y1 - self._y(y_range[0])) or 1.0)
        self.bits = [0] * (columns * rows)
        self.rank = [0] * (columns * rows)
        self.style: list[Style | None] = [None] * (columns * rows)
        self.marks: set[int] = set()

    def _y(self, value: float) -> float:
        return math.log10(value) if self.log else value

    def dot_x(self, value: float) -> int:
        return min(max(round((value - self.x0) * self.x_scale), 0), self.wide)

    def dot_y(self, value: float) -> int:
        """Dot row from the top."""
        return min(max(round((self.y1 - self._y(value)) * self.y_scale), 0), self.high)

    def row_of(self, value: float) -> int:
        return self.dot_y(value) // 4

    def column_of(self, value: float) -> int:
        return self.dot_x(value) // 2

    def dots(self, points: list[tuple[float, float]]) -> list[tuple[int, int]]:
        """``dot_x``/``dot_y`` of every point, inlined: a compared run is thousands of points per frame."""
        x0, x_scale, wide, y1, y_scale, high = self.x0, self.x_scale, self.wide, self.y1, self.y_scale, self.high
        if self.log:
            log10 = math.log10
            return [
                (min(max(round((x - x0) * x_scale), 0), wide), min(max(round((y1 - log10(y)) * y_scale), 0), high))
                for x, y in points
            ]
        return [
            (min(max(round((x - x0) * x_scale), 0), wide), min(max(round((y1 - y) * y_scale), 0), high))
            for x, y in points
        ]

    def draw(self, line: Line, style: Style) -> None:
        dots = self.dots(line.points)
        cells: dict[int, int] = {}
        if line.line:
            _polyline(_per_column(dots), cells, self.columns)
        if line.markers:
            for dx, dy in dots:
                cells[dy // 4 * self.columns + dx // 2] = 0  # a marker cell: its glyph, not dots
        for cell, bits in cells.items():
            if line.rank > self.rank[cell]:
                self.bits[cell], self.rank[cell] = bits, line.rank
                self.marks.discard(cell)
            elif line.rank == self.rank[cell]:
                self.bits[cell] |= bits
            else:
                continue
            self.style[cell] = style
            if line.markers and not bits:
                self.marks.add(cell)

    def cells(self, row: int) -> list[tuple[str, Style | None]]:
        out = []
        for cell in range(row * self.columns, (row + 1) * self.columns):
            if cell in self.marks:
                out.append((MARKER, self.style[cell]))
            elif self.bits[cell]:
                out.append((chr(BRAILLE + self.bits[cell]), self.style[cell]))
            else:
                out.append((" ", None))
        return out


def _per_column(dots: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The dots ``_polyline`` needs of each run of dots in one dot column: the first (the line into the
    column ends there), the lowest, the highest and the last (the line out starts there), in path order.
    The path drawn is the same; thousands of points become a few per column."""
    kept: list[tuple[int, int]] = []
    start = 0
    for end in range(1, len(dots) + 1):
        if end < len(dots) and dots[end][0] == dots[start][0]:
            continue
        run = dots[start:end]
        if len(run) <= 4:
            kept.extend(run)
        else:
            low, high = min(run, key=lambda d: d[1]), max(run, key=lambda d: d[1])
            kept.extend((run[0], low, high, run[-1]))
        start = end
    return kept


def _polyline(dots: list[tuple[int, int]], cells: dict[int, int], columns: int) -> None:
    """Set the dots of the path through ``dots``. Each dot column gets one vertical span, from the lowest
    to the highest dot the path touches in it (its points, and the rise of the straight line into it from
    the column before), so thousands of points cost one span per column, a noisy run's column spans its
    real range, and a line stays one dot thin where it is flat."""
    spans: dict[int, list[int]] = {}

    def cover(x: int, a: int, b: int) -> None:
        span = spans.setdefault(x, [min(a, b), max(a, b)])
        span[0], span[1] = min(span[0], a, b), max(span[1], a, b)

    px, py = dots[0] if dots else (0, 0)
    for x, y in dots:
        cover(x, y, y)
        if x != px:  # the line from the previous point: each column it crosses holds its dot, and the rise
            step, count, before = (1 if x > px else -1), abs(x - px), py  # from the column before's dot
            for i in range(1, count + 1):
                at = round(py + (y - py) * i / count)
                cover(px + i * step, at, at if abs(at - before) <= 1 else before + (1 if at > before else -1))
                before = at
        px, py = x, y
    for x, (low, high) in spans.items():
        side, cell_column = x % 2, x // 2
        for row in range(low // 4, high // 4 + 1):
            top = low - 4 * row if row == low // 4 else 0
            bottom = high - 4 * row if row == high // 4 else 3
            cell = row * columns + cell_column
            cells[cell] = cells.get(cell, 0) | SPAN_BITS[side][top][bottom]


def _span_bits() -> tuple[tuple[tuple[int, ...], ...], ...]:
    """[dot column][top dot row][bottom dot row] -> the bits of that vertical run of dots in one cell."""
    return tuple(
        tuple(tuple(sum(DOTS[r][side] for r in range(top, bottom + 1)) for bottom in range(4)) for top in range(4))
        for side in range(2)
    )


SPAN_BITS = _span_bits()
