"""Progress of the long phases before training: scanning, tokenizer training, encoding, packing.

Why one type: the CLI's stderr bar, the run's status.json (which ``kantai follow`` and the TUI read
for a detached run) and the TUI's panes all show the same phase, amount done, rate and ETA, from one
rule (``format.progress_text``). Producers call a ``Report`` with (phase, done, total); ``Meter`` turns
that into ``Progress``, timed from the phase's first report, and lets a caller stop the work at the next report
(Ctrl-C, ``kantai stop``) by raising from its callback: every producer reports at least once a second
and leaves nothing half-made when a report raises.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

Report = Callable[[str, int, int], None]
"""Called with (phase, amount done, amount in all); the unit is the phase's (bytes unless said)."""


def silent(phase: str, done: int, total: int) -> None:
    """A Report that shows nothing (and never stops the work)."""


@dataclass(frozen=True)
class Progress:
    """One phase's standing: ``unit`` is "bytes" or another count ("blocks")."""

    phase: str
    done: int
    total: int
    elapsed_s: float
    unit: str = "bytes"

    def to_dict(self) -> dict:
        """The form kept in status.json (``preparation``) for observers of a detached run."""
        return asdict(self) | {"updated": time.time()}

    @classmethod
    def from_dict(cls, data: object, now: float | None = None) -> Progress | None:
        """What ``to_dict`` kept, its time brought up to ``now``; None for anything else (a hand-edited file)."""
        if not isinstance(data, dict):
            return None
        phase, unit = data.get("phase"), data.get("unit")
        numbers = [data.get(k) for k in ("done", "total", "elapsed_s", "updated")]
        if not isinstance(phase, str) or not all(type(n) in (int, float) for n in numbers):
            return None
        done, total, elapsed, updated = (float(n) for n in numbers)  # type: ignore[arg-type]  # checked above
        since = max(0.0, (time.time() if now is None else now) - updated)
        return cls(phase, int(done), int(total), elapsed + since, unit if isinstance(unit, str) else "bytes")


SHOW_AFTER_S = 1.0  # a phase is shown (and kept in status.json) once it has run this long
# the phases, named once: what every view shows (and tests wait for)
READING, MERGING, MEASURING, SAVING = "reading corpus", "learning merges", "measuring coverage", "saving"
ENCODING, PACKING, SCANNING = "encoding the token cache", "packing blocks", "scanning"
UNITS = {MERGING: "steps", PACKING: "blocks"}  # phases that do not count bytes


@dataclass
class Meter:
    """Turns reports into Progress, timing each phase from its first report; ``show`` hears at most
    ``every`` seconds apart (and always a phase's first and last report)."""

    show: Callable[[Progress], None]
    every: float = 0.25
    _phase: str = ""
    _began: float = 0.0
    _shown: float = field(default=0.0)

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase != self._phase:
            self._phase, self._began, self._shown = phase, now, 0.0
        last = 0 < total <= done  # a phase that cannot count (total 0) has no last report
        if now - self._shown < self.every and not last:
            return
        self._shown = now
        self.show(Progress(phase, done, total, now - self._began, UNITS.get(phase, "bytes")))
