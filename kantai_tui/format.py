"""Each human-facing rule computed once: durations and ETA, loss smoothing, sizes and percentages,
run names, model labels, the device summary line.

The CLI, ``kantai follow`` and the TUI all call these, so the same step shows the same smoothed
loss, the same ETA and the same label wherever it is read. Plain strings and numbers only: no
rich, no textual, no IO.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from kantai_tui.core.files import human_bytes
from kantai_tui.core.runs.smoothing import SMOOTHING, Smoother  # noqa: F401 - one rule, kept in core
from kantai_tui.core.training.config import duration

if TYPE_CHECKING:
    from kantai_tui.core.device import DeviceSnapshot

NA = "—"


def state_text(state: str, stalled_s: float | None) -> str:
    """A run's state as every view shows it: 'running' that has made no step for long says so."""
    return state if stalled_s is None else f"{state} · stalled — no step for {duration(stalled_s)}"


def eta(first: tuple[float, float] | None, last: tuple[float, float]) -> str:
    """Time left, from the rate between the first and the latest logged (progress, elapsed_s).

    Progress (0-1) is by steps or by the clock of a --time budget, so one rule gives both: steps
    left at the measured pace, or what is left of the budget. Measured from the first log step
    of this trainer process rather than from step 0, so the first window's warm-up (compilation,
    caches) does not inflate it; '—' until two log steps are known.
    """
    if first is None or last[0] <= first[0]:
        return NA
    rate = (last[1] - first[1]) / (last[0] - first[0])
    return duration(rate * max(1.0 - last[0], 0.0))


def length_text(total_steps: int | None, time_s: float | None) -> str:
    """How long a run is set to train: '2,790 steps', 'a 10m00s budget', or both, whichever comes first."""
    steps = f"{total_steps:,} steps" if total_steps else None
    budget = f"{duration(time_s)} of training" if time_s else None
    if steps and budget:
        return f"{steps} or {budget}, whichever comes first,"
    return steps or budget or "? steps"


def row_progress(row: dict, total: int | None) -> float | None:
    """A step row's progress: its ``progress`` field, or step/total for a row written before it existed."""
    value = row.get("progress")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    step = row.get("step")
    return step / total if total and isinstance(step, int) else None


def quality_text(row: dict) -> str:
    """An eval row as people read it: held-out loss, masked and content-word accuracy, cloze hits."""
    parts = [f"loss {loss_text(row.get('eval_loss'))}"]
    for key, label in (("mask_acc", "masked"), ("content_acc", "content words")):
        if isinstance(row.get(key), (int, float)):
            parts.append(f"{label} {row[key]:.1%}")
    if isinstance(row.get("cloze_hits5"), (int, float)):
        parts.append(f"cloze @1 {row.get('cloze_hits1') or 0:.0%} @5 {row['cloze_hits5']:.0%}")
    return " · ".join(parts)


def loss_text(value: float | None, digits: int = 4) -> str:
    return NA if value is None else f"{value:.{digits}f}"


def number(value: float | None, spec: str) -> str:
    """A figure a metrics row may lack (a null, a hand edit): formatted by ``spec``, or '—'."""
    return NA if value is None else format(value, spec)


def count(value: float | None) -> str:
    """12,345 -> '12.3k', 4,560,000 -> '4.56M': tokens and steps where a column or an axis tick is narrow
    (the chart's tick labels too, ``ticks.count_label``)."""
    if value is None:
        return NA
    for limit, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            scaled = value / limit
            return f"{scaled:.3g}{unit}"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3g}"


def steps_text(step: int | None, total: int | None) -> str:
    """'1,200/3,344', or '1,200' for a run that only a time budget bounds (it has no step total)."""
    if step is None:
        return NA
    return f"{step:,}/{total:,}" if total else f"{step:,}"


def time_tick(seconds: float | None) -> str:
    """Training seconds on an axis or in a column: '4.2s' under a minute (a short run is all under one),
    else as ``duration`` says it."""
    if seconds is None:
        return NA
    return f"{seconds:.1f}s" if seconds < 60 else duration(seconds)


def setting_text(value: object) -> str:
    """A run setting as the runs table and compare show it: numbers short (lr 0.002, not 0.0020000), paths by name."""
    if value is None:
        return NA
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str) and "/" in value:
        return value.rstrip("/").rsplit("/", 1)[-1]
    return str(value)


def lineage_text(parent: dict | None) -> str:
    """'base@500': the run and step a fork started from."""
    return NA if not parent else f"{parent.get('run')}@{parent.get('step')}"


def lineage_words(parent: dict | None, extensions: int) -> str:
    """'from base@500, extended ×2': where a fork came from and how often the run's length grew ('' for neither)."""
    parts = [f"from {lineage_text(parent)}"] if parent else []
    if extensions:
        parts.append("extended" + (f" ×{extensions}" if extensions > 1 else ""))
    return ", ".join(parts)


def gib(value: int | None) -> str:
    return NA if value is None else f"{value / 2**30:.1f} GiB"


def gib_of(used: int | None, total: int | None) -> str:
    """'61.0/80 GiB': used of a total, for one-line summaries."""
    if used is None or total is None:
        return NA
    return f"{used / 2**30:.1f}/{total / 2**30:.0f} GiB"


def pct(value: float | None) -> str:
    return NA if value is None else f"{value:.0f}%"


def default_run_name(preset: str, recipe: str, now: float | None = None) -> str:
    """'tiny-packed-20261125-162452': what a run is called when the user names none."""
    return f"{preset}-{recipe}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}"


def model_label(source: str) -> str:
    """``run/step-00000018`` as ``run · step 18`` (and ``run/final`` as ``run · final``): shorter, and a
    narrow pane wraps it at the spaces instead of in the middle of the step number."""
    if match := re.fullmatch(r"(.+)/step-0*(\d+)", source):
        return f"{match.group(1)} · step {match.group(2)}"
    if source.endswith("/final"):
        return f"{source[: -len('/final')]} · final"
    return source


def checkpoint_label(run: str, step: int | None) -> str:
    """A run's model in a picker: 'run · step 1,200', or 'run · final' for its exported model."""
    return f"{run} · final" if step is None else f"{run} · step {step:,}"


def device_summary(snapshot: DeviceSnapshot) -> str:
    """One short line for the app header: each GPU's utilisation and memory, or the host's CPU and RAM."""
    if not snapshot.gpus:
        host = snapshot.host
        return f"no GPU · CPU {pct(host.cpu_pct)} · RAM {gib_of(host.ram_used_bytes, host.ram_total_bytes)}"
    parts = []
    for gpu in snapshot.gpus:
        util = f" {pct(gpu.driver.utilization_pct)}" if gpu.driver else ""
        parts.append(f"GPU{gpu.index}{util} {gib_of(gpu.used_bytes, gpu.total_bytes)}")
    return " · ".join(parts)


def tflops_text(value: float) -> str:
    """Three significant figures: 0.00312 on an fp32 CPU, 0.262 on a bf16 one, 423 on an H200."""
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}"


def _share(value: float) -> str:
    """A share as a percentage, with a decimal below 10% (where MFU on a CPU and data waits live)."""
    return f"{value:.1%}" if value < 0.1 else f"{value:.0%}"


def _figure(row: dict, key: str) -> float | None:
    value = row.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def peak_label(started: dict) -> str:
    """The peak MFU is measured against, short: '0.44 TFLOP/s measured bf16 matmul', '989 TFLOP/s NVIDIA
    H200 nominal dense bf16'; '—' for a run without one (an unknown GPU, a run from before speed figures)."""
    peak, source = _figure(started, "peak_tflops"), started.get("peak_source")
    if peak is None:
        return NA
    where = source.split(",")[0] if isinstance(source, str) else "source unknown"
    return f"{tflops_text(peak)} TFLOP/s {where}"


def speed_text(step: dict, started: dict | None = None, peak: bool = True) -> str:
    """A step row's speed: '42.1k tok/s · 0.31 TFLOP/s · MFU 12% of 2.5 TFLOP/s measured fp32 matmul · data
    3%'. ``started`` is the run's started row (the peak); ``peak`` False leaves the peak out (a line that
    said it once already). '—' for what the row lacks: rows written before kantai logged speed have only
    tokens/s (and only that is shown), and a GPU kantai has no figure for has no MFU."""
    tokens, tflops = _figure(step, "tokens_per_s"), _figure(step, "tflops")
    mfu, wait = _figure(step, "mfu"), _figure(step, "data_wait")
    if "tflops" not in step and "data_wait" not in step:  # a row from before kantai logged speed: tokens/s only
        return f"{count(tokens)} tok/s"
    parts = [
        f"{count(tokens)} tok/s",
        f"{NA if tflops is None else tflops_text(tflops)} TFLOP/s",
        f"MFU {NA if mfu is None else _share(mfu)}"
        + (
            f" of {peak_label(started)}{_measured_share(tflops, started)}"
            if peak and mfu is not None and started
            else ""
        ),
        f"data {NA if wait is None else _share(wait)}",
    ]
    return " · ".join(parts)


def _measured_share(tflops: float | None, started: dict | None) -> str:
    """' (40% of measured)': the achieved rate against the matmul rate measured on the GPU, beside MFU against
    its nominal peak ('' where there is no such second figure: a CPU, whose peak is the measurement)."""
    matmul = _figure(started or {}, "matmul_tflops")
    if tflops is None or matmul is None or matmul <= 0 or matmul == _figure(started or {}, "peak_tflops"):
        return ""
    return f" ({_share(tflops / matmul)} of measured)"


def progress_text(phase: str, done: int, total: int, elapsed_s: float, unit: str = "bytes") -> str:
    """One phase before training, as the CLI's bar, ``kantai follow`` and the TUI show it:
    'encoding the token cache 45% · 120.3 MiB of 267.0 MiB · 12.1 MiB/s · 12s left'; a phase that cannot
    count ('learning merges') shows how long it has run."""
    if total <= 0:
        return f"{phase} · {duration(elapsed_s)}"
    amount = f"{human_bytes(done)} of {human_bytes(total)}" if unit == "bytes" else f"{done:,} of {total:,} {unit}"
    parts = [f"{phase} {min(done / total, 1.0):.0%}", amount]
    if elapsed_s >= 0.1 and done:
        rate = done / elapsed_s
        parts.append(f"{human_bytes(int(rate))}/s" if unit == "bytes" else f"{rate:,.0f} {unit}/s")
        parts.append(f"{duration(max(total - done, 0) / rate)} left")
    return " · ".join(parts)


def coverage_text(measured: dict) -> str:
    """A tokenizer's coverage (``sample.Coverage.to_dict``) in one line, as ``tokenizer train`` prints it."""
    try:
        return (
            f"coverage on {measured['on']} ({human_bytes(int(measured['bytes']))}): "
            f"{measured['tokens_per_word']:.2f} tokens per word, {measured['bytes_per_token']:.1f} bytes per token, "
            f"{measured['whole_words']:.0%} of words one token (byte-level: no byte is unknown)"
        )
    except (KeyError, TypeError, ValueError):  # a hand-edited kantai.json: say so rather than fail
        return "coverage: not recorded"
