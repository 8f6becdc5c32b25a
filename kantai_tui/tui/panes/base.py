"""What every pane shares: where its errors appear, where the focus goes, what a failed worker does.

A worker (``@work(thread=True, exit_on_error=False)``) that raises is not a crash of the app:
Textual posts ``Worker.StateChanged`` to the widget that started it, and ``Pane`` shows the error
in that pane, one line, a ``KantaiError`` as its message and anything else as an internal error
named by its type. Panes whose workers leave state behind (a progress timer, a "training" class)
override ``worker_failed`` to clear it.

Error text is shown as plain text, never markup: messages name paths and exceptions, and a '[/]' in
one raised MarkupError inside this handler, which ended the app. A worker that fails the same way again
(a poll, twice a second) is notified once, until its group succeeds (``FailureNotices``, the app's rule too).
"""

from __future__ import annotations

from typing import ClassVar

from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from kantai_tui.core.errors import KantaiError, one_line
from kantai_tui.tui.focus import focus_now
from kantai_tui.tui.guards import from_worker


def failure_message(error: BaseException | None) -> str:
    """What a user reads when a background task failed: kantai's own message, or what went wrong."""
    if isinstance(error, KantaiError):
        return one_line(str(error))
    return one_line(f"internal error in a background task: {type(error).__name__}: {error}")


class FailureNotices:
    """Which worker failures were already notified: one notification per group and message, until a worker
    of that group succeeds (then its next failure is news again)."""

    def __init__(self) -> None:
        self._last: dict[str, str] = {}

    def is_news(self, event: Worker.StateChanged) -> bool:
        """Record a worker's state change; True for a failure not notified since its group last succeeded."""
        group = event.worker.group
        if event.state is WorkerState.SUCCESS:
            self._last.pop(group, None)
        if event.state is not WorkerState.ERROR:
            return False
        message = failure_message(event.worker.error)
        news = self._last.get(group) != message
        self._last[group] = message
        return news


class Pane(Vertical):
    """Base of the app's panes (registered in ``tui/app.py``'s PANES table)."""

    TITLE: ClassVar[str] = ""  # its tab and help title, and the title of its error notifications
    BODY: ClassVar[str] = ""  # selector of the widget that takes the focus when the pane is shown
    ERROR: ClassVar[str] = ""  # selector of the label its errors appear in

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._notices = FailureNotices()

    def focus_body(self) -> None:
        """Put the focus inside the pane, so its keys (shown in the footer) work at once."""
        focus_now(self.query_one(self.BODY))

    @from_worker
    def show_error(self, message: str, notify: bool = False) -> None:
        """One line in the pane's error label (and a notification when asked), as plain text."""
        self.query_one(self.ERROR, Static).update(Content(message))
        self.set_class(True, "-failed")
        if notify:
            self.notify(message, title=self.TITLE, severity="error", markup=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one handler of failed workers: the error goes to the pane that started the worker."""
        news = self._notices.is_news(event)
        if event.state is WorkerState.ERROR:
            self.worker_failed(event.worker.group, failure_message(event.worker.error), notify=news)

    def worker_failed(self, group: str, message: str, notify: bool = True) -> None:
        """A worker of ``group`` raised; panes with per-worker state override this to reset it.
        ``notify`` is False for a repeat of the failure last notified for this group."""
        self.show_error(message, notify=notify)
