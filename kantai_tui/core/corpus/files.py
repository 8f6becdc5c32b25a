"""Reading corpus files: which files a path stands for, and their text, chunk by chunk.

Shared by the statistics scan and the tokenizer trainer, so both give the same
clear errors: a missing path, a folder with no ``.txt``, a binary file (a NUL
byte), or bytes that are not UTF-8, named with the file and the byte offset.
``errors='replace'`` replaces bad bytes with U+FFFD instead and counts them.
"""

from __future__ import annotations

import codecs
import shlex
import threading
from collections.abc import Iterator
from pathlib import Path

from kantai_tui.core.errors import CorpusError, NotUtf8Error

CHUNK_BYTES = 1 << 20
ERROR_MODES = ("strict", "replace")

_replaced = threading.local()


def _count_and_replace(err: UnicodeError) -> tuple[str, int]:
    """Codec error handler: replace like ``errors='replace'`` and count the bytes (per thread)."""
    assert isinstance(err, UnicodeDecodeError)
    _replaced.count = getattr(_replaced, "count", 0) + (err.end - err.start)
    return "\ufffd", err.end


codecs.register_error("kantai-replace", _count_and_replace)


def reset_replaced() -> None:
    """Start counting replaced bytes from zero in this thread."""
    _replaced.count = 0


def replaced_count() -> int:
    """Bytes replaced in this thread since ``reset_replaced``."""
    return getattr(_replaced, "count", 0)


def find_corpus_files(path: str | Path) -> list[Path]:
    """The ``.txt`` files a corpus path stands for, or a CorpusError saying why there are none."""
    root = Path(path).expanduser()
    if not root.exists():
        raise CorpusError(f"{root}: no such file or folder")
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise CorpusError(f"{root}: not a regular file or folder")
    files = sorted(p for p in root.rglob("*") if is_text_name(p) and p.is_file())
    if not files:
        raise CorpusError(f"{root}: folder holds no .txt files")
    return files


def is_text_name(path: Path) -> bool:
    """A file a corpus folder contributes: ``.txt`` in any case (``BOOK.TXT`` too)."""
    return path.suffix.lower() == ".txt"


# what a file that is not text starts with: its format, and how to make text of it (None: no one command)
MAGIC: tuple[tuple[bytes, str, str | None], ...] = (
    (b"\x1f\x8b", "gzip-compressed", "gzip -dc"),
    (b"BZh", "bzip2-compressed", "bzip2 -dc"),
    (b"\xfd7zXZ\x00", "xz-compressed", "xz -dc"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed", "zstd -dc"),
    (b"PK\x03\x04", "zip archive", None),
    (b"PAR1", "parquet file", None),
)
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zstd")


def _text_name_for(path: Path) -> Path:
    """Where a decompressed copy of ``path`` can go: its name without the compression suffix, ending in
    .txt, and not a file that exists (the hint must not overwrite one)."""
    out = path.with_suffix("") if path.suffix.lower() in COMPRESSED_SUFFIXES else path
    stem = out.name[: -len(".txt")] if is_text_name(out) else out.name
    candidates = (out.with_name(f"{stem}{'' if n == 1 else f'-{n}'}.txt") for n in range(1, 10_000))
    return next(c for c in candidates if not c.exists())


def not_text(path: Path, head: bytes) -> CorpusError | None:
    """The error for a file whose first bytes say it is compressed or columnar, naming the format and, where
    one command makes text of it, that command; None for anything else (text, or another binary)."""
    for magic, kind, command in MAGIC:
        if head.startswith(magic) and not (kind == "bzip2-compressed" and not head[3:4].isdigit()):
            if command is None:
                return CorpusError(
                    f"{path}: a {kind}, not text; kantai reads plain UTF-8 text files: extract the text first"
                )
            line = shlex.join([*command.split(), str(path)]) + " > " + shlex.quote(str(_text_name_for(path)))
            return CorpusError(
                f"{path}: {kind}, not text; kantai reads plain UTF-8 text files: decompress it first: {line}"
            )
    return None


def empty_corpus(root: Path) -> CorpusError:
    """The one message for a corpus of 0 bytes, whichever command finds it."""
    return CorpusError(f"{root}: is empty (0 bytes)" if root.is_file() else f"{root}: all .txt files are empty")


def only_whitespace(root: Path) -> CorpusError:
    """The one message for a corpus with no line that holds text: ``stats`` (which counts 0 non-empty
    lines), ``tokenizer train`` and ``train`` (which check before they write anything) say the same."""
    return CorpusError(f"{root}: holds only whitespace (no line with text); there is nothing to count or train on")


def require_text(path: str | Path, errors: str = "strict") -> list[Path]:
    """The corpus files, once some line holds text; else the ``empty_corpus``/``only_whitespace`` error.

    Commands that write (a tokenizer folder, a run folder) call this before they create anything, so
    a blank corpus leaves nothing behind. It reads only until the first character that is not
    whitespace: the first chunk, for any real corpus.
    """
    files = find_corpus_files(path)
    root = Path(path).expanduser()
    if all(f.stat().st_size == 0 for f in files):
        raise empty_corpus(root)
    for file in files:
        if any(not text.isspace() for text, _ in iter_text_chunks(file, errors) if text):
            return files
    raise only_whitespace(root)


def iter_text_chunks(
    path: Path, errors: str = "strict", start: int = 0, end: int | None = None
) -> Iterator[tuple[str, bytes]]:
    """Yield (decoded text, raw bytes) chunk by chunk from ``[start, end)``; clear errors on binary or bad UTF-8.

    ``start`` must be at a character boundary (the parallel scan cuts after a newline).
    """
    if errors not in ERROR_MODES:
        raise CorpusError(f"--errors must be one of {', '.join(ERROR_MODES)}, not {errors!r}")
    decoder = codecs.getincrementaldecoder("utf-8")("strict" if errors == "strict" else "kantai-replace")
    offset = start
    try:
        handle = path.open("rb")
    except OSError as err:
        raise CorpusError(f"{path}: cannot read ({err.strerror})") from err
    with handle:
        handle.seek(start)
        while raw := handle.read(CHUNK_BYTES if end is None else min(CHUNK_BYTES, end - offset)):
            found = not_text(path, raw) if offset == 0 else None
            if found is not None:
                raise found
            nul = raw.find(b"\0")
            if nul >= 0:
                raise CorpusError(
                    f"{path}: looks like a binary file (NUL byte at byte offset {offset + nul}), not text"
                )
            yield _decode(decoder, raw, path, offset), raw
            offset += len(raw)
        yield _decode(decoder, b"", path, offset, final=True), b""


def _decode(decoder: codecs.IncrementalDecoder, raw: bytes, path: Path, offset: int, final: bool = False) -> str:
    """Decode one chunk; a strict failure names the absolute byte offset of the bad byte."""
    pending = len(decoder.getstate()[0])
    try:
        return decoder.decode(raw, final)
    except UnicodeDecodeError as err:
        bad = err.object[err.start : err.start + 1].hex()
        raise NotUtf8Error(str(path), offset - pending + err.start, f"byte 0x{bad}: {err.reason}") from None
