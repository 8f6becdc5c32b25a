"""The shared human-facing rules (kantai_tui/format.py): one implementation the CLI and the TUI both call."""

from __future__ import annotations

import math

import pytest

from kantai_tui.format import (
    Smoother,
    default_run_name,
    duration,
    eta,
    gib_of,
    length_text,
    model_label,
    quality_text,
    row_progress,
)


def test_duration_and_eta() -> None:
    assert duration(125) == "2m05s" and duration(3725) == "1h02m" and duration(-3) == "0m00s"
    assert eta(None, (0.1, 5.0)) == "—"  # one log step is no rate yet
    assert eta((0.1, 5.0), (0.1, 5.0)) == "—"
    assert eta((0.1, 5.0), (0.2, 10.0)) == "0m40s"  # 50 s per unit of progress from the first log step, 0.8 left


def test_eta_follows_progress_by_steps_or_by_the_clock() -> None:
    assert row_progress({"step": 20}, 100) == 0.2  # a row from before the progress field: steps
    assert row_progress({"step": 20, "progress": 0.5}, 100) == 0.5  # a --time run: the clock is further
    assert row_progress({"step": 20}, None) is None
    # a 60 s budget: at 30 s of 60 the ETA is the rest of the budget, whatever the step count
    assert eta((0.25, 15.0), (0.5, 30.0)) == "0m30s"


def test_length_and_quality_texts() -> None:
    assert length_text(2790, None) == "2,790 steps"
    assert length_text(None, 600) == "10m00s of training"
    assert length_text(2790, 600) == "2,790 steps or 10m00s of training, whichever comes first,"
    row = {"eval_loss": 5.5, "mask_acc": 0.2, "content_acc": 0.05, "cloze_hits1": 0.1, "cloze_hits5": 0.25}
    assert quality_text(row) == "loss 5.5000 · masked 20.0% · content words 5.0% · cloze @1 10% @5 25%"
    assert quality_text({"eval_loss": 5.5, "mask_acc": 0.2}) == "loss 5.5000 · masked 20.0%"  # an old run's row


def test_smoother_skips_missing_losses_and_rewinds_like_the_trajectory() -> None:
    loss = Smoother()
    assert loss.add(1, 10.0) == 10.0
    assert loss.add(2, None) == 10.0 and loss.add(3, math.nan) == 10.0  # skipped, not reset
    assert loss.add(4, 0.0) == pytest.approx(0.9 / 0.19)  # debiased: 0.9 * 0.1 * 10 / (1 - 0.9**2)
    loss.add(5, 100.0)
    loss.rewind(4)
    assert loss.steps == [1, 4] and loss.last == pytest.approx(0.9 / 0.19)


def test_labels() -> None:
    assert default_run_name("tiny", "packed", now=0).startswith("tiny-packed-19")
    assert model_label("kant/step-00000018") == "kant · step 18" and model_label("kant/final") == "kant · final"
    assert gib_of(None, 2**30) == "—" and gib_of(2**30, 2 * 2**30) == "1.0/2 GiB"


def test_the_smoothed_loss_is_a_debiased_ema_of_the_logged_points() -> None:
    """Issue 14, item 22: one rule for the TUI (chart, status line) and `kantai follow`: an exponential moving
    average started from zero and divided by (1 - beta^n), so the early values are not held at the first point
    (the old EMA started at the first loss: 9.8 here where the points say 8.9)."""
    from kantai_tui.format import SMOOTHING

    losses = [10.0, 8.0, 7.5, 6.0, 6.5, 5.0]
    beta, average, expected = 1 - SMOOTHING, 0.0, []
    for n, value in enumerate(losses, 1):
        average = beta * average + (1 - beta) * value
        expected.append(average / (1 - beta**n))
    smoother = Smoother()
    for step, value in enumerate(losses, 1):
        smoother.add(step * 10, value)
    assert smoother.smooth == [pytest.approx(v, rel=1e-12) for v in expected]
    smoother.rewind(30)  # a resume from step 30: the later points are trained again and smoothed the same way
    for step, value in ((40, 6.0), (50, 6.5), (60, 5.0)):
        smoother.add(step, value)
    assert smoother.smooth == [pytest.approx(v, rel=1e-12) for v in expected]


STARTED = {
    "kind": "started",
    "run": "r",
    "total_steps": 9_300,
    "start_step": 0,
    "flops_per_token": 5_400_000,
    "peak_tflops": 0.44,
    "peak_source": "measured bf16 matmul, 2 threads, AMD EPYC",
    "flop_model": "6·N + 12·L·T·H per token (N: encoder and LM-head weights), LM head at masked positions only",
}
STEP = {"kind": "step", "step": 1_200, "loss": 6.1234, "lr": 4.12e-4, "tokens_per_s": 28_912.0, "progress": 0.129}


def test_speed_text_names_the_peak_and_shows_what_an_old_row_lacks_as_unknown() -> None:
    from kantai_tui.format import speed_text

    row = {**STEP, "tflops": 0.1561, "mfu": 0.3548, "data_wait": 0.0312}
    assert speed_text(row, STARTED) == (
        "28.9k tok/s · 0.156 TFLOP/s · MFU 35% of 0.44 TFLOP/s measured bf16 matmul · data 3.1%"
    )
    assert speed_text(row, STARTED, peak=False) == "28.9k tok/s · 0.156 TFLOP/s · MFU 35% · data 3.1%"
    gpu = {**row, "tflops": 423.4, "mfu": 0.428, "data_wait": 0.2}
    h200 = {"peak_tflops": 989.0, "peak_source": "NVIDIA H200 nominal dense bf16"}
    assert (
        speed_text(gpu, h200)
        == "28.9k tok/s · 423 TFLOP/s · MFU 43% of 989 TFLOP/s NVIDIA H200 nominal dense bf16 · data 20%"
    )
    # a row from before kantai logged speed, and one from a GPU without a known peak
    assert speed_text(STEP, {"kind": "started"}) == "28.9k tok/s"  # a row from before speed figures
    assert speed_text({**row, "mfu": None}, {}) == "28.9k tok/s · 0.156 TFLOP/s · MFU — · data 3.1%"
    assert speed_text({"kind": "step", "step": 1}) == "— tok/s"


def test_the_follow_line_carries_the_speed_and_fits_120_columns(capsys: pytest.CaptureFixture[str]) -> None:
    from kantai_tui.cli.render import EventPrinter

    printer = EventPrinter()
    printer.row({**STARTED, "device": "cpu (bf16 autocast)", "parameters": 1_982_080, "tokens_per_step": 4_096})
    printer.row({**STEP, "epoch": 12.9, "tflops": 0.1561, "mfu": 0.3548, "data_wait": 0.0312, "elapsed_s": 60.0})
    printer.row({"kind": "eval", "step": 1_200, "eval_loss": 6.5})
    started, speed, step, evaluation = capsys.readouterr().out.splitlines()
    assert started.startswith("run r: 9,300 steps from the start on cpu (bf16 autocast)")
    assert speed == (
        "  speed: 5.4 MFLOP/token, 6·N + 12·L·T·H per token (N: encoder and LM-head weights), LM head at masked "
        "positions only; MFU of 0.44 TFLOP/s, measured bf16 matmul, 2 threads, AMD EPYC"
    )
    assert step == (
        "step  1,200/9,300  loss 6.1234  smooth 6.1234  lr 4.12e-04  28.9k tok/s · 0.156 TFLOP/s · MFU 35% · "
        "data 3.1%  ETA —"
    )
    assert len(step.replace("ETA —", "ETA 1h02m")) <= 120
    assert evaluation == "  eval @ step 1,200 (epoch 12.90): loss 6.5000"


def test_an_old_runs_started_row_says_nothing_of_speed(capsys: pytest.CaptureFixture[str]) -> None:
    from kantai_tui.cli.render import EventPrinter

    printer = EventPrinter()
    printer.row({"kind": "started", "run": "old", "total_steps": 10, "start_step": 0})
    printer.row({"kind": "step", "step": 5, "loss": 7.0, "tokens_per_s": 900.0})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "speed" not in lines[0]
    assert "900 tok/s  ETA" in lines[1]


def test_steps_of_a_run_only_a_time_budget_bounds_have_no_total() -> None:
    from kantai_tui.format import steps_text

    assert (steps_text(363, None), steps_text(1200, 3344), steps_text(None, 10)) == ("363", "1,200/3,344", "—")


# the started row of a CUDA run: its fields as the trainer writes them (values from the H200 measurements in
# docs/BENCHMARKS.md; written by hand, there being no GPU here)
CUDA_STARTED = {
    **STARTED,
    "device": "cuda (bf16 autocast, compiled with CUDA graphs)",
    "peak_tflops": 989.0,
    "peak_source": "NVIDIA H200 nominal dense bf16",
    "matmul_tflops": 792.0,
    "matmul_source": "measured bf16 matmul, NVIDIA H200",
    "batch_reason": "batch 256 chosen by measuring on NVIDIA H200: 32: 358 k tokens/s, 256: 1.06 M tokens/s; "
    "512 was not 10% faster: the device is full",
}


def test_a_gpu_runs_mfu_is_against_the_nominal_peak_with_the_measured_share_beside_it() -> None:
    from kantai_tui.format import speed_text

    gpu = {**STEP, "tokens_per_s": 1.06e6, "tflops": 315.9, "mfu": 0.3194, "data_wait": 0.02}
    assert speed_text(gpu, CUDA_STARTED) == (
        "1.06M tok/s · 316 TFLOP/s · MFU 32% of 989 TFLOP/s NVIDIA H200 nominal dense bf16 (40% of measured) · data 2.0%"
    )
    assert speed_text(gpu, CUDA_STARTED, peak=False) == "1.06M tok/s · 316 TFLOP/s · MFU 32% · data 2.0%"
    assert "of measured" not in speed_text(gpu, STARTED)  # a CPU's peak is the measurement itself


def test_follow_says_both_peaks_and_why_the_batch_once(capsys: pytest.CaptureFixture[str]) -> None:
    from kantai_tui.cli.render import EventPrinter

    EventPrinter().row({**CUDA_STARTED, "parameters": 83_504_416, "tokens_per_step": 32_768})
    started, speed, batch = capsys.readouterr().out.splitlines()
    assert started.startswith("run r: 9,300 steps from the start on cuda (bf16 autocast, compiled with CUDA graphs)")
    assert speed.endswith(
        "MFU of 989 TFLOP/s, NVIDIA H200 nominal dense bf16; 792 TFLOP/s measured bf16 matmul, NVIDIA H200"
    )
    assert batch == f"  {CUDA_STARTED['batch_reason']}"
