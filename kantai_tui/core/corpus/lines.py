"""The corpus as lines: what the tokenizer trainer and the token cache both read, piece by piece.

Lines come with their ``\\n``, as the Rust file reader reads them, so training from this
iterator gives the tutorial's vocabulary; a line longer than ``LONG_LINE`` characters comes in
pieces, so no reader ever holds a whole 50 MB line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from kantai_tui.core.corpus.files import iter_text_chunks

LONG_LINE = 1 << 20  # characters: longer lines are read in pieces (here) and scanned in a stream (scan.py)


def iter_line_pieces(
    files: list[Path], on_bytes: Callable[[int], None], errors: str = "strict", max_chars: int | None = None
) -> Iterator[tuple[str, bool]]:
    """Yield (text, ends_line) for each line of the corpus, ``\\n`` kept, as the Rust file reader reads them.

    A line longer than ``max_chars`` comes in pieces, each cut just before a space that
    starts a word. The byte-level pre-tokenizer attaches that space to the word after it,
    so the pieces pre-tokenize exactly as the whole line would, and a 50 MB one-line file
    trains in bounded memory instead of ~5 GB.
    """
    limit = max_chars or LONG_LINE
    for path in files:
        pending = ""
        for text, raw in iter_text_chunks(path, errors):
            on_bytes(len(raw))
            lines = (pending + text).split("\n")
            pending = lines.pop()
            for line in lines:
                yield line + "\n", True
            while len(pending) > limit and (cut := _word_cut(pending, limit)) > 0:
                yield pending[:cut], False
                pending = pending[cut:]
        if pending:
            yield pending, True


def _word_cut(text: str, limit: int) -> int:
    """Index of the last space before ``limit`` that is followed by a non-space (0: none)."""
    cut = text.rfind(" ", 0, limit)
    while cut > 0 and text[cut + 1].isspace():
        cut = text.rfind(" ", 0, cut)
    return max(cut, 0)


def iter_corpus_lines(
    files: list[Path], on_bytes: Callable[[int], None], errors: str = "strict", batch: int = 1000
) -> Iterator[list[str]]:
    """The pieces of ``iter_line_pieces`` in batches, for the trainer and the batch encoder."""
    out: list[str] = []
    for piece, _ in iter_line_pieces(files, on_bytes, errors):
        out.append(piece)
        if len(out) >= batch:
            yield out
            out = []
    if out:
        yield out
