"""Axis ticks people can read: round values, at least four per axis, labelled as people write them.

Steps and tokens read 0, 500, 1k, 2.5k, 3.4M; training time 0, 30s, 1m30s, 2h; accuracy 12%; learning
rates 2e-4. A linear y-axis is widened to the ticks around the data; a log one to the 1-2-5 values
around it (5 … 10 for a loss between 5.9 and 8.2), with ticks at every round value inside, so turning
log on moves and respaces the labels even on a chart a few rows high. Pure functions: the chart
(``loss_chart.py``) calls them for each frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from kantai_tui.format import count

MIN_TICKS = 4
STEP_MANTISSAS = (5.0, 2.5, 2.0, 1.0)  # the round steps of a count, largest first within a decade
# round steps of a duration in seconds: clock units, not powers of ten (15 s, 5 min, 6 h)
TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
# log-axis ticks, sparse to dense: mantissas of each power of ten
LOG_MANTISSAS = (
    (1.0,),
    (1.0, 2.0, 5.0),
    tuple(float(m) for m in range(1, 10)),
    tuple(m / 2 for m in range(2, 20)),
    tuple(m / 10 for m in range(10, 100)),
)


def round_steps(span: float) -> Iterator[float]:
    """Round step sizes (5, 2.5, 2, 1 × 10^k), largest first, from about ``span`` down."""
    exponent = math.floor(math.log10(span)) + 1 if span > 0 else 0
    for k in range(exponent, exponent - 15, -1):
        for mantissa in STEP_MANTISSAS:
            yield mantissa * 10.0**k


def linear_ticks(low: float, high: float, most: int = 2 * MIN_TICKS) -> list[float]:
    """Evenly spaced round ticks, the first at or below ``low`` and the last at or above ``high`` (the axis
    runs between them): of the round steps giving MIN_TICKS … ``most`` ticks, the one whose axis the data
    fills best (5.9 … 8.2 gets 5 6 7 8 9, not 4 6 8 10), the sparser on a tie; if no round step gives so
    few (0 … 1 in at most 4), the fewest above MIN_TICKS."""
    low, high = _spread(low, high)
    fits: list[tuple[float, list[float]]] = []
    for step in round_steps(high - low):
        first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
        if last - first + 1 < MIN_TICKS:
            continue
        ticks = [_clean(i * step) for i in range(first, last + 1)]
        if fits and len(ticks) > most:
            break
        fits.append(((high - low) / ((last - first) * step), ticks))
    within = [fit for fit in fits if len(fit[1]) <= most] or fits[:1]
    return max(within, key=lambda fit: fit[0] - 1e-9 * len(fit[1]))[1]


def log_ticks(low: float, high: float, want: int = MIN_TICKS) -> list[float]:
    """Ticks for a log axis over ``low`` … ``high`` (both > 0): the axis runs between the 1-2-5 values around
    them, ticked at the sparsest set of round values (decades; 1-2-5; every digit; every half or tenth of
    one) that gives at least ``want``."""
    bottom = max(v for v in _log_values(low, high, LOG_MANTISSAS[1]) if v <= low * (1 + 1e-9))
    top = min(v for v in _log_values(low, high, LOG_MANTISSAS[1]) if v >= high * (1 - 1e-9))
    if top <= bottom:
        top = next(v for v in _log_values(low, high * 3, LOG_MANTISSAS[1]) if v > bottom)
    ticks: list[float] = []
    for mantissas in LOG_MANTISSAS:
        ticks = [v for v in _log_values(bottom, top, mantissas) if bottom * (1 - 1e-9) <= v <= top * (1 + 1e-9)]
        if len(ticks) >= want:
            break
    return ticks


def _log_values(low: float, high: float, mantissas: tuple[float, ...]) -> list[float]:
    """Every mantissa × 10^k from the decade below ``low`` to the decade above ``high``, ascending."""
    values = []
    for k in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 2):
        values += [_clean(m * 10.0**k) for m in mantissas]
    return sorted(set(values))


def count_ticks(high: float, want: int = MIN_TICKS) -> list[float]:
    """Ticks of an x-axis of steps or tokens, 0 … ``high``: the largest round step giving ``want`` or more."""
    high = max(high, 1.0)
    for step in round_steps(high):
        if step >= 1 and math.floor(high / step + 1e-9) + 1 >= want:  # steps and tokens are whole
            return [_clean(i * step) for i in range(math.floor(high / step + 1e-9) + 1)]
    return [float(i) for i in range(math.floor(high) + 1)]


def time_ticks(high: float, want: int = MIN_TICKS) -> list[float]:
    """Ticks of an x-axis of training seconds, 0 … ``high``, at clock steps (15 s, 5 min, 1 h …)."""
    high = max(high, 1.0)
    for step in [s * 86400 for s in (64, 32, 16, 8, 4, 2)] + list(reversed(TIME_STEPS)):
        if math.floor(high / step + 1e-9) + 1 >= want:
            return [float(i * step) for i in range(math.floor(high / step + 1e-9) + 1)]
    return [high * i / (want - 1) for i in range(want)]  # under 3 s of training: tenths of it


def thin(ticks: list[float], most: int) -> list[float]:
    """Every other tick, as often as needed to keep at most ``most`` (never fewer than MIN_TICKS to start)."""
    while len(ticks) > max(most, MIN_TICKS) and len(ticks) >= 2 * MIN_TICKS - 1:
        ticks = ticks[::2]
    return ticks


def count_label(value: float) -> str:
    """12 -> '12', 1500 -> '1.5k', 3_400_000 -> '3.4M' (three significant digits at most): ``format.count``,
    the rule the runs table and compare use."""
    return count(value)


def time_label(seconds: float) -> str:
    """0 -> '0', 45 -> '45s', 150 -> '2m30s', 5400 -> '1h30m', 129600 -> '1d12h' (the two largest units)."""
    if seconds < 60:
        return f"{seconds:.2g}s" if seconds else "0"
    whole = round(seconds)
    units = [(whole // 86400, "d"), (whole % 86400 // 3600, "h"), (whole % 3600 // 60, "m"), (whole % 60, "s")]
    first = next(i for i, (n, _) in enumerate(units) if n)
    return "".join(f"{n}{unit}" for n, unit in units[first : first + 2] if n)


def value_labels(ticks: list[float], percent: bool = False, log: bool = False) -> list[str]:
    """Labels of a y-axis: as many decimals as its ticks need (one count for all ticks of a linear axis,
    so 6.0 6.5 7.0 line up; each tick its own on a log axis: 5 6 7 8 10 20); 2e-4 under 0.01; '%' when
    ``percent`` (values 0-1)."""
    values = [t * 100 if percent else t for t in ticks]
    suffix = "%" if percent else ""
    if not percent and any(0 < abs(v) < 1e-2 for v in values):
        return [scientific(v) for v in values]
    if any(abs(v) >= 1e4 for v in values):
        return [count_label(v) for v in values]
    if log:
        return [f"{v:.{_decimals(v)}f}{suffix}" for v in values]
    digits = max(_decimals(v) for v in values)
    return [f"{v:.{digits}f}{suffix}" for v in values]


def scientific(value: float) -> str:
    """2.5e-04 -> '2.5e-4'; 0 -> '0'."""
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _decimals(value: float) -> int:
    """The fewest decimals (up to 6) that write ``value`` exactly."""
    return next((d for d in range(7) if abs(round(value, d) - value) < 1e-9 * max(1.0, abs(value))), 6)


def _spread(low: float, high: float) -> tuple[float, float]:
    """A flat series (one value) still gets an axis: ±5% around it (±1 around 0)."""
    if high - low > 1e-12 * max(abs(low), abs(high), 1e-300):
        return low, high
    pad = abs(low) * 0.05 or 1.0
    return low - pad, high + pad


def _clean(value: float) -> float:
    """0.30000000000000004 -> 0.3: ticks are compared and printed, so no float noise."""
    return float(f"{value:.12g}")
