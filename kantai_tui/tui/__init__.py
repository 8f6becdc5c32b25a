"""Textual front end: a thin shell over kantai_tui.core (one module per pane, one .tcss)."""
