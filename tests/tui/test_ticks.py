"""The chart's ticks: round values, at least four per axis, labelled as people write them."""

from __future__ import annotations

import itertools
import math

import pytest

from kantai_tui.tui.widgets import ticks


def test_counts_and_durations_read_as_people_write_them() -> None:
    assert [ticks.count_label(v) for v in (0, 12, 999, 1500, 250_000, 1_250_000, 3_400_000)] == [
        "0",
        "12",
        "999",
        "1.5k",
        "250k",
        "1.25M",
        "3.4M",
    ]
    assert [ticks.time_label(s) for s in (0, 15, 45, 60, 90, 150, 3600, 5400, 129_600)] == [
        "0",
        "15s",
        "45s",
        "1m",
        "1m30s",
        "2m30s",
        "1h",
        "1h30m",
        "1d12h",
    ]


def test_y_labels_take_the_decimals_their_ticks_need() -> None:
    assert ticks.value_labels([6.0, 6.5, 7.0]) == ["6.0", "6.5", "7.0"]  # one count for a linear axis
    assert ticks.value_labels([5.0, 7.5, 10.0], log=True) == ["5", "7.5", "10"]  # each its own on a log one
    assert ticks.value_labels([0.0, 2.5e-4, 5e-4]) == ["0", "2.5e-4", "5e-4"]
    assert ticks.value_labels([0.05, 0.1, 0.15], percent=True) == ["5%", "10%", "15%"]


@pytest.mark.parametrize(("low", "high"), [(5.9, 8.2), (0.0, 1.0), (1e-4, 1e-3), (6.0, 6.0), (-2.0, 3.0), (0.1, 0.11)])
def test_a_linear_axis_has_at_least_four_round_ticks_around_the_data(low: float, high: float) -> None:
    found = ticks.linear_ticks(low, high, most=6)
    assert len(found) >= ticks.MIN_TICKS and found[0] <= low and found[-1] >= high
    steps = {round(b - a, 12) for a, b in itertools.pairwise(found)}
    assert len(steps) == 1  # evenly spaced


def test_a_linear_axis_is_the_one_the_data_fills_best() -> None:
    assert ticks.linear_ticks(5.9, 8.2, most=5) == [5.0, 6.0, 7.0, 8.0, 9.0]  # not 4 6 8 10


@pytest.mark.parametrize(("low", "high"), [(5.9, 8.2), (5.8, 10.9), (1e-5, 1e-3), (0.1, 0.15), (6.0, 6.0)])
def test_a_log_axis_spans_the_1_2_5_values_around_the_data(low: float, high: float) -> None:
    found = ticks.log_ticks(low, high)
    assert len(found) >= ticks.MIN_TICKS and found[0] <= low and found[-1] >= high
    for end in (found[0], found[-1]):
        assert round(end / 10 ** math.floor(math.log10(end)), 9) in (1, 2, 5)


def test_log_ticks_differ_from_linear_ones_on_a_narrow_range() -> None:
    """A loss between 5.9 and 8.2: the linear axis 5 … 9, the log one 5 … 10 (what makes the toggle show)."""
    assert ticks.log_ticks(5.9, 8.2) == [5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert ticks.log_ticks(1e-5, 1e-3) == [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3]


@pytest.mark.parametrize("high", [3, 60, 200, 230, 1234, 819_200, 1_234_567])
def test_count_and_time_axes_start_at_zero_with_at_least_four_ticks(high: float) -> None:
    for found in (ticks.count_ticks(high), ticks.time_ticks(high)):
        assert found[0] == 0 and len(found) >= ticks.MIN_TICKS and found[-1] <= high


def test_time_ticks_are_clock_steps() -> None:
    assert ticks.time_ticks(150) == [0, 30, 60, 90, 120, 150]
    assert ticks.time_ticks(5000) == [0, 900, 1800, 2700, 3600, 4500]  # quarter hours, not 1,000 s
