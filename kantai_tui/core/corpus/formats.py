"""What a corpus file holds, and its text as documents: plain text, JSON lines, parquet, compressed or not.

A corpus is made of *documents*, and training keeps their boundaries (``</s>`` between them, attention
inside each). What a document is depends on the file:

- **text** (``.txt`` in any case, ``.md``, or any file named on its own): every non-empty line is one,
  the tutorial's ``LineByLineTextDataset`` rule, so the bundled books train as before;
- **JSON lines** (``.jsonl``, ``.ndjson``, ``.json``): one record per line, its text field
  (``--text-field``, default ``text``) is one document and may hold newlines; a ``.json`` file that
  is one JSON array of such records is read too;
- **parquet** (``.parquet``, or a file that starts with ``PAR1``): each row's text column (pyarrow,
  an optional install).

Compression is told by content, not name: gzip, bzip2 and xz (the standard library) and zstd
(``zstandard``), decompressed as the file is read, concatenated members included; the inner format
comes from the name without the compression suffix (``books.jsonl.gz`` is JSON lines). A cut-short
or damaged stream, bad JSON, a record without the field and a parquet file without the column are
each one line naming the file and the line, record or byte offset.
"""

from __future__ import annotations

import bz2
import codecs
import json
import lzma
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kantai_tui.core.errors import CorpusError

CHUNK_BYTES = 1 << 20
DEFAULT_TEXT_FIELD = "text"
TEXT, JSONL, PARQUET = "text", "jsonl", "parquet"
FORMAT_SUFFIXES = {".txt": TEXT, ".md": TEXT, ".jsonl": JSONL, ".ndjson": JSONL, ".json": JSONL, ".parquet": PARQUET}
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zstd")
# first bytes of a compressed stream, and its name (a bzip2 header also has a block-size digit after "BZh")
COMPRESSION_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
PARQUET_MAGIC = b"PAR1"
RAW_CHUNK = 256 << 10  # compressed bytes read at a time (a chunk of text expands to a few MiB at most)
PARQUET_BATCH = 4096  # rows per batch read from a parquet file


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


@dataclass(frozen=True)
class Source:
    """One corpus file: its format and its compression (None: stored as it is)."""

    path: Path
    format: str
    compression: str | None = None

    @property
    def splittable(self) -> bool:
        """Whether byte ranges of the file can be read apart (plain uncompressed text only)."""
        return self.format == TEXT and self.compression is None

    @property
    def describe(self) -> str:
        """'JSON lines · gzip', 'text', 'parquet' ... for the statistics."""
        name = {TEXT: "text", JSONL: "JSON lines", PARQUET: "parquet"}[self.format]
        return f"{name} · {self.compression}" if self.compression else name


def inner_name(path: Path) -> Path:
    """The name without its compression suffixes: ``a.jsonl.gz`` -> ``a.jsonl``."""
    while path.suffix.lower() in COMPRESSED_SUFFIXES:
        path = path.with_suffix("")
    return path


def format_by_name(path: Path) -> str | None:
    """The format a corpus folder reads a file as, from its name; None: the folder leaves it out."""
    return FORMAT_SUFFIXES.get(inner_name(path).suffix.lower())


def compression_of(head: bytes) -> str | None:
    """The compression a file's first bytes show, or None."""
    for magic, kind in COMPRESSION_MAGIC:
        if head.startswith(magic) and not (kind == "bzip2" and not head[3:4].isdigit()):
            return kind
    return None


def sniff(path: Path) -> Source:
    """The file's format and compression: compression and parquet by content, the rest by name
    (a file named on its own with no known suffix is text)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as err:
        raise CorpusError(f"{path}: cannot read ({err.strerror})") from err
    if head.startswith(PARQUET_MAGIC):
        return Source(path, PARQUET)
    return Source(path, format_by_name(path) or TEXT, compression_of(head))


def _decompressor(kind: str) -> Any:
    if kind == "gzip":
        return zlib.decompressobj(31)
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor()
    try:
        import zstandard
    except ImportError:  # a dependency; only a broken install lacks it
        raise CorpusError("reading zstd needs the zstandard package: pip install zstandard") from None
    return zstandard.ZstdDecompressor().decompressobj()


def _stream_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [zlib.error, lzma.LZMAError, OSError, EOFError]
    try:
        import zstandard

        errors.append(zstandard.ZstdError)
    except ImportError:
        pass  # without zstandard no zstd stream is ever opened (``_decompressor`` says so)
    return tuple(errors)


def iter_raw(source: Source, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, bytes]]:
    """(content bytes, file bytes read for them) chunk by chunk: the file's bytes themselves, or their
    decompression. ``start``/``end`` cut a range of a plain file (a compressed one is read whole)."""
    try:
        handle = source.path.open("rb")
    except OSError as err:
        raise CorpusError(f"{source.path}: cannot read ({err.strerror})") from err
    with handle:
        if source.compression is None:
            handle.seek(start)
            offset = start
            while raw := handle.read(CHUNK_BYTES if end is None else min(CHUNK_BYTES, end - offset)):
                offset += len(raw)
                yield raw, raw
            return
        yield from _decompress(source, handle)


def _decompress(source: Source, handle: Any) -> Iterator[tuple[bytes, bytes]]:
    """Decompress member after member (``cat a.gz b.gz`` is one gzip stream); a stream that stops before
    its end marker, or bytes that do not decompress, are one CorpusError with the offsets."""
    kind = source.compression
    assert kind is not None
    decoder, fed, read, made = _decompressor(kind), False, 0, 0
    try:
        while raw := handle.read(RAW_CHUNK):
            read += len(raw)
            data = raw
            while data:
                out = decoder.decompress(data)
                fed, made = True, made + len(out)
                yield out, raw
                raw = b""
                if not decoder.eof:
                    break
                data = decoder.unused_data
                decoder, fed = _decompressor(kind), False
                if not data.strip(b"\0"):  # zero padding after the last member, as tape tools write
                    data = b""
    except _stream_errors() as err:
        raise CorpusError(
            f"{source.path}: not a valid {kind} stream near byte {read:,} of the file ({err}); the file is damaged"
        ) from None
    if fed and not decoder.eof:
        raise CorpusError(
            f"{source.path}: the {kind} stream is cut short: it ends at byte {read:,} of the file, after "
            f"{made:,} bytes of content, before its end marker; the file is incomplete (copy it again)"
        )


def iter_documents(source: Source, errors: str, text_field: str) -> Iterator[tuple[str, int]]:
    """(document text, file bytes read since the document before) of a JSON-lines or parquet file."""
    if source.format == PARQUET:
        yield from _parquet_documents(source, text_field)
    else:
        yield from _json_documents(source, errors, text_field)


def _json_documents(source: Source, errors: str, text_field: str) -> Iterator[tuple[str, int]]:
    """One document per JSON line (blank lines skipped), or per item of a file that is one JSON array."""
    pending, number, read = b"", 0, 0
    first = inner_name(source.path).suffix.lower() == ".json"  # a .json file may be one array of records
    chunks = iter_raw(source)
    for out, raw in chunks:
        read += len(raw)
        if first and out.lstrip():
            first = False
            if out.lstrip().startswith(b"["):
                yield from _json_array(source, errors, text_field, out, chunks, read)
                return
        lines = (pending + out).split(b"\n")
        pending = lines.pop()
        for line in lines:
            number += 1
            if line.strip():
                yield _record_text(source, number, _decode_line(source, number, line, errors), text_field), read
                read = 0
    if pending.strip():
        yield _record_text(source, number + 1, _decode_line(source, number + 1, pending, errors), text_field), read


def _decode_line(source: Source, number: int, line: bytes, errors: str) -> str:
    try:
        return line.decode("utf-8", "strict" if errors == "strict" else "kantai-replace")
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"{source.path}: line {number}: not valid UTF-8 at byte {err.start} of the line "
            f"(byte 0x{line[err.start : err.start + 1].hex()}); convert the file to UTF-8, or pass --errors replace"
        ) from None


def _record_text(source: Source, where: int | str, text: str, text_field: str) -> str:
    """The text field of one JSON record; a clear error for bad JSON, a non-object, a missing or non-text field."""
    place = f"line {where}" if isinstance(where, int) else where
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise CorpusError(f"{source.path}: {place}: not valid JSON ({err.msg} at column {err.colno})") from None
    return _field(source, place, record, text_field)


def _field(source: Source, place: str, record: object, text_field: str) -> str:
    if not isinstance(record, dict):
        raise CorpusError(
            f"{source.path}: {place}: a JSON {_json_kind(record)}, not an object with a {text_field!r} field"
        )
    if text_field not in record:
        keys = ", ".join(map(str, list(record)[:12])) or "no keys"
        hint = "; pass --text-field with one of them" if record else ""
        raise CorpusError(f"{source.path}: {place}: no {text_field!r} field (the record has: {keys}){hint}")
    value = record[text_field]
    if not isinstance(value, str):
        raise CorpusError(
            f"{source.path}: {place}: the {text_field!r} field is a JSON {_json_kind(value)}, not a string"
        )
    return value


def _json_kind(value: object) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _json_array(
    source: Source, errors: str, text_field: str, head: bytes, rest: Iterator[tuple[bytes, bytes]], read: int
) -> Iterator[tuple[str, int]]:
    """A ``.json`` file that is one array of records: read whole (JSON lines stream; an array cannot);
    ``read``: the file bytes read for ``head``."""
    parts = [head]
    for out, raw in rest:
        parts.append(out)
        read += len(raw)
    text = _decode_line(source, 1, b"".join(parts), errors)
    try:
        items = json.loads(text)
    except json.JSONDecodeError as err:
        raise CorpusError(
            f"{source.path}: line {err.lineno}: not valid JSON ({err.msg} at column {err.colno})"
        ) from None
    for index, item in enumerate(items, 1):
        yield _field(source, f"record {index:,}", item, text_field), read
        read = 0


def _parquet_documents(source: Source, text_field: str) -> Iterator[tuple[str, int]]:
    """Each row's text column, a batch of rows at a time; bytes done are the file's share by rows."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise CorpusError(
            f"{source.path}: a parquet file; reading parquet needs pyarrow: pip install pyarrow"
        ) from None
    try:
        table = pq.ParquetFile(source.path)
    except (pa.ArrowException, OSError) as err:
        raise CorpusError(f"{source.path}: not a readable parquet file ({err})") from None
    names = table.schema_arrow.names
    if text_field not in names:
        listing = ", ".join(names[:12]) or "no columns"
        raise CorpusError(
            f"{source.path}: no column {text_field!r} (the file has: {listing}); pass --text-field with one of them"
        )
    kind = table.schema_arrow.field(text_field).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise CorpusError(f"{source.path}: column {text_field!r} holds {kind}, not text")
    size, rows, done, row = source.path.stat().st_size, max(1, table.metadata.num_rows), 0, 0
    try:
        for batch in table.iter_batches(batch_size=PARQUET_BATCH, columns=[text_field]):
            for value in batch.column(0).to_pylist():
                row += 1
                if value is None:
                    raise CorpusError(f"{source.path}: row {row:,}: the {text_field!r} column is null, not text")
                share = size * row // rows
                yield value, share - done
                done = share
    except (pa.ArrowException, OSError) as err:
        raise CorpusError(f"{source.path}: cannot read row {row + 1:,} ({err}); the file is damaged") from None
