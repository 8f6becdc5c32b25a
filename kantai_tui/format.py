"""Each human-facing rule computed once: durations and ETA, loss smoothing, sizes and percentages,
run names, model labels, the device summary line.

The CLI, ``kantai follow`` and the TUI all call these, so the same step shows the same smoothed
loss, the same ETA and the same label wherever it is read. Plain strings and numbers only: no
rich, no textual, no IO.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kantai_tui.core.runs.folder import kept_after_resume

if TYPE_CHECKING:
    from kantai_tui.core.device import DeviceSnapshot

NA = "—"
SMOOTHING = 0.1  # weight of the newest loss in the moving average


def duration(seconds: float) -> str:
    """3,725 s -> '1h02m'; 125 s -> '2m05s' (never more precision than a person reads)."""
    whole = max(int(seconds), 0)
    if whole >= 3600:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 60}m{whole % 60:02d}s"


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


@dataclass
class Smoother:
    """The smoothed training loss: a debiased exponential moving average over the logged losses, in step order.

    The average starts from zero and is divided by (1 - beta^n) after n points (as Adam debiases its
    moments), so the first values follow the points instead of staying near the first loss. It is a
    function of the logged points only, never of how many are drawn or how wide the chart is, and
    it keeps its points so a resume can rewind it (``rewind``) by the same rule the run folder's
    readers use: the TUI's chart and status line and ``kantai follow`` agree at every step.
    """

    steps: list[int] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    smooth: list[float] = field(default_factory=list)

    def add(self, step: int, loss: float | None) -> float | None:
        """Fold in one logged loss; a missing or non-finite one is skipped. Returns the smoothed value."""
        if loss is None or not math.isfinite(loss):
            return self.last
        beta, n = 1 - SMOOTHING, len(self.smooth)
        # the running average before debiasing, recovered from the last smoothed value (so a rewind needs no state)
        average = self.smooth[-1] * (1 - beta**n) if n else 0.0
        average = beta * average + (1 - beta) * loss
        self.steps.append(step)
        self.raw.append(loss)
        self.smooth.append(average / (1 - beta ** (n + 1)))
        return self.last

    def rewind(self, start_step: int) -> None:
        """Forget points a resume from ``start_step`` trains again."""
        keep = sum(1 for s in self.steps if kept_after_resume(s, start_step))
        del self.steps[keep:], self.raw[keep:], self.smooth[keep:]

    def clear(self) -> None:
        self.steps.clear()
        self.raw.clear()
        self.smooth.clear()

    @property
    def last(self) -> float | None:
        return self.smooth[-1] if self.smooth else None


def loss_text(value: float | None, digits: int = 4) -> str:
    return NA if value is None else f"{value:.{digits}f}"


def number(value: float | None, spec: str) -> str:
    """A figure a metrics row may lack (a null, a hand edit): formatted by ``spec``, or '—'."""
    return NA if value is None else format(value, spec)


def human_bytes(size: int) -> str:
    """1,820,953 -> '1.7 MiB'."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


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
