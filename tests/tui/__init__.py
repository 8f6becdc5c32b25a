"""The Textual app: Pilot tests and snapshots."""
