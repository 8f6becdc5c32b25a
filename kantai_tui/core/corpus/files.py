"""Reading corpus files: which files a path stands for, and their text, chunk by chunk or document by document.

Shared by the statistics scan, the tokenizer trainer and the token cache, so all give the same
clear errors: a missing path, a folder with no corpus files, a binary file (a NUL byte), or bytes
that are not UTF-8, named with the file and the byte offset. ``errors='replace'`` replaces bad
bytes with U+FFFD instead and counts them. What a file holds (text, JSON lines, parquet, compressed
or not) is ``formats.py``'s to say.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterator
from pathlib import Path

from kantai_tui.core.corpus.formats import (
    CHUNK_BYTES,
    DEFAULT_TEXT_FIELD,
    FORMAT_SUFFIXES,
    TEXT,
    Source,
    format_by_name,
    iter_documents,
    iter_raw,
    replaced_count,
    reset_replaced,
    sniff,
)
from kantai_tui.core.errors import CorpusError, NotUtf8Error

__all__ = ["CHUNK_BYTES", "replaced_count", "reset_replaced"]

ERROR_MODES = ("strict", "replace")


def find_corpus_files(path: str | Path) -> list[Path]:
    """The corpus files a path stands for, or a CorpusError saying why there are none."""
    root = Path(path).expanduser()
    if not root.exists():
        raise CorpusError(f"{root}: no such file or folder")
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise CorpusError(f"{root}: not a regular file or folder")
    files = sorted(_walk(root))
    if not files:
        raise CorpusError(f"{root}: folder holds no corpus files ({CORPUS_KINDS})")
    return files


# a folder's description, not its text: the dataset card of a Hugging Face dataset, sample_data's provenance
CARDS = ("readme.md",)
# a folder holding one of these is kantai's own (a tokenizer, a run): never part of a corpus around it
KANTAI_MARKERS = ("tokenizer.json", "run.json", "kantai.json")


def _walk(root: Path) -> Iterator[Path]:
    """Corpus files under ``root``, leaving out hidden names (``.git``, ``.cache``), a ``README.md`` (the
    folder's description), and the folders kantai writes (a tokenizer or a run kept beside the text would
    otherwise be read as JSON records)."""
    for folder, subfolders, names in os.walk(root):
        here = Path(folder)
        subfolders[:] = [
            d for d in subfolders if not d.startswith(".") and not any((here / d / m).exists() for m in KANTAI_MARKERS)
        ]
        for name in names:
            path = here / name
            if not name.startswith(".") and name.lower() not in CARDS and is_corpus_name(path) and path.is_file():
                yield path


CORPUS_KINDS = ", ".join(FORMAT_SUFFIXES) + ", any of them compressed"


def is_corpus_name(path: Path) -> bool:
    """A file a corpus folder contributes: ``.txt`` (any case, ``BOOK.TXT`` too), ``.md``, ``.jsonl``, ``.json``,
    ``.ndjson``, ``.parquet``, each also as ``.gz``/``.bz2``/``.xz``/``.zst``."""
    return format_by_name(path) is not None


def sources(files: list[Path]) -> list[Source]:
    """Each file's format and compression (read from its first bytes)."""
    return [sniff(path) for path in files]


def not_text(path: Path, head: bytes) -> CorpusError | None:
    """The error for a text file whose first bytes say it is an archive of files; None for anything else."""
    if head.startswith(b"PK\x03\x04"):
        return CorpusError(f"{path}: a zip archive, not text; extract its files and pass their folder")
    return None


def empty_corpus(root: Path) -> CorpusError:
    """The one message for a corpus of 0 bytes, whichever command finds it."""
    return CorpusError(f"{root}: is empty (0 bytes)" if root.is_file() else f"{root}: all its corpus files are empty")


def only_whitespace(root: Path) -> CorpusError:
    """The one message for a corpus with no line that holds text: ``stats`` (which counts 0 non-empty
    lines), ``tokenizer train`` and ``train`` (which check before they write anything) say the same."""
    return CorpusError(f"{root}: holds only whitespace (no line with text); there is nothing to count or train on")


def require_text(path: str | Path, errors: str = "strict", text_field: str = DEFAULT_TEXT_FIELD) -> list[Path]:
    """The corpus files, once some document holds text; else the ``empty_corpus``/``only_whitespace`` error.

    Commands that write (a tokenizer folder, a run folder) call this before they create anything, so
    a blank corpus leaves nothing behind. It reads only until the first character that is not
    whitespace: the first chunk or record, for any real corpus.
    """
    files = find_corpus_files(path)
    root = Path(path).expanduser()
    if all(f.stat().st_size == 0 for f in files):
        raise empty_corpus(root)
    for source in sources(files):
        if source.format == TEXT:
            chunks = (text for text, _ in iter_text_chunks(source.path, errors))
        else:
            chunks = (text for text, _ in iter_documents(source, errors, text_field))
        if any(not text.isspace() for text in chunks if text):
            return files
    raise only_whitespace(root)


def iter_text_chunks(
    path: Path, errors: str = "strict", start: int = 0, end: int | None = None
) -> Iterator[tuple[str, bytes]]:
    """Yield (decoded text, file bytes) chunk by chunk from ``[start, end)`` of a text file, decompressed
    if it is compressed; clear errors on binary or bad UTF-8 (at offsets of the decompressed text).

    ``start`` must be at a character boundary (the parallel scan cuts after a newline).
    """
    if errors not in ERROR_MODES:
        raise CorpusError(f"--errors must be one of {', '.join(ERROR_MODES)}, not {errors!r}")
    decoder = codecs.getincrementaldecoder("utf-8")("strict" if errors == "strict" else "kantai-replace")
    source = sniff(path) if start == 0 else Source(path, TEXT)
    where = " of the decompressed text" if source.compression else ""
    offset = start
    for content, raw in iter_raw(source, start, end):
        found = not_text(path, content) if offset == 0 else None
        if found is not None:
            raise found
        nul = content.find(b"\0")
        if nul >= 0:
            raise CorpusError(
                f"{path}: looks like a binary file (NUL byte at byte offset {offset + nul}{where}), not text"
            )
        yield _decode(decoder, content, path, offset), raw
        offset += len(content)
    yield _decode(decoder, b"", path, offset, final=True), b""


def _decode(decoder: codecs.IncrementalDecoder, raw: bytes, path: Path, offset: int, final: bool = False) -> str:
    """Decode one chunk; a strict failure names the absolute byte offset of the bad byte."""
    pending = len(decoder.getstate()[0])
    try:
        return decoder.decode(raw, final)
    except UnicodeDecodeError as err:
        bad = err.object[err.start : err.start + 1].hex()
        raise NotUtf8Error(str(path), offset - pending + err.start, f"byte 0x{bad}: {err.reason}") from None
