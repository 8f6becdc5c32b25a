"""Human-readable output of the CLI (rich, on stdout; progress on stderr only when it is a terminal)."""

from __future__ import annotations

import json
import math
import shutil
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
from kantai_tui.core.progress import SHOW_AFTER_S, Meter, Progress
from kantai_tui.core.tokenizer.bpe import Encoded, TokenStats, TrainResult
from kantai_tui.core.tokenizer.vocab import VocabEntry, Vocabulary

if TYPE_CHECKING:
    from kantai_tui.core.device import DeviceSnapshot
    from kantai_tui.core.training.events import Event

from kantai_tui.format import (
    NA,
    Smoother,
    count,
    coverage_text,
    eta,
    human_bytes,
    length_text,
    lineage_text,
    lineage_words,
    loss_text,
    number,
    progress_text,
    quality_text,
    row_progress,
    setting_text,
    speed_text,
    state_text,
    steps_text,
    tflops_text,
    time_tick,
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
    if result.coverage:
        out.print(coverage_text(result.coverage))
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
def progress_bar(quiet: bool) -> Iterator[ProgressLine]:
    """The phases before training (scanning, tokenizer, encoding, packing) as one line on stderr that
    rewrites itself, shown only to a person at a terminal and only once a phase has run a second; cleared
    when the phase ends or another begins, so what follows starts on a clean line."""
    line = ProgressLine(visible=not quiet and sys.stderr.isatty())
    try:
        yield line
    finally:
        line.clear()


class ProgressLine:
    """A Report drawn as one self-rewriting line on stderr (``\\r`` and erase-line), as wide as the terminal
    at most; invisible (a no-op) when stderr is no terminal or output is JSON."""

    def __init__(self, visible: bool) -> None:
        self.visible = visible
        self.shown: str | None = None  # the phase on screen
        self.meter = Meter(self._show, every=0.2)

    def __call__(self, phase: str, done: int, total: int) -> None:
        if self.visible:
            self.meter(phase, done, total)

    def show(self, progress: Progress) -> None:
        """Draw a phase whose timing is already known (``kantai follow`` reads it from status.json)."""
        if self.visible:
            self._show(progress)

    def _show(self, progress: Progress) -> None:
        if progress.phase != self.shown or (progress.total > 0 and progress.done >= progress.total):
            self.clear()
        if progress.elapsed_s < SHOW_AFTER_S or (progress.total > 0 and progress.done >= progress.total):
            return
        text = progress_text(progress.phase, progress.done, progress.total, progress.elapsed_s, progress.unit)
        width = shutil.get_terminal_size((80, 24)).columns - 1
        sys.stderr.write("\r\x1b[2K" + text[:width])
        sys.stderr.flush()
        self.shown = progress.phase

    def clear(self) -> None:
        """Erase the line (before other output, and at the end)."""
        if self.shown is not None:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()
            self.shown = None


class EventPrinter:
    """Prints training events (live or followed) one line each: step, loss, smoothed loss, lr, speed, ETA."""

    def __init__(self, json_lines: bool = False, runs_dir: str | Path | None = None) -> None:
        self.json_lines = json_lines
        self.runs_dir = runs_dir  # for the resume hint: a command that works as printed
        self.loss = Smoother()
        self.total: int | None = None
        self.start: tuple[int, float] | None = None
        self.run = "RUN"
        self.started: dict = {}  # the latest started row: its peak is what the step lines' MFU is of
        self.epoch: float | None = None  # the latest step row's, for the eval lines

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
        self.started = row
        where = "from the start" if row["start_step"] == 0 else f"resuming after step {row['start_step']}"
        return (
            f"run {self.run}: {length_text(self.total, row.get('time_s'))} {where} on {row.get('device', NA)}; "
            f"{number(row.get('parameters'), ',')} parameters; {number(row.get('train_examples'), ',')} training "
            f"examples, {number(row.get('eval_examples'), ',')} held-out lines; "
            f"{number(row.get('tokens_per_step'), ',')} tokens per step{self._speed_model(row)}"
            + (f"\n  {row['batch_reason']}" if row.get("batch_reason") else "")
        )

    @staticmethod
    def _speed_model(row: dict) -> str:
        """What the step lines' TFLOP/s and MFU mean, said once: the FLOP model and the peak (none in the
        started row of a run from before kantai logged speed)."""
        flops = row.get("flops_per_token")
        if flops is None:
            return ""
        peak, matmul = row.get("peak_tflops"), row.get("matmul_tflops")
        against = (
            f"MFU of {tflops_text(peak)} TFLOP/s, {row.get('peak_source', NA)}"
            if peak is not None
            else "no MFU: no peak known for this device"
        )
        if matmul is not None and matmul != peak:
            against += f"; {tflops_text(matmul)} TFLOP/s {row.get('matmul_source', NA)}"
        return f"\n  speed: {flops / 1e6:,.1f} MFLOP/token, {row.get('flop_model', NA)}; {against}"

    def _step(self, row: dict) -> str:
        loss, elapsed = row.get("loss"), row.get("elapsed_s")
        smoothed = self.loss.add(row["step"], loss)
        self.epoch = row.get("epoch")
        done = row_progress(row, self.total)
        if self.start is None and done is not None and elapsed is not None:
            self.start = (done, elapsed)
        total = f"/{self.total:,}" if self.total else ""
        left = eta(self.start, (done, elapsed)) if done is not None and elapsed is not None else NA
        return (
            # 120 columns with the speed figures: the epoch is on the eval lines, beside the held-out loss
            f"step {row['step']:>6,}{total}  loss {loss_text(loss)}  smooth {loss_text(smoothed)}  "
            f"lr {number(row.get('lr'), '.2e')}  {speed_text(row, self.started, peak=False)}  ETA {left}"
        )

    def _eval(self, row: dict) -> str:
        epoch = f" (epoch {self.epoch:.2f})" if self.epoch is not None else ""
        return f"  eval @ step {row['step']:,}{epoch}: {quality_text(row)}"

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


def print_runs(rows: list[dict], stalled: dict[str, float | None], runs_dir: str) -> None:
    """The runs table (state, progress, tokens, training time, speed, held-out quality, lineage), then the
    settings that differ between the listed runs, one column each (the others are the same for all)."""
    out = _console()
    if not rows:
        start = kantai_command("train", BUNDLED_NAME, "--preset", "tiny", runs_dir=runs_dir)
        out.print(Text(f"no runs in {runs_dir}; start one with: {start}"))
        return
    if not out.is_terminal:
        out.width = 160  # a file or a pipe gets whole lines, for grep
    forks = any(r["parent"] or r["extensions"] for r in rows)
    table = Table(box=None, padding=(0, 1, 0, 0))
    table.caption = (
        "loss: held-out, at the last evaluation · masked, content: its accuracy at masked tokens, content words"
    )
    table.caption_justify = "left"
    columns = ["run", "state", "step", "tokens", "time", "tok/s", "loss", "masked", "content"]
    for name in [*columns, *(["lineage"] if forks else [])]:
        table.add_column(
            name,
            justify="left" if name in ("run", "state", "lineage") else "right",
            no_wrap=name not in ("run", "lineage"),
            overflow="fold",
        )
    for r in rows:
        cells = [
            r["run"],
            state_text(r["state"], stalled.get(r["run"])),
            steps_text(r["step"], r["total_steps"]),
            count(r["tokens"]),
            time_tick(r["elapsed_s"]),
            count(r["tokens_per_s"]),
            loss_text(r["eval_loss"], 2),
            number(r["mask_acc"], ".0%"),
            number(r["content_acc"], ".0%"),
        ]
        if forks:
            cells.append(lineage_words(r["parent"], r["extensions"]))
        table.add_row(*(Text(c) for c in cells))
    out.print(table)
    settings = [key for key in rows[0]["settings"]]
    if settings:
        diff = Table(title="settings that differ", title_justify="left", box=None, padding=(0, 1))
        diff.add_column("run", no_wrap=True)
        for key in settings:
            diff.add_column(key, justify="right")
        for r in rows:
            diff.add_row(Text(r["run"]), *(Text(setting_text(r["settings"][k])) for k in settings))
        out.print(diff)


def print_compare(report: dict) -> None:
    """``kantai compare``: settings that differ, held-out loss at equal tokens and time, time to the target
    loss, final quality and the probes' answers, one column per run."""
    out = _console()
    if not out.is_terminal:
        out.width = 160  # a file or a pipe gets whole lines
    runs = report["runs"]
    names = [r["run"] for r in runs]
    out.print(_compare_settings(report, names))
    for key, label, fmt in (
        ("at_equal_tokens", "tokens", count),
        ("at_equal_time", "training time", time_tick),
    ):
        out.print(_at_equal(report[key], key.removeprefix("at_equal_").replace("time", "elapsed_s"), label, fmt, names))
    out.print(_to_target(report, names))
    first = report["first_to_target"]
    if first:
        out.print(
            Text(
                f"first to {loss_text(report['target'], 3)}: {first['by_time']} by training time, "
                f"{first['by_tokens'] or NA} by tokens",
                style="bold",
            )
        )
    out.print(_finals(runs, names))
    probes = _probes_table(runs, names)
    if probes is not None:
        out.print(probes)


def _table(title: str, names: list[str], first: str) -> Table:
    table = Table(title=title, title_justify="left", box=None, padding=(0, 1))
    table.add_column(first, no_wrap=True)
    for name in names:
        table.add_column(name, justify="right", overflow="fold")
    return table


def _compare_settings(report: dict, names: list[str]) -> Table:
    table = _table("settings that differ (run.json)", names, "setting")
    for key, values in report["config_diff"].items():
        table.add_row(Text(key), *(Text(setting_text(v)) for v in values))
    lineage = [lineage_text(r["parent"]) if r["parent"] else "" for r in report["runs"]]
    if any(lineage):
        table.add_row("from", *lineage)
    if not report["config_diff"]:
        table.caption = "none: the runs were made with the same settings"
    return table


def _best(values: list[float | None], low: bool = True) -> int | None:
    known = [(v, i) for i, v in enumerate(values) if v is not None]
    return (min(known) if low else max(known))[1] if known else None


def _at_equal(points: list[dict], key: str, label: str, fmt: Callable, names: list[str]) -> Table:
    table = _table(f"held-out loss at equal {label}", names, label)
    for point in points:
        best = _best(point["eval_loss"])
        cells = [Text(loss_text(v, 3), style="bold" if i == best else "") for i, v in enumerate(point["eval_loss"])]
        table.add_row(fmt(point[key]), *cells)
    table.caption = "lowest in bold" if points else "the runs share no span of held-out evaluations yet"
    return table


def _to_target(report: dict, names: list[str]) -> Table:
    target = report["target"]
    title = f"to reach held-out loss {loss_text(target, 3)}" if target is not None else "no held-out loss yet"
    table = _table(title, names, "")
    reached = [r["to_target"] or {} for r in report["runs"]]
    for key, label, fmt in (
        ("elapsed_s", "training time", time_tick),
        ("tokens", "tokens", count),
        ("step", "steps", _steps),
    ):
        values = [r.get(key) for r in reached]
        best = _best(values)
        table.add_row(
            label,
            *(Text("never" if v is None else fmt(v), style="bold" if i == best else "") for i, v in enumerate(values)),
        )
    return table


def _steps(value: float) -> str:
    """A step where a loss was first reached, between two evaluations: the step it was reached by."""
    return f"{math.ceil(value):,}"


def _finals(runs: list[dict], names: list[str]) -> Table:
    table = _table("where each run is", names, "")
    rows = (
        ("state", lambda r: r["state"]),
        ("step", lambda r: number(r["step"], ",")),
        ("tokens", lambda r: count(r["tokens"])),
        ("training time", lambda r: time_tick(r["elapsed_s"])),
        ("tokens/s", lambda r: count(r["tokens_per_s"])),
        ("train loss, smoothed", lambda r: loss_text(r["train_loss_smoothed"], 3)),
        ("held-out loss", lambda r: loss_text(r["final"]["eval_loss"], 3)),
        ("masked accuracy", lambda r: number(r["final"]["mask_acc"], ".1%")),
        ("content-word accuracy", lambda r: number(r["final"]["content_acc"], ".1%")),
        (
            "cloze @1 / @5",
            lambda r: f"{number(r['final']['cloze_hits1'], '.0%')} / {number(r['final']['cloze_hits5'], '.0%')}",
        ),
    )
    for label, cell in rows:
        table.add_row(label, *(Text(cell(r)) for r in runs))
    return table


def _probes_table(runs: list[dict], names: list[str]) -> Table | None:
    """Each probe sentence, then each run's top three answers to it on a line of its own (runs side by
    side would not fit 80 columns)."""
    sentences = list(dict.fromkeys(s for r in runs for s in r["probes"]))
    if not sentences:
        return None
    table = Table(title="probes: top answers at each run's latest checkpoint", title_justify="left", box=None)
    table.add_column("run", no_wrap=True, style="dim")
    table.add_column("answers")
    for sentence in sentences:
        table.add_row("", Text(sentence, style="bold"))
        for name, run in zip(names, runs, strict=True):
            answers = run["probes"].get(sentence)
            table.add_row(Text(name), Text("  ".join(f"{t} {p:.0%}" for t, p in answers[:3]) if answers else NA))
    return table


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
