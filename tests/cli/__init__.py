"""The headless CLI: exit codes, messages, JSON, hostile input."""
