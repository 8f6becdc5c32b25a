"""Completion of corpus paths as they are typed (→ at the end of the box accepts it).

A corpus is a file or a folder of them, so only folders and the files a corpus folder reads
(``files.is_corpus_name``: .txt, .md, .jsonl, .json, .parquet, compressed or not) are offered; names
starting with a dot only once a dot is typed. The folder is listed in a thread: a slow disk never
holds up the keys.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from textual.suggester import Suggester

from kantai_tui.core.corpus.files import is_corpus_name


def complete_path(value: str) -> str | None:
    """``value`` completed to the first folder (with its '/') or .txt file it starts, or None."""
    if not value:
        return None
    folder, prefix = (value, "") if value.endswith("/") else os.path.split(value)
    names = []
    try:
        with os.scandir(Path(folder or ".").expanduser()) as entries:
            for entry in entries:
                if not entry.name.startswith(prefix) or (entry.name.startswith(".") and not prefix.startswith(".")):
                    continue
                if entry.is_dir():
                    names.append(entry.name + "/")
                elif is_corpus_name(Path(entry.name)):  # the files a corpus is made of, as find_corpus_files says
                    names.append(entry.name)
    except OSError:  # a folder that is not there (yet) or cannot be read: nothing to offer
        return None
    names.sort()
    return value + names[0][len(prefix) :] if names and names[0] != prefix else None


class PathSuggester(Suggester):
    """Suggests the rest of a corpus path from what is on disk (files come and go: nothing is cached)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        return await asyncio.to_thread(complete_path, value)
