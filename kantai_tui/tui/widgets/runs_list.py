"""The Training pane's list of runs."""

from __future__ import annotations

from textual.widgets import OptionList


class RunsList(OptionList):
    """An OptionList whose cursor stops at the first and last run.

    Textual's wraps around: up on the first run jumped to the last (oldest) one, and enter then
    attached to a run nobody meant. Every option here is enabled, so a step is a plain ±1.
    """

    def action_cursor_up(self) -> None:
        self._step(-1)

    def action_cursor_down(self) -> None:
        self._step(1)

    def _step(self, delta: int) -> None:
        if self.option_count:
            current = self.highlighted
            self.highlighted = 0 if current is None else max(0, min(self.option_count - 1, current + delta))
