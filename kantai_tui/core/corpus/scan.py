"""The statistics scan itself: counters fed line by line, for one byte range of one file.

A range is a whole file, or (for big corpora) a slice of one that starts and
ends just after a newline, so ranges can be scanned in separate processes and
their tallies added up. Lines are kept whole only while shorter than
``LONG_LINE`` characters; longer ones are streamed through ``_LongLine``.

Line duplicates are counted by ``hash(line)``. Python salts str hashes per
process, so every range of one scan is hashed by processes that share a salt:
the calling process alone, or workers forked from one forkserver (see corpus.py).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from kantai_tui.core.corpus.files import CHUNK_BYTES, iter_text_chunks, replaced_count, reset_replaced
from kantai_tui.core.corpus.formats import Source, iter_documents
from kantai_tui.core.corpus.lines import LONG_LINE

MAX_DUPLICATE_EXAMPLES = 10_000

_WORD_RE = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")


@dataclass
class Tally:
    """Mutable counters of one scan or range; ranges add up with ``merge``."""

    lines: int = 0
    nonempty: int = 0
    documents: int = 0
    words: int = 0
    characters: int = 0
    lengths: Counter[int] = field(default_factory=Counter)
    raw_words: Counter[str] = field(default_factory=Counter)
    line_hashes: Counter[int] = field(default_factory=Counter)
    examples: dict[int, str] = field(default_factory=dict)

    def feed_lines(self, lines: list[str], text: str) -> None:
        """Count complete lines (without their ``\\n``); ``text`` is the same lines, joined."""
        self.lines += len(lines)
        nonempty = list(filter(None, map(str.strip, lines)))
        self.nonempty += len(nonempty)
        self.lengths.update(map(len, nonempty))
        self._see_lines(nonempty)
        words = text.split()
        self.words += len(words)
        self.raw_words.update(words)

    def _see_lines(self, lines: list[str]) -> None:
        """Count line hashes in C; keep the text of lines once they turn out to repeat."""
        hashes = list(map(hash, lines))
        self.line_hashes.update(hashes)
        if len(self.examples) >= MAX_DUPLICATE_EXAMPLES:
            return
        counts, examples = self.line_hashes, self.examples
        batch = dict(zip(hashes, lines, strict=True))
        for key in [k for k in batch if counts[k] > 1 and k not in examples]:
            examples[key] = batch[key][:200]

    def feed_long_line(self, line: _LongLine) -> None:
        """Count a line that was streamed in pieces."""
        self.lines += 1
        if not line.nonblank:
            return
        self.nonempty += 1
        self.lengths[line.length] += 1
        self.line_hashes[hash(line.hasher.digest())] = 1
        self.words += line.words

    def merge(self, other: Tally) -> None:
        """Add another range's counts (example texts are kept up to the cap)."""
        self.lines += other.lines
        self.nonempty += other.nonempty
        self.documents += other.documents
        self.words += other.words
        self.characters += other.characters
        self.lengths.update(other.lengths)
        self.raw_words.update(other.raw_words)
        # Most lines occur once: counting the elements runs in C, a dict update would loop in Python.
        self.line_hashes.update(other.line_hashes.elements())
        for key, text in other.examples.items():
            if len(self.examples) >= MAX_DUPLICATE_EXAMPLES:
                break
            self.examples.setdefault(key, text)

    def top_words(self, top_n: int) -> tuple[Counter[str], tuple[tuple[str, int], ...]]:
        """Fold whitespace tokens into words (letters, inner apostrophes), lower-cased."""
        words: Counter[str] = Counter()
        for token, n in self.raw_words.items():
            for word in _WORD_RE.findall(token.lower()):
                words[word] += n
        return words, tuple(words.most_common(top_n))

    def duplicates(self, top_n: int) -> tuple[int, tuple[tuple[str, int], ...]]:
        """Number of non-empty lines equal to an earlier one, and the most repeated.

        A line's text is kept once it repeats within one range, so a line whose
        copies all fall in different ranges of a parallel scan is counted but
        not listed.
        """
        extra = sum(n - 1 for n in self.line_hashes.values() if n > 1)
        ranked = sorted((k for k in self.examples if self.line_hashes[k] > 1), key=lambda k: -self.line_hashes[k])[
            :top_n
        ]
        return extra, tuple((self.examples[k], self.line_hashes[k]) for k in ranked)


class _LongLine:
    """A line too long to hold: its length, blankness, hash and words, fed in pieces."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.length = 0
        self.nonblank = False
        self.words = 0
        self.tail = ""
        self.hasher = hashlib.blake2b(digest_size=16)

    def feed(self, piece: str) -> None:
        """Add the next piece of the line; a word cut at the piece's end waits for the rest."""
        self.length += len(piece)
        self.hasher.update(piece.encode("utf-8", "surrogatepass"))
        self.nonblank = self.nonblank or not (piece == "" or piece.isspace())
        text = self.tail + piece
        cut = len(text)
        while cut > 0 and not text[cut - 1].isspace():
            cut -= 1
        self.tail = text[cut:] if cut else text
        self._count_words(text[:cut] if cut else "")
        if len(self.tail) > LONG_LINE:  # one "word" of a megabyte: count it as it stands
            self._count_words(self.tail)
            self.tail = ""

    def finish(self) -> _LongLine:
        """Count the last word and hand the line over."""
        self._count_words(self.tail)
        self.tail = ""
        return self

    def _count_words(self, text: str) -> None:
        words = text.split()
        self.words += len(words)
        self.tally.raw_words.update(w for w in words if len(w) <= 100)


@dataclass
class RangeResult:
    """What scanning ``[start, end)`` of one file found."""

    file_index: int
    start: int
    end: int
    sha256: str
    replaced: int
    tally: Tally


def scan_range(file_index: int, path: Path, start: int, end: int | None, errors: str) -> RangeResult:
    """Stream one byte range into a fresh tally (runs in the caller or in a worker process)."""
    tally = Tally()
    digest = hashlib.sha256()
    size = 0
    pending = ""
    long: _LongLine | None = None
    reset_replaced()
    for text, raw in iter_text_chunks(path, errors, start, end):
        digest.update(raw)
        size += len(raw)
        tally.characters += len(text)
        if long is not None:
            newline = text.find("\n")
            if newline < 0:
                long.feed(text)
                continue
            long.feed(text[:newline])
            tally.feed_long_line(long.finish())
            long, text = None, text[newline + 1 :]
        text = pending + text
        cut = text.rfind("\n") + 1
        lines = text[:cut].split("\n")
        lines.pop()
        tally.feed_lines(lines, text[:cut])
        pending = text[cut:]
        if len(pending) > LONG_LINE:
            long = _LongLine(tally)
            long.feed(pending)
            pending = ""
    if long is not None:
        tally.feed_long_line(long.finish())
    elif pending:
        tally.feed_lines([pending], pending)
    tally.documents = tally.nonempty  # in a text file each non-empty line is a document (an example)
    return RangeResult(file_index, start, start + size, digest.hexdigest(), replaced_count(), tally)


def scan_documents(file_index: int, source: Source, errors: str, text_field: str) -> RangeResult:
    """Count one JSON-lines or parquet file: its documents, and the lines and words of their text."""
    tally = Tally()
    size = 0
    reset_replaced()
    for text, read in iter_documents(source, errors, text_field):
        size += read
        tally.characters += len(text)
        tally.documents += bool(text.strip())
        lines = text.split("\n")
        if len(lines) > 1 and lines[-1] == "":
            lines.pop()  # a document that ends with a newline has no empty line after it
        short = [line for line in lines if len(line) <= LONG_LINE]
        tally.feed_lines(short, "\n".join(short))
        for line in (line for line in lines if len(line) > LONG_LINE):
            long = _LongLine(tally)
            for at in range(0, len(line), LONG_LINE):
                long.feed(line[at : at + LONG_LINE])
            tally.feed_long_line(long.finish())
    size = max(size, source.path.stat().st_size)  # blank lines after the last record are read but yield nothing
    return RangeResult(file_index, 0, size, file_sha256(source.path), replaced_count(), tally)


def file_sha256(path: Path) -> str:
    """What ``sha256sum FILE`` prints (fast: about 1 GB/s)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def plan_ranges(path: Path, size: int, range_bytes: int, window: int = LONG_LINE) -> list[tuple[int, int]]:
    """Cut a file into ranges of about ``range_bytes`` that end just after a newline.

    Where no newline is found within ``window`` bytes of a cut (a very long line),
    the rest of the file stays one range, since a line must not be split.
    """
    ranges: list[tuple[int, int]] = []
    start = 0
    with path.open("rb") as handle:
        while start < size:
            cut = start + range_bytes
            if cut >= size:
                ranges.append((start, size))
                break
            handle.seek(cut)
            newline = handle.read(window).find(b"\n")
            end = size if newline < 0 else cut + newline + 1
            ranges.append((start, end))
            start = end
    return ranges
