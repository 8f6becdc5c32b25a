"""The TUI's panes, one per pipeline stage."""
