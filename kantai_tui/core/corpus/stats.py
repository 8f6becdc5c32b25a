"""Corpus statistics, streamed in bounded memory.

A corpus is one UTF-8 text file or a folder of ``.txt`` files (searched
recursively, read in sorted order). Files are read in 1 MiB chunks; a line is
kept whole only while it is shorter than ``LONG_LINE`` characters, so a 50 MB
file that is a single line is scanned with a few MiB of memory. What does
grow is the set of distinct words and distinct line hashes, which is bounded by
the vocabulary and the number of distinct lines, never by line length.

Corpora of 16 MiB and more are cut into newline-aligned ranges (about four per worker) at newlines and scanned
by one worker process per core (two cores here double the rate); smaller ones
are scanned in the calling thread, where starting processes would cost more
than it saves.

Rules follow the KantaiBERT tutorial and the Unix tools a user checks against:
lines are split on ``\\n`` (``wc -l``), a line is non-empty when it holds
something other than whitespace (``LineByLineTextDataset``'s rule, and
``grep -c '[^[:space:]]'``), words are whitespace-separated (``wc -w``).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from kantai_tui.core.corpus.files import (
    ERROR_MODES,
    empty_corpus,
    find_corpus_files,
    iter_text_chunks,
    only_whitespace,
    sources,
)
from kantai_tui.core.corpus.formats import DEFAULT_TEXT_FIELD, TEXT, Source
from kantai_tui.core.corpus.scan import RangeResult, Tally, file_sha256, plan_ranges, scan_documents, scan_range
from kantai_tui.core.errors import CorpusError

__all__ = [
    "ERROR_MODES",
    "CorpusStats",
    "Distribution",
    "FileSummary",
    "corpus_stats",
    "find_corpus_files",
    "fingerprint_files",
    "iter_text_chunks",
]

HISTOGRAM_BINS = 12
RANGE_BYTES = 4 << 20
PARALLEL_MIN_BYTES = 16 << 20

ProgressFn = Callable[[int, int], None]
"""Called with (bytes done, bytes total) as a scan goes on."""


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
    return tuple(HistogramBin(lo + i * width, min(hi, lo + (i + 1) * width - 1), n) for i, n in enumerate(counts))


@dataclass(frozen=True)
class FileSummary:
    """Per-file counts, in the shape of the provenance table in sample_data/README.md."""

    path: str
    bytes: int
    lines: int
    nonempty_lines: int
    words: int
    sha256: str
    documents: int = 0
    format: str = "text"


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
    documents: int = 0
    text_field: str = DEFAULT_TEXT_FIELD

    def to_dict(self) -> dict:
        """Plain JSON-ready form (tuples become lists)."""
        return asdict(self)


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
    hashes = [(path, file_sha256(path)) for path in files]
    return fingerprint(hashes, root.expanduser())


def default_workers(total_bytes: int) -> int:
    """One process per usable core for big corpora; the calling thread alone for small ones."""
    if total_bytes < PARALLEL_MIN_BYTES:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores)


def corpus_stats(
    path: str | Path,
    *,
    top_n: int = 20,
    errors: str = "strict",
    progress: ProgressFn | None = None,
    workers: int | None = None,
    text_field: str = DEFAULT_TEXT_FIELD,
) -> CorpusStats:
    """Scan a corpus file or folder and return its statistics.

    ``errors='replace'`` turns undecodable bytes into U+FFFD and counts them
    instead of stopping at the first one. ``workers`` overrides the number of
    processes (1 = scan in this thread). ``text_field``: the field or column of
    JSON-lines and parquet files that holds the text.
    """
    if errors not in ERROR_MODES:
        raise CorpusError(f"--errors must be one of {', '.join(ERROR_MODES)}, not {errors!r}")
    files = find_corpus_files(path)
    root = Path(path).expanduser()
    found = sources(files)
    sizes = [f.stat().st_size for f in files]
    report = progress or (lambda done, total: None)
    count = workers if workers is not None else default_workers(sum(sizes))
    step = max(RANGE_BYTES, sum(sizes) // (max(count, 1) * 4) + 1)  # ~4 ranges per worker: even finish, few merges
    jobs = [
        Job(i, source, start, end, errors, text_field)
        for i, source in enumerate(found)
        for start, end in (plan_ranges(source.path, sizes[i], step) if source.splittable and count > 1 else [(0, None)])
    ]
    if count <= 1:
        tally, results = _scan_here(jobs, report, sum(sizes))
    else:
        tally, results = _scan_in_processes(jobs, report, count, sum(sizes))
    return _assemble(root, found, tally, results, top_n, text_field)


@dataclass(frozen=True)
class Job:
    """One piece of a scan: a byte range of a plain text file, or a whole file of another kind."""

    file_index: int
    source: Source
    start: int
    end: int | None
    errors: str
    text_field: str


def run_job(job: Job) -> RangeResult:
    """Scan one job (in this process or a worker)."""
    if job.source.format == TEXT:
        return scan_range(job.file_index, job.source.path, job.start, job.end, job.errors)
    return scan_documents(job.file_index, job.source, job.errors, job.text_field)


def _scan_here(jobs: list[Job], report: ProgressFn, total: int) -> tuple[Tally, list[RangeResult]]:
    """Each job in turn, in this thread."""
    tally, results, done = Tally(), [], 0
    for job in jobs:
        results.append(_absorb(tally, run_job(job)))
        done += results[-1].end - results[-1].start
        report(done, total)
    return tally, results


def _scan_in_processes(
    jobs: list[Job], report: ProgressFn, workers: int, total: int
) -> tuple[Tally, list[RangeResult]]:
    """Jobs scanned by worker processes forked from one forkserver.

    forkserver (not fork) because the TUI calls this from a thread; one server
    also means one str-hash salt for every worker, so line hashes agree. Results
    are merged here as they arrive, while the workers go on with other ranges.
    """
    context = multiprocessing.get_context("forkserver")
    tally, results, done = Tally(), [], 0
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        futures = [pool.submit(run_job, job) for job in jobs]
        for future in as_completed(futures):
            results.append(_absorb(tally, future.result()))
            done += results[-1].end - results[-1].start
            report(done, total)
    return tally, sorted(results, key=lambda r: (r.file_index, r.start))


def _absorb(tally: Tally, result: RangeResult) -> RangeResult:
    """Merge a range into the total; keep only its per-file figures (drop the big counters)."""
    tally.merge(result.tally)
    t = result.tally
    result.tally = Tally(lines=t.lines, nonempty=t.nonempty, words=t.words, documents=t.documents)
    return result


def _file_sha256(path: Path, ranges: list[RangeResult]) -> str:
    """A file scanned as one range already has its hash; a split one is hashed here (fast: ~1 GB/s)."""
    return ranges[0].sha256 if len(ranges) == 1 else file_sha256(path)


def _assemble(
    root: Path, found: list[Source], tally: Tally, results: list[RangeResult], top_n: int, text_field: str
) -> CorpusStats:
    """Per-file summaries from the ranges, totals from the merged tally, frozen."""
    summaries = []
    for index, source in enumerate(found):
        ranges = [r for r in results if r.file_index == index]
        summaries.append(
            FileSummary(
                str(source.path),
                sum(r.end - r.start for r in ranges),
                sum(r.tally.lines for r in ranges),
                sum(r.tally.nonempty for r in ranges),
                sum(r.tally.words for r in ranges),
                _file_sha256(source.path, ranges),
                documents=sum(r.tally.documents for r in ranges),
                format=source.describe,
            )
        )
    size = sum(s.bytes for s in summaries)
    if size == 0:
        raise empty_corpus(root)
    if tally.nonempty == 0:
        raise only_whitespace(root)
    words, top_words = tally.top_words(top_n)
    duplicates, top_duplicates = tally.duplicates(top_n)
    return CorpusStats(
        path=str(root),
        files=tuple(summaries),
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
        replaced_bytes=sum(r.replaced for r in results),
        documents=tally.documents,
        text_field=text_field,
    )
