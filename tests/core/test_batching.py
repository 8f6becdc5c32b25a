"""The batch a run picks when none is given (batching.py): the policy on measured figures, and a real
measurement on this CPU that leaves no trace in the run."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from kantai_tui.core.training import batching
from kantai_tui.core.training.batching import Trial
from kantai_tui.core.training.config import PACKED_LR, TrainConfig
from kantai_tui.core.training.events import RunStarted, StepLogged
from tests.helpers import tiny_config

# tokens/s measured on an H200 with the kantai preset, compiled, no CUDA graphs (benchmarks/results/h200-kantai-b*.json)
H200 = [Trial(32, 357_903.0), Trial(256, 1_057_032.0), Trial(512, 1_126_048.0)]


@pytest.fixture
def flat_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every batch as efficient per token as 32: the choice then follows tokens/s alone."""
    monkeypatch.setattr(batching, "TOKEN_COST", {32: 1.0, 64: 1.0})


def test_with_no_token_cost_the_largest_batch_within_the_margin_of_the_fastest_wins(flat_cost: None) -> None:
    assert batching.pick(H200).batch == 512  # 1.126 M beats 1.057 M by more than MARGIN (6.5%)
    close = [Trial(32, 100.0), Trial(64, 103.0), Trial(128, 104.5), Trial(256, 95.0)]  # within MARGIN: ties
    assert batching.pick(close).batch == 128  # a tie goes to the bigger batch: as fast now, better later


def test_a_batch_that_costs_tokens_must_pay_for_them_in_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    # the measured table: 256 runs 2.95x as fast as 32 on the H200, but needs 8x the tokens
    assert batching.pick(H200).batch == 32
    monkeypatch.setattr(batching, "TOKEN_COST", {32: 1.0, 128: 1.5, 256: 2.0})
    # 256: 1.057 M / 2.0 = 0.53 M per unit of cost against 32's 0.36 M; 512 extrapolated: 2.67 → 0.42 M
    assert batching.pick(H200).batch == 256
    assert batching.token_cost(512) == pytest.approx(2.0 * (2.0 / 1.5), rel=1e-6)


def test_the_cost_table_extrapolates_per_doubling_and_below_it_is_flat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batching, "TOKEN_COST", {32: 1.0, 128: 1.44})
    assert batching.token_cost(512) == pytest.approx(1.44 * 1.44)  # 1.2 per doubling from the last two
    assert batching.token_cost(16) == 1.0


def test_a_batch_over_the_memory_limit_is_never_picked(flat_cost: None) -> None:
    trials = [Trial(32, 100.0, 10), Trial(64, 200.0, 20), Trial(128, 400.0, 90)]
    assert batching.pick(trials, memory_limit=50).batch == 64


def test_under_torchrun_the_token_cost_is_the_global_batchs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batching, "TOKEN_COST", {32: 1.0, 64: 1.0, 128: 3.0})
    trials = [Trial(32, 100.0), Trial(64, 190.0)]
    assert batching.pick(trials).batch == 64
    assert batching.pick(trials, world=2).batch == 32  # 64 per process is 128 in all: three times the tokens


def test_measuring_stops_once_a_doubling_gains_little(flat_cost: None) -> None:
    rates = {32: 0.010, 64: 0.012, 128: 0.020, 256: 0.038, 512: 0.080}  # seconds per pass
    tried: list[int] = []

    def time_batch(batch: int) -> tuple[float, int | None]:
        tried.append(batch)
        return rates[batch], None

    trials = batching.measure(time_batch, [32, 64, 128, 256, 512], 128, None, lambda err: False)
    # 64 is 1.67x faster than 32, 128 only 1.2x than 64, 256 1.05x than 128: the device is full
    assert tried == [32, 64, 128, 256]
    assert [round(t.tokens_per_s or 0) for t in trials] == [409_600, 682_667, 819_200, 862_316]


def test_measuring_stops_once_no_bigger_batch_can_catch_up_with_its_token_cost() -> None:
    """With the measured table a doubling must about double tokens/s: a launch-bound GPU goes on (64 takes
    2% longer per pass than 32), and stops at the first that falls out of MARGIN (128: 5% longer)."""
    seconds = {32: 0.0100, 64: 0.0102, 128: 0.0105, 256: 0.0110}
    tried: list[int] = []

    def time_batch(batch: int) -> tuple[float, int | None]:
        tried.append(batch)
        return seconds[batch], None

    trials = batching.measure(time_batch, [32, 64, 128, 256], 128, None, lambda err: False)
    assert tried == [32, 64, 128]
    assert batching.pick(trials).batch == 64  # its score is within 5% of 32's: a tie, to the larger


def test_measuring_stops_at_out_of_memory_and_before_a_batch_that_would_not_fit(flat_cost: None) -> None:
    def out_at_128(batch: int) -> tuple[float, int | None]:
        if batch == 128:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return 0.01, batch * 10  # as fast per pass at any batch: each doubling doubles the rate

    oom = batching.measure(out_at_128, [32, 64, 128, 256], 128, None, lambda err: "out of memory" in str(err))
    assert [(t.batch, t.tokens_per_s is None) for t in oom] == [(32, False), (64, False), (128, True)]
    assert batching.pick(oom).batch == 64
    # 64 used 640 bytes: 128 would use about 1,280, over a limit of 1,000, so it is not tried
    fits = batching.measure(
        lambda b: (b / 1e6 if b < 64 else b / 2e6, b * 10), [32, 64, 128], 128, 1000, lambda e: True
    )
    assert [t.batch for t in fits] == [32, 64]


def test_an_error_that_is_not_out_of_memory_is_raised_not_taken_for_a_full_device() -> None:
    def broken(batch: int) -> tuple[float, int | None]:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    with pytest.raises(RuntimeError, match="illegal memory access"):
        batching.measure(broken, [32, 64], 128, None, lambda err: "out of memory" in str(err))


def test_candidates_are_the_batches_the_corpus_fills() -> None:
    assert batching.candidates(10_000) == [32, 64, 128, 256, 512, 1024]
    assert batching.candidates(300) == [32, 64, 128, 256]
    assert batching.candidates(300, world=4) == [32, 64]
    assert batching.candidates(20) == [32]  # too small even for 32: Batches says so in its own words


def test_the_lr_follows_the_square_root_of_the_batch() -> None:
    assert batching.lr_for(32, 5e-4) == 5e-4
    assert batching.lr_for(128, 5e-4) == pytest.approx(1e-3)
    assert batching.lr_for(512, 2e-3) == pytest.approx(8e-3)


def test_the_reason_names_the_device_the_figures_and_the_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batching, "TOKEN_COST", {32: 1.0, 64: 1.5, 128: 2.5})
    trials = [Trial(32, 357_903.0), Trial(64, 600_000.0), Trial(128, 620_000.0)]
    chosen = batching.pick(trials)
    line = batching.reason(chosen, trials, "NVIDIA H200", batching.lr_for(64, 5e-4), 5e-4)
    assert line == (
        "batch 64 chosen by measuring on NVIDIA H200: 32: 358 k tokens/s, 64: 600 k tokens/s, 128: 620 k tokens/s; "
        "128 ran 1.03× as fast but needs 1.67× the tokens to learn as much (bench_batch.py); "
        "lr 0.00071 (the recipe's 0.0005 at 32, scaled by √(64/32))"
    )
    oom = [Trial(32, 1e6), Trial(64, None)]
    assert "64 ran out of memory" in batching.reason(batching.pick(oom), oom, "a GPU", None, None)
    assert "\n" not in line


# --- the config and a real measurement ------------------------------------------------------------


def _cfg(small_corpus: Path, small_tokenizer: Path, **changes: object) -> TrainConfig:
    fields = {"batch_size": None, "max_steps": 6, "log_every": 1, "eval_every": 10**6, "device": "cpu"}
    cfg = tiny_config(small_corpus, tokenizer_dir=str(small_tokenizer), **{**fields, **changes})
    return replace(cfg, checkpoint_every=10**6)


def test_only_a_gpu_run_or_one_asked_to_measure_leaves_its_batch_and_lr_to_the_trainer(
    small_corpus: Path, small_tokenizer: Path
) -> None:
    cpu = _cfg(small_corpus, small_tokenizer).resolved()
    assert (cpu.batch_size, cpu.lr) == (32, PACKED_LR["tiny"])
    assert (_cfg(small_corpus, small_tokenizer, device="auto").resolved(cuda=True).batch_size) is None
    measured = _cfg(small_corpus, small_tokenizer, measure_batch=True).resolved()
    assert (measured.batch_size, measured.lr) == (None, None)
    given_lr = _cfg(small_corpus, small_tokenizer, measure_batch=True, lr=1e-3).resolved()
    assert given_lr.lr == 1e-3 and given_lr.with_batch(128, 5.0).lr == 1e-3  # a given lr is never scaled
    seed = _cfg(small_corpus, small_tokenizer, recipe="seed").resolved(cuda=True)
    assert seed.batch_size == 64  # the tutorial's pipeline keeps the tutorial's batch


def test_a_measured_batch_on_this_cpu_is_said_and_leaves_the_run_as_if_it_were_given(
    small_corpus: Path, small_tokenizer: Path, tmp_path: Path
) -> None:
    from kantai_tui.core.training.trainer import Trainer

    measured = Trainer(_cfg(small_corpus, small_tokenizer, measure_batch=True).resolved(), tmp_path / "m")
    choice = measured.batch_choice
    assert choice is not None and choice.trials and choice.trials[0].batch == 32
    assert measured.cfg.batch_size == choice.batch and measured.cfg.lr == pytest.approx(choice.lr)
    assert choice.reason.startswith(f"batch {choice.batch} chosen by measuring on this CPU: 32: ")
    events = list(measured.events())
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.batch_reason == choice.reason
    given = Trainer(
        _cfg(small_corpus, small_tokenizer, batch_size=choice.batch, lr=choice.lr).resolved(), tmp_path / "g"
    )
    assert given.batch_choice is None
    losses = [e.loss for e in given.events() if isinstance(e, StepLogged)]
    assert [e.loss for e in events if isinstance(e, StepLogged)] == losses  # same weights, masks and dropout


def test_the_cli_records_the_batch_the_trainer_picked_in_run_json(
    small_corpus: Path, small_tokenizer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kantai_tui.cli import main

    code = main(
        [
            "train", str(small_corpus), "--tokenizer", str(small_tokenizer), "--runs-dir", str(tmp_path),
            "--run", "auto", "--batch-size", "auto", "--block-size", "32", "--max-steps", "2", "--device", "cpu",
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    config = json.loads((tmp_path / "auto" / "run.json").read_text())["config"]
    assert isinstance(config["batch_size"], int) and config["measure_batch"] is True
    assert math.isclose(config["lr"], batching.lr_for(config["batch_size"], PACKED_LR["tiny"]))
    assert f"  batch {config['batch_size']} chosen by measuring on this CPU: " in out


def test_auto_with_the_tutorials_recipe_is_refused_in_one_line(
    small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kantai_tui.cli import main

    runs = tmp_path / "runs"
    code = main(["train", str(small_corpus), "--runs-dir", str(runs), "--recipe", "seed", "--batch-size", "auto"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "kantai: error: --batch-size auto measures packed runs; --recipe seed trains the tutorial's batch of 64"
    )
    assert not runs.exists() or not any(runs.iterdir())  # refused before any run folder


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "argument --batch-size: 0 must be at least 1"),
        ("lots", "argument --batch-size: 'lots' is not a whole number"),
    ],
)
def test_a_bad_batch_size_is_one_line_naming_it(
    value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kantai_tui.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["train", str(tmp_path), "--batch-size", value])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
