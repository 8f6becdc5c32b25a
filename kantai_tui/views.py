"""Rich renderables shared by the CLI and the TUI, so both show the same numbers the same way.

Pure functions from core dataclasses to rich objects: no IO, no state.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rich.table import Table
from rich.text import Text

from kantai_tui.core.corpus.stats import CorpusStats, Distribution
from kantai_tui.core.device import DeviceSnapshot
from kantai_tui.core.tokenizer.bpe import Encoded, TokenStats
from kantai_tui.core.tokenizer.vocab import VocabEntry, readable, token_bytes
from kantai_tui.format import gib, human_bytes, pct, quality_text

TOKEN_STYLES = ("bold black on #8fbcbb", "bold black on #ebcb8b")
BAR = "█"


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
        *([("documents", f"{stats.documents:,} (records with text)")] if has_records(stats) else []),
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


def has_records(stats: CorpusStats) -> bool:
    """Whether some file is JSON lines or parquet, whose documents are records rather than lines."""
    return any("JSON" in f.format or "parquet" in f.format for f in stats.files)


def files_table(stats: CorpusStats, width: int | None = None) -> Table:
    """Per-file counts, like the provenance table of the bundled corpus.

    Given the width it must fit (the TUI's pane), it drops the least useful columns when narrow and
    shortens long file names in the middle (``fundamental_prin…morals.txt``) instead of letting the
    table fold them mid-word over several lines.
    """
    columns = ["file", "bytes", "lines", "non-empty", "words", "sha256"]
    if any(f.format != "text" for f in stats.files):  # JSON lines, parquet or compressed: say which, and records
        columns[1:1] = ["format"]
        columns[4:4] = ["documents"]
    if width is not None and width < 100:
        columns.remove("non-empty")
        columns.remove("sha256")
    table = Table(title="files", title_justify="left", expand=False)
    root = Path(stats.path)
    rows = []
    for f in stats.files:
        name = Path(f.path).relative_to(root).as_posix() if root.is_dir() else Path(f.path).name
        cells = {
            "file": name,
            "bytes": f"{f.bytes:,}",
            "lines": f"{f.lines:,}",
            "non-empty": f"{f.nonempty_lines:,}",
            "format": f.format,
            "documents": f"{f.documents:,}",
            "words": f"{f.words:,}",
            "sha256": f.sha256[:12],
        }
        rows.append([cells[c] for c in columns])
    widths = [max(len(r[i]) for r in [*rows, columns]) for i in range(len(columns))]
    for i, name in enumerate(columns):  # numbers are never cut: each column is as wide as its longest cell
        table.add_column(
            name,
            justify="left" if name in ("file", "sha256", "format") else "right",
            no_wrap=True,
            min_width=widths[i] if i else None,
        )
    if width is not None and rows:
        room = max(12, width - sum(w + 3 for w in widths[1:]) - 6)  # 3 per column: padding, rule; 6: borders, scrollbar
        for row in rows:
            row[0] = shorten_middle(row[0], room)
    for row in rows:
        table.add_row(*row)
    return table


def shorten_middle(text: str, room: int) -> str:
    """``text`` in at most ``room`` characters, keeping its start and its end (the file extension)."""
    if len(text) <= room:
        return text
    tail = min(len(text) // 2, max(4, room // 3))
    return f"{text[: room - tail - 1]}…{text[-tail:]}"


def distribution_table(dist: Distribution, title: str, width: int = 30) -> Table:
    """min/median/p95/max on top of a horizontal-bar histogram."""
    table = Table(title=title, title_justify="left", show_header=True, box=None, padding=(0, 1), min_width=64)
    table.add_column("range", justify="right", no_wrap=True)
    table.add_column("lines", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    peak = max((b.count for b in dist.histogram), default=0) or 1
    for b in dist.histogram:
        label = f"{b.lo}" if b.lo == b.hi else f"{b.lo}–{b.hi}"
        table.add_row(
            label, f"{b.count:,}", Text(BAR * max(1 if b.count else 0, round(width * b.count / peak)), "cyan")
        )
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
    table = distribution_table(
        tokens.per_line, f"tokens per non-empty line (with <s> </s>), block size {tokens.block_size}"
    )
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
    for i, (token, token_id, (start, end)) in enumerate(zip(encoded.tokens, encoded.ids, encoded.offsets, strict=True)):
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


def bar(fraction: float | None, width: int = 20) -> Text:
    """A horizontal bar for 0..1 (blank when unknown)."""
    if fraction is None:
        return Text("·" * width, style="dim")
    filled = max(0, min(width, round(fraction * width)))
    style = "green" if fraction < 0.7 else "yellow" if fraction < 0.9 else "red"
    return Text(BAR * filled, style=style) + Text("·" * (width - filled), style="dim")


class _PlainTable(Table):
    """A table whose str cells are plain text: device and process names may contain [brackets]."""

    def add_row(self, *cells: object, **kwargs: object) -> None:
        super().add_row(*(Text(c) if isinstance(c, str) else c for c in cells), **kwargs)  # type: ignore[arg-type]


def device_renderable(snapshot: DeviceSnapshot) -> Table:
    """GPUs (torch and driver numbers, labelled), their processes, then CPU and RAM."""
    s = snapshot
    table = _PlainTable(box=None, padding=(0, 1), show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    build = "CPU-only build" if s.torch_cuda is None else f"built with CUDA {s.torch_cuda}"
    table.add_row("torch", f"{s.torch_version or 'not installed'} ({build})")
    if not s.gpus:
        table.add_row("GPU", Text("no CUDA device", style="bold yellow"))
    for gpu in s.gpus:
        table.add_row(f"GPU {gpu.index}", f"{gpu.name} · compute capability {gpu.capability}")
        used = gpu.torch_used_bytes
        table.add_row(
            " memory [torch]",
            bar(used / gpu.total_bytes if used is not None else None)
            + f" {gib(used)} / {gib(gpu.total_bytes)} · this process: {gib(gpu.allocated_bytes)} allocated, "
            f"{gib(gpu.reserved_bytes)} reserved",
        )
        d = gpu.driver
        if d is None:
            table.add_row(" driver", Text(f"— ({s.nvml})", style="dim"))
            continue
        util = d.utilization_pct / 100 if d.utilization_pct is not None else None
        table.add_row(" utilization [driver]", bar(util) + f" {pct(d.utilization_pct)}")
        mem = (
            d.memory_used_bytes / d.memory_total_bytes
            if d.memory_used_bytes is not None and d.memory_total_bytes
            else None
        )
        table.add_row(" memory [driver]", bar(mem) + f" {gib(d.memory_used_bytes)} / {gib(d.memory_total_bytes)}")
        table.add_row(
            " temperature · power",
            f"{_num_or(d.temperature_c, '°C')} · {_num_or(d.power_w, ' W')} of {_num_or(d.power_limit_w, ' W')}",
        )
        for p in d.processes or ():
            mark = f"  [kantai run {p.run}]" if p.run else ""
            table.add_row(f"  pid {p.pid}", f"{gib(p.used_bytes)}  {p.name}{mark}")
        if not d.processes:
            table.add_row("  processes", Text("none", style="dim"))
    host = s.host
    ram = (
        host.ram_used_bytes / host.ram_total_bytes if host.ram_used_bytes is not None and host.ram_total_bytes else None
    )
    table.add_row(
        "CPU",
        bar(host.cpu_pct / 100 if host.cpu_pct is not None else None)
        + f" {pct(host.cpu_pct)} of {host.cpu_count} cores",
    )
    table.add_row("RAM", bar(ram) + f" {gib(host.ram_used_bytes)} / {gib(host.ram_total_bytes)}")
    for note in s.notes:
        table.add_row("note", Text(note, style="dim"))
    return table


def _num_or(value: float | None, unit: str) -> str:
    return "—" if value is None else f"{value:.0f}{unit}"


def spark(values: Iterable[float], low: float = 0.0, high: float = 100.0) -> Text:
    """A one-line history on a fixed scale, newest on the right."""
    levels = " ▁▂▃▄▅▆▇█"
    out = Text()
    for value in values:
        fraction = (min(max(value, low), high) - low) / (high - low)
        out.append(levels[round(fraction * 8)], style="cyan")
    return out


def quality_history(evals: list[dict]) -> Text:
    """The latest held-out evaluation in words, then its accuracies over every evaluation so far (one
    spark each, 0-100%), so a run that only lowers its loss is told apart from one that learns words."""
    last = evals[-1]
    out = Text(f"held-out @ step {last['step']:,}: {quality_text(last)}")
    for key, label in (("mask_acc", "masked"), ("content_acc", "content words"), ("cloze_hits5", "cloze @5")):
        values = [100 * e[key] for e in evals if isinstance(e.get(key), (int, float))]
        if values:
            out.append(f"\n{label:>13} ")
            out.append_text(spark(values[-40:]))
            out.append(f" {values[-1]:.1f}%")
    return out
