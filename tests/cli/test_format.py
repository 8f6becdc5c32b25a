"""The shared human-facing rules (kantai_tui/format.py): one implementation the CLI and the TUI both call."""

from __future__ import annotations

import math

from kantai_tui.format import Smoother, default_run_name, duration, eta, gib_of, model_label


def test_duration_and_eta() -> None:
    assert duration(125) == "2m05s" and duration(3725) == "1h02m" and duration(-3) == "0m00s"
    assert eta(None, (10, 5.0), 100) == "—"  # one log step is no rate yet
    assert eta((10, 5.0), (10, 5.0), 100) == "—"
    assert eta((10, 5.0), (20, 10.0), 100) == "0m40s"  # 0.5 s a step from the first log step, 80 steps left
    assert eta((10, 5.0), (20, 10.0), None) == "—"


def test_smoother_skips_missing_losses_and_rewinds_like_the_trajectory() -> None:
    loss = Smoother()
    assert loss.add(1, 10.0) == 10.0
    assert loss.add(2, None) == 10.0 and loss.add(3, math.nan) == 10.0  # skipped, not reset
    assert loss.add(4, 0.0) == 9.0
    loss.add(5, 100.0)
    loss.rewind(4)
    assert loss.steps == [1, 4] and loss.last == 9.0


def test_labels() -> None:
    assert default_run_name("tiny", "packed", now=0).startswith("tiny-packed-19")
    assert model_label("kant/step-00000018") == "kant · step 18" and model_label("kant/final") == "kant · final"
    assert gib_of(None, 2**30) == "—" and gib_of(2**30, 2 * 2**30) == "1.0/2 GiB"
