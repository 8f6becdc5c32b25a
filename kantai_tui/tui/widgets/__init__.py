"""Widgets that do no IO: they draw what a pane hands them."""
