"""Rich renderables shared by the CLI and the TUI, so both show the same numbers the same way.

Pure functions from core dataclasses to rich objects: no IO, no state.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text

from kantai_tui.core.bpe import Encoded, TokenStats
from kantai_tui.core.corpus import CorpusStats, Distribution
from kantai_tui.core.vocab import VocabEntry, readable, token_bytes

TOKEN_STYLES = ("bold black on #8fbcbb", "bold black on #ebcb8b")
BAR = "█"


def human_bytes(size: int) -> str:
    """1,820,953 -> '1.7 MiB'."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def summary_table(stats: CorpusStats) -> Table:
    """The headline numbers of a corpus, two columns."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(justify="right")
    rows = [
        ("files", f"{len(stats.files):,}"),
        ("size", f"{human_bytes(stats.bytes)} ({stats.bytes:,} bytes)"),
        ("lines", f"{stats.lines:,}"),
        ("non-empty lines", f"{stats.nonempty_lines:,}"),
        ("words", f"{stats.words:,}"),
        ("characters", f"{stats.characters:,}"),
        ("unique words", f"{stats.unique_words:,}"),
        ("duplicate lines", f"{stats.duplicate_lines:,}"),
        ("fingerprint", f"sha256 {stats.fingerprint[:16]}…"),
    ]
    if stats.replaced_bytes:
        rows.append(("replaced bytes", f"{stats.replaced_bytes:,} (bad UTF-8 → U+FFFD)"))
    for name, value in rows:
        table.add_row(name, value)
    return table


def files_table(stats: CorpusStats) -> Table:
    """Per-file counts, like the provenance table of the bundled corpus."""
    table = Table(title="files", title_justify="left", expand=False)
    for name in ("file", "bytes", "lines", "non-empty", "words", "sha256"):
        table.add_column(name, justify="left" if name in ("file", "sha256") else "right", overflow="fold")
    root = Path(stats.path)
    for f in stats.files:
        name = Path(f.path).relative_to(root).as_posix() if root.is_dir() else Path(f.path).name
        table.add_row(name, f"{f.bytes:,}", f"{f.lines:,}", f"{f.nonempty_lines:,}", f"{f.words:,}", f.sha256[:12])
    return table


def distribution_table(dist: Distribution, title: str, width: int = 30) -> Table:
    """min/median/p95/max on top of a horizontal-bar histogram."""
    table = Table(title=title, title_justify="left", show_header=True, box=None, padding=(0, 1), min_width=64)
    table.add_column("range", justify="right", no_wrap=True)
    table.add_column("lines", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    peak = max((b.count for b in dist.histogram), default=0) or 1
    for b in dist.histogram:
        label = f"{b.lo}" if b.lo == b.hi else f"{b.lo}–{b.hi}"
        table.add_row(label, f"{b.count:,}", Text(BAR * max(1 if b.count else 0, round(width * b.count / peak)), "cyan"))
    table.caption = f"min {dist.min} · median {dist.median} · p95 {dist.p95} · max {dist.max} · mean {dist.mean}"
    table.caption_justify = "left"
    return table


def top_words_table(top: tuple[tuple[str, int], ...], title: str = "top words", label: str = "word") -> Table:
    """Rank, word (or line), count."""
    table = Table(title=title, title_justify="left", box=None, padding=(0, 1))
    table.add_column("#", justify="right", style="dim")
    table.add_column(label, overflow="ellipsis")
    table.add_column("count", justify="right")
    for rank, (word, count) in enumerate(top, 1):
        table.add_row(str(rank), word, f"{count:,}")
    return table


def token_stats_table(tokens: TokenStats) -> Table:
    """Tokens per line and what block size would truncate."""
    table = distribution_table(tokens.per_line, f"tokens per non-empty line (with <s> </s>), block size {tokens.block_size}")
    table.caption = (
        f"{table.caption}\ntruncated at {tokens.block_size}: {tokens.truncated_lines:,} of {tokens.lines:,} lines "
        f"({tokens.truncated_share:.2%}), {tokens.tokens_lost:,} tokens lost"
    )
    return table


def encoded_text(encoded: Encoded) -> Text:
    """The tokens side by side in alternating colours, with the leading-space marker visible."""
    text = Text()
    for i, token in enumerate(encoded.tokens):
        shown = token if token.startswith("<") and token.endswith(">") else readable(token_bytes(token))
        text.append(shown, TOKEN_STYLES[i % 2])
    return text


def encoded_table(encoded: Encoded) -> Table:
    """One row per token: position, id, token, readable form, character span."""
    table = Table(box=None, padding=(0, 1))
    for name in ("#", "id", "token", "text", "chars"):
        table.add_column(name, justify="right" if name in ("#", "id") else "left")
    for i, (token, token_id, (start, end)) in enumerate(zip(encoded.tokens, encoded.ids, encoded.offsets)):
        table.add_row(str(i), str(token_id), token, readable(token_bytes(token)), f"{start}–{end}")
    return table


def vocab_row(entry: VocabEntry) -> tuple[str, ...]:
    """Cells of one vocabulary row, shared by the CLI table and the TUI's virtual table."""
    return (
        str(entry.id),
        entry.readable,
        entry.token,
        str(entry.byte_length),
        "—" if entry.frequency is None else f"{entry.frequency:,}",
        "—" if entry.merge_rank is None else f"{entry.merge_rank:,}",
    )


VOCAB_COLUMNS = ("id", "text", "token", "bytes", "freq", "merge")
