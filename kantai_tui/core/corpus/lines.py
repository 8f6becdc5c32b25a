"""The corpus as documents: what the tokenizer trainer and the token cache both read, piece by piece.

A document is a line of a text file (the tutorial's rule: ``LineByLineTextDataset`` makes an example
of each) or a record of a JSON-lines or parquet file (whose text may hold newlines). Lines of text
files come with their ``\\n``, as the Rust file reader reads them, so training from this iterator
gives the tutorial's vocabulary; a document longer than ``LONG_LINE`` characters comes in pieces,
so no reader ever holds a whole 50 MB line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from kantai_tui.core.corpus.files import iter_text_chunks, sources
from kantai_tui.core.corpus.formats import DEFAULT_TEXT_FIELD, TEXT, iter_documents

LONG_LINE = 1 << 20  # characters: longer lines are read in pieces (here) and scanned in a stream (scan.py)


def iter_document_pieces(
    files: list[Path],
    on_bytes: Callable[[int], None],
    errors: str = "strict",
    max_chars: int | None = None,
    text_field: str = DEFAULT_TEXT_FIELD,
) -> Iterator[tuple[str, bool]]:
    """Yield (text, ends_document) for each document of the corpus; ``on_bytes`` hears the file bytes read.

    A document longer than ``max_chars`` comes in pieces, each cut just before a space that
    starts a word. The byte-level pre-tokenizer attaches that space to the word after it,
    so the pieces pre-tokenize exactly as the whole line would, and a 50 MB one-line file
    trains in bounded memory instead of ~5 GB.
    """
    limit = max_chars or LONG_LINE
    for source in sources(files):
        if source.format == TEXT:
            yield from _text_lines(source.path, on_bytes, errors, limit)
            continue
        for text, read in iter_documents(source, errors, text_field):
            on_bytes(read)
            while len(text) > limit and (cut := _word_cut(text, limit)) > 0:
                yield text[:cut], False
                text = text[cut:]
            yield text, True


def _text_lines(path: Path, on_bytes: Callable[[int], None], errors: str, limit: int) -> Iterator[tuple[str, bool]]:
    """The lines of one text file, ``\\n`` kept, long ones in pieces."""
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


def iter_piece_batches(
    files: list[Path],
    on_bytes: Callable[[int], None],
    errors: str = "strict",
    batch: int = 1000,
    text_field: str = DEFAULT_TEXT_FIELD,
    keep: Iterator[bool] | None = None,
) -> Iterator[list[str]]:
    """The pieces of ``iter_document_pieces`` in batches, for the trainer and the batch encoder; ``keep`` (one
    decision per document, in order) leaves documents out, whole."""
    out: list[str] = []
    kept, starting = True, True
    for piece, ends in iter_document_pieces(files, on_bytes, errors, text_field=text_field):
        if starting and keep is not None:
            kept = next(keep)
        starting = ends
        if not kept:
            continue
        out.append(piece)
        if len(out) >= batch:
            yield out
            out = []
    if out:
        yield out


def iter_whole_documents(
    files: list[Path],
    on_bytes: Callable[[int], None] = lambda n: None,
    errors: str = "strict",
    text_field: str = DEFAULT_TEXT_FIELD,
) -> Iterator[str]:
    """Each document whole (its pieces joined; a text file's line with its ``\\n``), blank ones too."""
    carry = ""
    for piece, ends in iter_document_pieces(files, on_bytes, errors, text_field=text_field):
        carry += piece
        if ends:
            yield carry
            carry = ""


def iter_documents_kept(
    files: list[Path], keep: Iterator[bool], wanted: bool, errors: str = "strict", text_field: str = DEFAULT_TEXT_FIELD
) -> Iterator[str]:
    """Whole non-blank documents whose ``keep`` decision is ``wanted`` (False: the ones a sample left out);
    a decision is drawn for every document, blank or not, as ``iter_piece_batches`` draws them."""
    for document in iter_whole_documents(files, errors=errors, text_field=text_field):
        if next(keep) == wanted and document.strip():
            yield document
