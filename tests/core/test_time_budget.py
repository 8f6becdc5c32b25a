"""--time: the lr schedule follows the clock, the run ends at the budget with final/, resume keeps what is left."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from kantai_tui.core.errors import BadInputError
from kantai_tui.core.training.config import (
    DEFAULT_EPOCHS,
    DEFAULT_TIME_S,
    TrainConfig,
    parse_duration,
    run_length,
)
from kantai_tui.core.training.events import RunFinished, RunStarted, StepLogged
from kantai_tui.core.training.step import lr_at, progress
from kantai_tui.core.training.trainer import Trainer


class HandClock:
    """Seconds that move only when the test says: one second per training step (a step calls should_stop)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def tick(self) -> bool:
        self.now += 1.0
        return False


@pytest.fixture
def cfg(small_corpus: Path, small_tokenizer: Path) -> TrainConfig:
    return TrainConfig(
        corpus=str(small_corpus),
        tokenizer_dir=str(small_tokenizer),
        block_size=32,
        batch_size=8,
        epochs=None,
        time_s=10.0,
        log_every=1,
        eval_every=100,
        checkpoint_every=100,
        lr=1e-3,
        seed=5,
    ).resolved()


def test_a_time_budget_ends_the_run_there_with_the_lr_at_zero_and_a_final_model(
    cfg: TrainConfig, tmp_path: Path
) -> None:
    clock = HandClock()
    trainer = Trainer(cfg, tmp_path / "run", clock=clock)
    events = list(trainer.events(clock.tick))
    started, steps = events[0], [e for e in events if isinstance(e, StepLogged)]
    assert isinstance(started, RunStarted) and started.total_steps is None and started.time_s == 10.0
    # should_stop ticks before each step, so step k ends at k seconds; the step that reaches 10 s is the last
    assert [s.step for s in steps] == list(range(1, 11))
    assert steps[-1].progress == 1.0 and steps[-1].lr == 0.0
    assert [round(s.progress, 2) for s in steps[:3]] == [0.1, 0.2, 0.3]
    finished = events[-1]
    assert isinstance(finished, RunFinished) and not finished.stopped and finished.final_dir
    assert (Path(finished.final_dir) / "model.safetensors").is_file()


def test_a_resumed_time_budget_trains_only_what_is_left(cfg: TrainConfig, tmp_path: Path) -> None:
    clock = HandClock()
    first = Trainer(cfg, tmp_path / "run", clock=clock)
    stopped = list(first.events(lambda: clock.tick() or first.state.step >= 4))
    assert isinstance(stopped[-1], RunFinished) and stopped[-1].stopped and stopped[-1].step == 4
    clock = HandClock()  # a new process: its clock starts anywhere; the budget spent is in the checkpoint
    clock.now = 1000.0
    second = Trainer(cfg, tmp_path / "run", clock=clock)
    assert second.state.elapsed_s == pytest.approx(4.0)  # steps 1-4 ended at 1, 2, 3, 4 s
    events = list(second.events(clock.tick))
    steps = [e.step for e in events if isinstance(e, StepLogged)]
    assert steps == list(range(5, 11)) and not events[-1].stopped  # the same last step as an unbroken run


def test_steps_and_time_together_end_at_whichever_comes_first(cfg: TrainConfig, tmp_path: Path) -> None:
    clock = HandClock()
    trainer = Trainer(replace(cfg, max_steps=5), tmp_path / "steps-first", clock=clock)
    assert [e.step for e in trainer.events(clock.tick) if isinstance(e, StepLogged)][-1] == 5
    clock = HandClock()
    trainer = Trainer(replace(cfg, max_steps=500, time_s=3.0), tmp_path / "time-first", clock=clock)
    assert [e.step for e in trainer.events(clock.tick) if isinstance(e, StepLogged)][-1] == 3


def test_a_real_clock_budget_ends_near_it(cfg: TrainConfig, tmp_path: Path) -> None:
    """Wall clock, not a hand clock: a 2 s budget on a real model ends after 2 s of training, not before."""
    trainer = Trainer(replace(cfg, time_s=2.0, log_every=1000), tmp_path / "real")
    events = list(trainer.events())
    last = [e for e in events if isinstance(e, StepLogged)][-1]
    assert last.elapsed_s >= 2.0 and last.progress == 1.0 and not events[-1].stopped


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [("linear", [0.0, 0.5, 1.0, 0.5, 0.0]), ("wsd", [0.0, 0.5, 1.0, 1.0, 0.0]), ("cosine", [0.0, 0.5, 1.0, 0.5, 0.0])],
)
def test_schedules_warm_up_then_fall_to_zero(cfg: TrainConfig, schedule: str, expected: list[float]) -> None:
    shaped = replace(cfg, schedule=schedule, warmup_ratio=0.2, lr=1.0)
    assert [round(lr_at(p, shaped), 6) for p in (0.0, 0.1, 0.2, 0.6, 1.0)] == expected


def test_progress_is_the_further_of_steps_and_clock(cfg: TrainConfig) -> None:
    assert progress(5, 1.0, replace(cfg, time_s=None), 10) == 0.5
    assert progress(5, 8.0, cfg, 10) == 0.8  # 8 s of a 10 s budget is further than 5 of 10 steps
    assert progress(50, 20.0, cfg, 10) == 1.0


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("10m", 600), ("1h30m", 5400), ("2.5m", 150), ("600", 600), (" 5M ", 300)]
)
def test_durations_people_write(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the time budget is empty; write it like 90s, 10m or 1h30m"),
        ("ten minutes", "'ten minutes' is not a time budget; write it like 90s, 10m or 1h30m"),
        ("1h30", "'1h30' is not a time budget; write it like 90s, 10m or 1h30m"),
    ],
)
def test_bad_durations_say_how_to_write_one(text: str, message: str) -> None:
    with pytest.raises(BadInputError) as caught:
        parse_duration(text)
    assert str(caught.value) == message


def test_a_run_given_no_length_gets_the_default_epochs_or_time(cfg: TrainConfig) -> None:
    assert run_length(None, None, None) == {"epochs": DEFAULT_EPOCHS, "max_steps": None, "time_s": DEFAULT_TIME_S}
    assert run_length(None, None, 60.0) == {"epochs": None, "max_steps": None, "time_s": 60.0}
    assert run_length(2.0, None, None) == {"epochs": 2.0, "max_steps": None, "time_s": None}
    with pytest.raises(BadInputError, match="the run has no length: give --epochs, --max-steps or --time"):
        replace(cfg, time_s=None).resolved()
    with pytest.raises(BadInputError, match=r"--time 0.5s must be between 1 second and 115 days"):
        replace(cfg, time_s=0.5).resolved()
