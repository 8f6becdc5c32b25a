"""The app's one kind of text box."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input


class TextBox(Input):
    """A compact ``Input`` that keeps its text and cursor when the focus comes back (tab, shift+tab).

    Textual's Input selects all its text on focus, so the next key typed after shift+tab replaced a
    whole path or form value; here the cursor is where it was and the key is added there.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("compact", True)
        kwargs.setdefault("select_on_focus", False)
        super().__init__(*args, **kwargs)
