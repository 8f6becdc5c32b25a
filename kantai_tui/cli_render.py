"""Human-readable output of the CLI (rich, on stdout; progress on stderr only when it is a terminal)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.table import Table

from kantai_tui import views
from kantai_tui.core.bpe import Encoded, TokenStats, TrainProgressFn, TrainResult
from kantai_tui.core.corpus import CorpusStats
from kantai_tui.core.vocab import VocabEntry, Vocabulary


def _console() -> Console:
    """A console for stdout; rich honours NO_COLOR and drops colour when stdout is not a terminal."""
    return Console(highlight=False)


def print_stats(stats: CorpusStats, tokens: TokenStats | None) -> None:
    """Summary, files, line lengths, top words (and tokens per line when a tokenizer was given)."""
    out = _console()
    out.print(f"[bold]{stats.path}[/]")
    out.print(views.summary_table(stats))
    out.print(views.files_table(stats))
    out.print(views.distribution_table(stats.line_length, "line length, characters (non-empty lines, trimmed)"))
    out.print(views.top_words_table(stats.top_words))
    if stats.top_duplicates:
        out.print(views.top_words_table(stats.top_duplicates, "most repeated lines", "line"))
    if tokens is not None:
        out.print(views.token_stats_table(tokens))


def print_trained(result: TrainResult) -> None:
    """What was trained, and what to run next."""
    out = _console()
    note = "" if result.vocab_size == result.requested_vocab_size else " (the corpus ran out of pairs to merge)"
    out.print(f"trained byte-level BPE in {result.seconds:.2f} s: {result.vocab_size:,} tokens "
              f"of {result.requested_vocab_size:,} requested{note}")  # fmt: skip
    files = len(result.files)
    out.print(f"corpus: {result.corpus} ({files} file{'s' if files != 1 else ''})")
    out.print(f"saved to {result.out_dir}: vocab.json merges.txt tokenizer.json tokenizer_config.json kantai.json")
    out.print(f"next: kantai tokenizer show {result.out_dir} --search Reason")


def print_vocab(vocab: Vocabulary, rows: list[VocabEntry], limit: int) -> None:
    """A table of the first ``limit`` matching entries."""
    out = _console()
    table = Table(box=None, padding=(0, 1))
    for name in views.VOCAB_COLUMNS:
        table.add_column(name, justify="right" if name in ("id", "bytes", "freq", "merge") else "left")
    for entry in rows[:limit]:
        table.add_row(*views.vocab_row(entry))
    out.print(table)
    more = f"; showing {limit} (--limit N for more)" if len(rows) > limit else ""
    out.print(f"{len(rows):,} of {len(vocab):,} tokens match{more}")


def print_encoded(encoded: Encoded) -> None:
    """Coloured token boundaries, then the token table."""
    out = _console()
    out.print(views.encoded_text(encoded))
    out.print(" ".join(encoded.tokens))
    out.print(views.encoded_table(encoded))


@contextmanager
def waiting(message: str, quiet: bool = False) -> Iterator[None]:
    """A spinner on stderr while something slow runs, shown only to a person at a terminal."""
    if quiet or not sys.stderr.isatty():
        yield
        return
    with Console(stderr=True).status(message):
        yield


@contextmanager
def phase_reporter(quiet: bool) -> Iterator[TrainProgressFn]:
    """A progress bar on stderr for long work, shown only to a person at a terminal."""
    if quiet or not sys.stderr.isatty():
        yield lambda phase, fraction: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:  # fmt: skip
        task = bar.add_task("starting", total=1.0)

        def report(phase: str, fraction: float | None) -> None:
            bar.update(task, description=phase, completed=fraction if fraction is not None else 1.0)

        yield report
