"""Keys handled in the order they were typed, even when one of them moves the focus.

Over SSH a burst such as "2t" or "/reason" arrives in one read. Textual forwards each key to the widget
focused *when the app reads it* and runs a pane's binding only after the key has bubbled back up, and
``Widget.focus()`` defers the change with ``call_later``: so the keys after "/" went to the table (where
"e" is itself a key) instead of the search box. Two rules put them back in order.
"""

from __future__ import annotations

from textual.widget import Widget
from textual.widgets import Input, TextArea


def focus_now(widget: Widget) -> None:
    """Give ``widget`` the focus before the next queued key is handled (every key that moves it uses this)."""
    widget.screen.set_focus(widget)


def bindings_first(focused: Widget | None) -> bool:
    """Whether the app may run a key's binding as it reads the key, before reading the next one.

    Not in a text box: there a printable key is text, which only the box itself knows. Everywhere else our
    widgets and Textual's act on keys through bindings, so running them in the app's own loop gives the
    same answer as the bubbling would, only in order.
    """
    return not isinstance(focused, (Input, TextArea))
