"""Corpus: which files a path means, reading them, scanning, statistics."""
