"""The one smoothing rule of training loss curves: a debiased exponential moving average over the logged
points. The TUI's chart and status line, ``kantai follow`` and ``kantai compare`` all use ``Smoother``
(``format`` re-exports it for the views), so the same step reads the same smoothed loss everywhere."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from kantai_tui.core.runs.folder import kept_after_resume

SMOOTHING = 0.1  # weight of the newest loss in the moving average


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


def smoothed_last(step_rows: list[dict]) -> float | None:
    """The smoothed loss after a run's step rows (a trajectory: each step once, in order)."""
    smoother = Smoother()
    for row in step_rows:
        smoother.add(row["step"], row.get("loss"))
    return smoother.last
