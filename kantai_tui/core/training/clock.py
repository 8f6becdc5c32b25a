"""Training time: a monotonic clock that does not count the time its process was frozen."""

from __future__ import annotations

import time
from collections.abc import Callable


class PauseAwareClock:
    """Seconds of ``clock``, less the time the trainer spent stopped (SIGSTOP or Ctrl-Z, until SIGCONT).

    Training time drives the lr schedule, the end of a ``--time`` budget, the ETA and tokens/s: a trainer
    frozen for an hour counted that hour as training, so it ended its budget early and logged a rate
    near zero. SIGSTOP cannot be caught but SIGCONT can: after one, the whole gap since the previous
    reading is taken as the pause (the step that was running when it froze is lost from the count,
    a step's worth at most). ``continued`` only sets a flag, so it is safe in a signal handler.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._last: float | None = None
        self._paused = 0.0
        self._continued = False

    def continued(self) -> None:
        """The process was just continued after a stop (the SIGCONT handler calls this)."""
        self._continued = True

    def __call__(self) -> float:
        now = self._clock()
        if self._continued and self._last is not None:
            self._paused += now - self._last
        self._continued = False
        self._last = now
        return now - self._paused

    @property
    def paused_s(self) -> float:
        """Seconds left out so far."""
        return self._paused
