"""Corpus statistics, streamed in bounded memory.

A corpus is one UTF-8 text file or a folder of ``.txt`` files (searched
recursively, read in sorted order). Files are read in 1 MiB chunks; a line is
kept whole only while it is shorter than ``LONG_LINE`` characters, so a 50 MB
file that is a single line is scanned with a few MiB of memory. What does
grow is the set of distinct words and distinct line hashes, which is bounded by
the vocabulary and the number of distinct lines, never by line length.

Rules follow the KantaiBERT tutorial and the Unix tools a user checks against:
lines are split on ``\\n`` (``wc -l``), a line is non-empty when it holds
something other than whitespace (``LineByLineTextDataset``'s rule, and
``grep -c '[^[:space:]]'``), words are whitespace-separated (``wc -w``).
"""

from __future__ import annotations

import codecs
import hashlib
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kantai_tui.core.errors import CorpusError, NotUtf8Error

CHUNK_BYTES = 1 << 20
LONG_LINE = 1 << 20
MAX_DUPLICATE_EXAMPLES = 10_000
HISTOGRAM_BINS = 12
ERROR_MODES = ("strict", "replace")

_WORD_RE = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_replaced = threading.local()

ProgressFn = Callable[[int, int], None]
"""Called with (bytes done, bytes total) as a scan goes on."""


def _count_and_replace(err: UnicodeError) -> tuple[str, int]:
    """Codec error handler: replace like ``errors='replace'`` and count the bytes."""
    assert isinstance(err, UnicodeDecodeError)
    _replaced.count = getattr(_replaced, "count", 0) + (err.end - err.start)
    return "\ufffd", err.end


codecs.register_error("kantai-replace", _count_and_replace)


@dataclass(frozen=True)
class HistogramBin:
    """Lines whose length falls in ``[lo, hi]``."""

    lo: int
    hi: int
    count: int


@dataclass(frozen=True)
class Distribution:
    """Summary of a distribution of non-negative integers (line lengths, token counts)."""

    count: int
    min: int
    median: int
    p95: int
    max: int
    mean: float
    histogram: tuple[HistogramBin, ...]

    @classmethod
    def from_counter(cls, values: Counter[int], bins: int = HISTOGRAM_BINS) -> Distribution:
        """Exact quantiles from a value -> occurrences table (small: one entry per distinct value)."""
        total = sum(values.values())
        if total == 0:
            return cls(0, 0, 0, 0, 0, 0.0, ())
        keys = sorted(values)
        mean = sum(k * n for k, n in values.items()) / total
        return cls(
            count=total,
            min=keys[0],
            median=_quantile(values, keys, total, 0.5),
            p95=_quantile(values, keys, total, 0.95),
            max=keys[-1],
            mean=round(mean, 2),
            histogram=_histogram(values, keys[0], keys[-1], bins),
        )


def _quantile(values: Counter[int], keys: list[int], total: int, q: float) -> int:
    """The smallest value with at least ``q`` of the mass at or below it (nearest rank)."""
    rank = max(1, -(-int(q * total * 1000) // 1000))
    seen = 0
    for key in keys:
        seen += values[key]
        if seen >= rank:
            return key
    return keys[-1]


def _histogram(values: Counter[int], lo: int, hi: int, bins: int) -> tuple[HistogramBin, ...]:
    """Equal-width integer bins from ``lo`` to ``hi`` inclusive."""
    width = max(1, -(-(hi - lo + 1) // bins))
    counts = [0] * (-(-(hi - lo + 1) // width))
    for value, n in values.items():
        counts[(value - lo) // width] += n
    return tuple(
        HistogramBin(lo + i * width, min(hi, lo + (i + 1) * width - 1), n) for i, n in enumerate(counts)
    )


@dataclass(frozen=True)
class FileSummary:
    """Per-file counts, in the shape of the provenance table in sample_data/README.md."""

    path: str
    bytes: int
    lines: int
    nonempty_lines: int
    words: int
    sha256: str


@dataclass(frozen=True)
class CorpusStats:
    """Everything ``kantai stats`` reports about a corpus (token figures come separately)."""

    path: str
    files: tuple[FileSummary, ...]
    bytes: int
    lines: int
    nonempty_lines: int
    words: int
    characters: int
    unique_words: int
    line_length: Distribution
    top_words: tuple[tuple[str, int], ...]
    duplicate_lines: int
    top_duplicates: tuple[tuple[str, int], ...]
    fingerprint: str
    replaced_bytes: int = 0

    def to_dict(self) -> dict:
        """Plain JSON-ready form (tuples become lists)."""
        return asdict(self)


@dataclass
class _Tally:
    """Mutable counters of one scan; frozen into CorpusStats at the end."""

    top_n: int
    lines: int = 0
    nonempty: int = 0
    words: int = 0
    characters: int = 0
    lengths: Counter[int] = field(default_factory=Counter)
    raw_words: Counter[str] = field(default_factory=Counter)
    line_hashes: Counter[int] = field(default_factory=Counter)
    examples: dict[int, str] = field(default_factory=dict)

    def feed_lines(self, lines: list[str], text: str) -> None:
        """Count complete lines (without their ``\\n``); ``text`` is the same lines, joined."""
        self.lines += len(lines)
        nonempty = [line.strip() for line in lines if line and not line.isspace()]
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
        batch = dict(zip(hashes, lines))
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

    def top_words(self) -> tuple[Counter[str], tuple[tuple[str, int], ...]]:
        """Fold whitespace tokens into words (letters, inner apostrophes), lower-cased."""
        words: Counter[str] = Counter()
        for token, n in self.raw_words.items():
            for word in _WORD_RE.findall(token.lower()):
                words[word] += n
        return words, tuple(words.most_common(self.top_n))

    def duplicates(self, top_n: int) -> tuple[int, tuple[tuple[str, int], ...]]:
        """Number of non-empty lines equal to an earlier one, and the most repeated."""
        extra = sum(n - 1 for n in self.line_hashes.values() if n > 1)
        ranked = sorted(self.examples, key=lambda k: -self.line_hashes[k])[:top_n]
        return extra, tuple((self.examples[k], self.line_hashes[k]) for k in ranked)


class _LongLine:
    """A line too long to hold: its length, blankness, hash and words, fed in pieces."""

    def __init__(self, tally: _Tally) -> None:
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


def find_corpus_files(path: str | Path) -> list[Path]:
    """The ``.txt`` files a corpus path stands for, or a CorpusError saying why there are none."""
    root = Path(path).expanduser()
    if not root.exists():
        raise CorpusError(f"{root}: no such file or folder")
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise CorpusError(f"{root}: not a regular file or folder")
    files = sorted(p for p in root.rglob("*.txt") if p.is_file())
    if not files:
        raise CorpusError(f"{root}: folder holds no .txt files")
    return files


def iter_text_chunks(path: Path, errors: str = "strict") -> Iterator[tuple[str, bytes]]:
    """Yield (decoded text, raw bytes) chunk by chunk; raise a clear error on binary or bad UTF-8."""
    if errors not in ERROR_MODES:
        raise CorpusError(f"--errors must be one of {', '.join(ERROR_MODES)}, not {errors!r}")
    decoder = codecs.getincrementaldecoder("utf-8")("strict" if errors == "strict" else "kantai-replace")
    offset = 0
    try:
        handle = path.open("rb")
    except OSError as err:
        raise CorpusError(f"{path}: cannot read ({err.strerror})") from err
    with handle:
        while raw := handle.read(CHUNK_BYTES):
            nul = raw.find(b"\0")
            if nul >= 0:
                raise CorpusError(f"{path}: looks like a binary file (NUL byte at byte offset {offset + nul}), not text")
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


def _scan_file(path: Path, tally: _Tally, errors: str, on_bytes: Callable[[int], None]) -> FileSummary:
    """Stream one file into ``tally``; return its own summary."""
    before = (tally.lines, tally.nonempty, tally.words)
    digest = hashlib.sha256()
    size = 0
    pending = ""
    long: _LongLine | None = None
    for text, raw in iter_text_chunks(path, errors):
        digest.update(raw)
        size += len(raw)
        tally.characters += len(text)
        on_bytes(len(raw))
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
    return FileSummary(
        path=str(path),
        bytes=size,
        lines=tally.lines - before[0],
        nonempty_lines=tally.nonempty - before[1],
        words=tally.words - before[2],
        sha256=digest.hexdigest(),
    )


def fingerprint(hashes: list[tuple[Path, str]], root: Path) -> str:
    """sha256 of one file's bytes, or of ``sha256sum``-style lines for a folder.

    A single file's fingerprint is what ``sha256sum FILE`` prints, so users can check it;
    a folder's changes when any file's bytes or relative name change.
    """
    if len(hashes) == 1 and root.is_file():
        return hashes[0][1]
    listing = "".join(f"{digest}  {path.relative_to(root).as_posix()}\n" for path, digest in hashes)
    return hashlib.sha256(listing.encode()).hexdigest()


def fingerprint_files(files: list[Path], root: Path) -> str:
    """The corpus fingerprint computed straight from the files (no statistics)."""
    hashes = []
    for path in files:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(CHUNK_BYTES):
                digest.update(block)
        hashes.append((path, digest.hexdigest()))
    return fingerprint(hashes, root.expanduser())


def corpus_stats(
    path: str | Path,
    *,
    top_n: int = 20,
    errors: str = "strict",
    progress: ProgressFn | None = None,
) -> CorpusStats:
    """Scan a corpus file or folder and return its statistics.

    ``errors='replace'`` turns undecodable bytes into U+FFFD and counts them
    instead of stopping at the first one.
    """
    files = find_corpus_files(path)
    root = Path(path).expanduser()
    total = sum(f.stat().st_size for f in files)
    tally = _Tally(top_n=top_n)
    done = 0

    def on_bytes(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    _replaced.count = 0
    summaries = tuple(_scan_file(f, tally, errors, on_bytes) for f in files)
    size = sum(s.bytes for s in summaries)
    if size == 0:
        raise CorpusError(f"{root}: is empty (0 bytes)" if root.is_file() else f"{root}: all .txt files are empty")
    words, top_words = tally.top_words()
    duplicates, top_duplicates = tally.duplicates(top_n)
    return CorpusStats(
        path=str(root),
        files=summaries,
        bytes=size,
        lines=tally.lines,
        nonempty_lines=tally.nonempty,
        words=tally.words,
        characters=tally.characters,
        unique_words=len(words),
        line_length=Distribution.from_counter(tally.lengths),
        top_words=top_words,
        duplicate_lines=duplicates,
        top_duplicates=top_duplicates,
        fingerprint=fingerprint([(Path(s.path), s.sha256) for s in summaries], root),
        replaced_bytes=_replaced.count,
    )
