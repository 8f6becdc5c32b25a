"""Human-readable output of the CLI (rich, on stdout; progress on stderr only when it is a terminal)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from kantai_tui import views
from kantai_tui.core.corpus.sample import BUNDLED_NAME
from kantai_tui.core.corpus.stats import CorpusStats
from kantai_tui.core.errors import one_line
from kantai_tui.core.paths import kantai_command
from kantai_tui.core.tokenizer.bpe import Encoded, TokenStats, TrainProgressFn, TrainResult
from kantai_tui.core.tokenizer.vocab import VocabEntry, Vocabulary

if TYPE_CHECKING:
    from kantai_tui.core.device import DeviceSnapshot
    from kantai_tui.core.training.events import Event

from kantai_tui.format import (
    NA,
    Smoother,
    eta,
    human_bytes,
    length_text,
    loss_text,
    number,
    quality_text,
    row_progress,
    state_text,
)


def _console() -> Console:
    """A console for stdout; rich honours NO_COLOR and drops colour when stdout is not a terminal."""
    return Console(highlight=False)


def print_stats(stats: CorpusStats, tokens: TokenStats | None) -> None:
    """Summary, files, line lengths, top words (and tokens per line when a tokenizer was given)."""
    out = _console()
    out.print(f"[bold]{stats.path}[/]")
    out.print(views.summary_table(stats))
    out.print(views.files_table(stats, width=out.width))
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
    out.print(
        f"trained byte-level BPE in {result.seconds:.2f} s: {result.vocab_size:,} tokens "
        f"of {result.requested_vocab_size:,} requested{note}"
    )
    files = len(result.files)
    out.print(f"corpus: {result.corpus} ({files} file{'s' if files != 1 else ''})")
    out.print(f"saved to {result.out_dir}: vocab.json merges.txt tokenizer.json tokenizer_config.json kantai.json")
    out.print(Text(f"next: {kantai_command('tokenizer', 'show', result.out_dir, '--search', 'Reason')}"))


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

    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=Console(stderr=True), transient=True
    ) as bar:
        task = bar.add_task("starting", total=1.0)

        def report(phase: str, fraction: float | None) -> None:
            bar.update(task, description=phase, completed=fraction if fraction is not None else 1.0)

        yield report


class EventPrinter:
    """Prints training events (live or followed) one line each: step, loss, smoothed loss, lr, tokens/s, ETA."""

    def __init__(self, json_lines: bool = False, runs_dir: str | Path | None = None) -> None:
        self.json_lines = json_lines
        self.runs_dir = runs_dir  # for the resume hint: a command that works as printed
        self.loss = Smoother()
        self.total: int | None = None
        self.start: tuple[int, float] | None = None
        self.run = "RUN"

    def event(self, event: Event) -> None:
        from kantai_tui.core.training.events import event_to_json

        self.row(event_to_json(event))

    def note(self, message: str) -> None:
        print(f"kantai: {one_line(message)}", file=sys.stderr, flush=True)

    def row(self, row: dict) -> None:
        if self.json_lines:
            print(json.dumps(row), flush=True)
            return
        from kantai_tui.core.runs.folder import METRIC_FIELDS, metrics_row

        typed = metrics_row(row)  # each known field of its type or absent: a null never reaches a format spec
        kind = row.get("kind")
        try:
            known = isinstance(kind, str) and kind in METRIC_FIELDS
            line = None if typed is None else getattr(self, f"_{kind}")(typed) if known else ""
        except KeyError:  # a line without what it is about (its step, its message...)
            line = None
        if line is None:
            line = f"  (skipped a metrics line kantai cannot read: {json.dumps(row)[:80]})"
        if line:
            print(line, flush=True)

    def _started(self, row: dict) -> str:
        self.total = row.get("total_steps")  # None: only a time budget bounds the run
        self.loss.rewind(row["start_step"])  # steps past the checkpoint are trained (and logged) again
        self.start = None
        self.run = row.get("run", self.run)
        where = "from the start" if row["start_step"] == 0 else f"resuming after step {row['start_step']}"
        return (
            f"run {self.run}: {length_text(self.total, row.get('time_s'))} {where} on {row.get('device', NA)}; "
            f"{number(row.get('parameters'), ',')} parameters; {number(row.get('train_examples'), ',')} training "
            f"examples, {number(row.get('eval_examples'), ',')} held-out lines; "
            f"{number(row.get('tokens_per_step'), ',')} tokens per step"
        )

    def _step(self, row: dict) -> str:
        loss, elapsed = row.get("loss"), row.get("elapsed_s")
        smoothed = self.loss.add(row["step"], loss)
        done = row_progress(row, self.total)
        if self.start is None and done is not None and elapsed is not None:
            self.start = (done, elapsed)
        total = f"/{self.total:,}" if self.total else ""
        left = eta(self.start, (done, elapsed)) if done is not None and elapsed is not None else NA
        return (
            f"step {row['step']:>6,}{total}  epoch {number(row.get('epoch'), '.2f')}  loss {loss_text(loss)}  smooth "
            f"{loss_text(smoothed)}  lr {number(row.get('lr'), '.2e')}  {number(row.get('tokens_per_s'), ',.0f')} "
            f"tok/s  ETA {left}"
        )

    def _eval(self, row: dict) -> str:
        return f"  eval @ step {row['step']:,}: {quality_text(row)}"

    def _batch_split(self, row: dict) -> str:
        return f"  {row['message']}"

    def _checkpoint(self, row: dict) -> str:
        return f"  checkpoint {Path(row['path']).name} committed"

    def _finished(self, row: dict) -> str:
        step = number(row.get("step"), ",")
        if row.get("stopped"):
            resume = kantai_command("train", "--resume", self.run, runs_dir=self.runs_dir)
            return f"stopped after step {step}; its checkpoint is saved; resume with '{resume}'"
        return f"finished at step {step}; model and tokenizer in {row.get('final_dir', NA)}"


def print_runs(runs: list, runs_dir: str) -> None:
    """A table of runs: name, state, progress, last loss, preset and recipe."""
    out = _console()
    if not runs:
        start = kantai_command("train", BUNDLED_NAME, "--preset", "tiny", runs_dir=runs_dir)
        out.print(Text(f"no runs in {runs_dir}; start one with: {start}"))
        return
    table = Table(box=None, padding=(0, 1))
    for name in ("run", "state", "step", "loss", "preset", "recipe", "updated"):
        table.add_column(name, justify="right" if name in ("step", "loss") else "left", no_wrap=name == "run")
    for r in runs:
        step = "—" if r.step is None else f"{r.step:,}" + (f"/{r.total_steps:,}" if r.total_steps else "")
        updated = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.updated)) if r.updated else "—"
        state = state_text(r.state, r.stalled_s)
        table.add_row(r.name, state, step, loss_text(r.last_loss), r.preset or "—", r.recipe or "—", updated)
    out.print(table)


def print_presets(sizes: list, vocab: int, batch: int, block: int) -> None:
    """One row per preset: parameters by part, memory to train, FLOPs per token."""
    from kantai_tui.core.training.presets import POOLER_PARAMS, TUTORIAL_PARAMS

    out = _console()
    out.width = max(out.width, 90)  # nine numeric columns: wrap the prose, never the numbers
    table = Table(
        box=None,
        padding=(0, 1),
        title=f"tokenizer vocabulary {vocab:,}; batch {batch} × block {block}",
        title_justify="left",
    )
    for name in ("preset", "vocab", "unused", "embed", "encoder", "head", "parameters", "memory", "MFLOP/tok"):
        table.add_column(name, justify="left" if name == "preset" else "right", no_wrap=True)
    for s in sizes:
        table.add_row(
            s.preset,
            f"{s.vocab_size:,}",
            f"{s.unused_rows:,}",
            _millions(s.embeddings),
            _millions(s.encoder),
            _millions(s.lm_head),
            f"{s.total:,}",
            human_bytes(s.train_memory_bytes),
            f"{s.train_flops_per_token / 1e6:,.1f}",
        )
    out.print(table)
    out.print(
        f"kantai = the tutorial's RobertaConfig; the tutorial printed {TUTORIAL_PARAMS:,} parameters because its "
        f"transformers also built a {POOLER_PARAMS:,}-parameter pooler that masked-LM training never uses. "
        "Memory: fp32 weights, gradients and AdamW moments plus activations; FLOPs with the LM head at masked "
        "positions only."
    )


def _millions(count: int) -> str:
    return f"{count / 1e6:.2f}M"


def print_fill(result) -> None:
    """Each mask's ranked list with probability bars and the completed sentence."""
    out = _console()
    out.print(f"[dim]model: {result.source}[/]")
    if len(result.masks) > 1:
        out.print("[dim]several masks: each list is predicted on its own, with the other masks still masked[/]")
    for mask in result.masks:
        table = Table(
            box=None,
            padding=(0, 1),
            title=f"<mask> #{mask.index + 1}" if len(result.masks) > 1 else None,
            title_justify="left",
        )
        for name in ("#", "token", "probability", "", "sequence"):
            table.add_column(name, justify="right" if name in ("#", "probability") else "left")
        for rank, c in enumerate(mask.candidates, 1):
            table.add_row(str(rank), c.text, f"{c.score:.2%}", "█" * max(1, round(20 * c.score)), c.sequence)
        out.print(table)


def print_probes(timeline: dict) -> None:
    """For each probe sentence: the top predictions at each checkpoint step."""
    out = _console()
    if not timeline["probes"]:
        out.print("no probe results yet: they are written at each checkpoint")
        return
    for probe in timeline["probes"]:  # probes and answers are text, not markup: "[/b]" is a word a corpus may hold
        out.print(Text(probe["text"], style="bold"))
        table = Table(box=None, padding=(0, 1))
        table.add_column("step", justify="right")
        table.add_column("top predictions")
        for point in probe["points"]:
            first = " ← first content word" if point["step"] == probe.get("first_content_step") else ""
            table.add_row(f"{point['step']:,}", Text("  ".join(f"{t} {p:.0%}" for t, p in point["top"]) + first))
        out.print(table)


def show_devices(take: Callable[[], DeviceSnapshot], watch: bool, json_lines: bool) -> None:
    """Print one snapshot, or refresh every second until Ctrl-C (JSON lines with --json --watch)."""
    if json_lines:
        while True:
            print(json.dumps(take().to_dict()), flush=True)
            time.sleep(1.0)
    if not watch:
        _console().print(views.device_renderable(take()))
        return
    from rich.live import Live

    with Live(views.device_renderable(take()), console=_console(), refresh_per_second=2) as live:
        while True:
            time.sleep(1.0)
            live.update(views.device_renderable(take()))
