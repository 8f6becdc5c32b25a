"""Whole processes: terminals, browsers, signals, kills, torchrun, packaging."""
