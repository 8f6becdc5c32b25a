"""The ``?`` screen: the keys of the current pane and of the whole app."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

GENERAL_KEYS = (
    ("1 … 5", "Corpus / Tokenizer / Training / Fill-mask / Device pane"),
    ("tab / shift+tab", "move focus"),
    ("ctrl+p", "command palette (every action by name)"),
    ("?", "this help"),
    ("q", "quit"),
)


def _key_rows(bindings: list[BindingType]) -> list[tuple[str, str]]:
    rows = []
    for binding in bindings:
        if isinstance(binding, Binding):  # the footer's word, then what the key does in full where it says
            what = f"{binding.description}: {binding.tooltip}" if binding.tooltip else binding.description
            rows.append((binding.key_display or binding.key, what))
        elif isinstance(binding, tuple):
            rows.append((binding[0], binding[2] if len(binding) > 2 else binding[1]))
    return rows


class HelpScreen(ModalScreen[None]):
    """Key map of the pane that was active when ``?`` was pressed."""

    BINDINGS = [("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, pane_title: str, pane_bindings: list[BindingType]) -> None:
        super().__init__()
        self.pane_title = pane_title
        self.pane_bindings = pane_bindings

    def compose(self) -> ComposeResult:
        table = Table(box=None, padding=(0, 2), show_header=False)
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        table.add_row(f"[b]{self.pane_title} pane[/]", "")
        for key, what in _key_rows(self.pane_bindings):
            table.add_row(key, what)
        table.add_row("", "")
        table.add_row("[b]everywhere[/]", "")
        for key, what in GENERAL_KEYS:
            table.add_row(key, what)
        with VerticalScroll(id="help-body"):
            yield Static(table)
            yield Static("[dim]escape, q or ? to close[/]")
