"""A virtual table for the vocabulary: renders only the rows on screen.

Textual's DataTable builds a row object per row; filling it with 52,000 rows
took 8.6 s here. This widget keeps a plain list of entries and draws each visible
line on demand (Textual's Line API), so swapping in a new search result of any
size is instant and scrolling costs the same at row 10 as at row 50,000.
"""

from __future__ import annotations

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from kantai_tui.core.tokenizer.vocab import VocabEntry
from kantai_tui.views import VOCAB_COLUMNS, vocab_row

WIDTHS = (6, 18, 18, 5, 9, 7)
RIGHT_ALIGNED = {0, 3, 4, 5}


def format_cells(cells: tuple[str, ...]) -> str:
    """Pad or cut each cell to its column width (in terminal cells, so wide characters line up)."""
    parts = []
    for i, (cell, width) in enumerate(zip(cells, WIDTHS, strict=True)):
        if len(cell) > width:
            cell = cell[: width - 1] + "…"
        fitted = set_cell_size(cell, width)
        parts.append(fitted.strip().rjust(width) if i in RIGHT_ALIGNED else fitted)
    return " ".join(parts)


HEADER = format_cells(VOCAB_COLUMNS)


class VocabTable(ScrollView, can_focus=True):
    """Scrollable, keyboard-driven list of vocabulary entries with a cursor row."""

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
    ]
    COMPONENT_CLASSES = {"vocab-table--cursor", "vocab-table--special"}

    cursor = reactive(0)

    class Highlighted(Message):
        """The cursor moved onto an entry."""

        def __init__(self, entry: VocabEntry | None) -> None:
            self.entry = entry
            super().__init__()

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries: list[VocabEntry] = []
        self._lines: list[str] = []

    def show(self, entries: list[VocabEntry]) -> None:
        """Replace the rows (e.g. with a search result) and put the cursor on the first."""
        self.entries = entries
        self._lines = [format_cells(vocab_row(e)) for e in entries] if len(entries) <= 5000 else []
        self.virtual_size = Size(len(HEADER), len(entries))
        self.cursor = 0
        self.scroll_to(y=0, animate=False)
        self.refresh()
        self.post_message(self.Highlighted(entries[0] if entries else None))

    def _line_text(self, row: int) -> str:
        """Text of a row; formatted lazily for big lists, so showing 52,000 rows costs nothing."""
        return self._lines[row] if self._lines else format_cells(vocab_row(self.entries[row]))

    def render_line(self, y: int) -> Strip:
        """Draw one screen line: the entry at scroll offset + y."""
        scroll_x, scroll_y = self.scroll_offset
        row = scroll_y + y
        width = self.size.width
        if row >= len(self.entries):
            return Strip.blank(width, self.rich_style)
        style = self.rich_style
        if row == self.cursor and self.has_focus:
            style += self.get_component_rich_style("vocab-table--cursor")
        elif row == self.cursor:
            style += Style(reverse=True, dim=True)
        elif self.entries[row].special:
            style += self.get_component_rich_style("vocab-table--special")
        strip = Strip([Segment(self._line_text(row), style)])
        return strip.crop(scroll_x, scroll_x + width).extend_cell_length(width, style)

    def watch_cursor(self, old: int, new: int) -> None:
        self.refresh()
        if self.entries:
            self.scroll_to_region(Region(0, new, 1, 1), animate=False)
            self.post_message(self.Highlighted(self.entries[new]))

    def on_click(self, event: events.Click) -> None:
        """The mouse works too: a click puts the cursor on the row under it."""
        self.focus()
        self._move(self.scroll_offset.y + event.y)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def _move(self, row: int) -> None:
        if self.entries:
            self.cursor = max(0, min(len(self.entries) - 1, row))

    def action_cursor(self, delta: int) -> None:
        """Move the cursor by ``delta`` rows."""
        self._move(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        """Move the cursor by one screenful."""
        self._move(self.cursor + direction * max(1, self.size.height - 1))

    def action_jump(self, row: int) -> None:
        """Go to the first (0) or last (-1) row."""
        self._move(len(self.entries) - 1 if row < 0 else row)
