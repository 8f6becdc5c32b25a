"""Pilot tests of the Training pane against real detached runs (real processes, tiny model)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from kantai_tui.core.runs import process
from kantai_tui.core.runs.folder import effective_state
from kantai_tui.core.training.config import TrainConfig
from kantai_tui.tui.app import KantaiApp
from kantai_tui.tui.panes.training import TrainingPane
from kantai_tui.tui.widgets.loss_chart import LossChart
from tests.helpers import workers_settled
from tests.tui.test_app import screen_text


async def until(pilot: Pilot, predicate, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.2)


async def test_pane_attaches_to_a_cli_started_run_and_follows_it(
    small_corpus: Path, small_tokenizer: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    cfg = TrainConfig(
        corpus=str(small_corpus),
        tokenizer_dir="",
        max_steps=20,
        batch_size=8,
        block_size=32,
        log_every=2,
        eval_every=10,
        checkpoint_every=1000,
    )
    process.create_run(runs, "watched", cfg, small_tokenizer)
    process.start_detached(runs, "watched")
    app = KantaiApp(corpus=small_corpus, tokenizer=small_tokenizer, runs_dir=runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        pane = app.query_one(TrainingPane)
        await until(pilot, lambda: app.query_one("#train-runs", OptionList).option_count == 1)
        assert isinstance(app.focused, OptionList)
        await pilot.press("enter")  # attached already if it was training when the list loaded; enter attaches too
        assert pane.attached == runs / "watched"
        await until(pilot, lambda: "finished" in str(app.query_one("#train-status").render()))
        chart = app.query_one(LossChart)
        await until(pilot, lambda: len(chart.steps) == 10)
        assert chart.steps == list(range(2, 21, 2)) and [s for s, _ in chart.evals] == [10, 20]
        assert chart.raw[-1] < chart.raw[0]
        await pilot.press("l")
        assert chart.log_scale


async def test_pane_starts_a_detached_run_that_outlives_the_app(
    small_corpus: Path, small_tokenizer: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    app = KantaiApp(corpus=small_corpus, tokenizer=small_tokenizer, runs_dir=runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await workers_settled(app)
        await pilot.press("3")
        for field, value in (("max-steps", "300"), ("batch-size", "8"), ("block-size", "32"), ("name", "from-tui")):
            app.query_one(f"#train-{field}", Input).value = value
        await pilot.press("escape", "s")
        await until(pilot, lambda: effective_state(runs / "from-tui") == "running")
    state = effective_state(runs / "from-tui")
    assert state in ("running", "finished")  # the app is gone; the run is not
    if state == "running":
        assert process.stop_run(runs, "from-tui", wait_s=60) == "stopped"


async def test_bad_form_value_is_shown(small_corpus: Path, tmp_path: Path) -> None:
    app = KantaiApp(corpus=small_corpus, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        app.query_one("#train-lr", Input).value = "fast"
        await pilot.pause()
        assert "lr: 'fast' is not a number" in str(app.query_one("#train-size").render())
        await pilot.press("escape", "s")
        await pilot.pause()
        assert "lr: 'fast' is not a number" in str(app.query_one("#train-error").render())
        assert not (tmp_path / "runs").exists()


async def test_the_time_field_takes_a_budget_and_names_a_bad_one(small_corpus: Path, tmp_path: Path) -> None:
    from kantai_tui.tui.panes.training import TrainingPane

    app = KantaiApp(corpus=small_corpus, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        app.query_one("#train-time", Input).value = "ten minutes"
        await pilot.pause()
        message = "'ten minutes' is not a time budget; write it like 90s, 10m or 1h30m"
        assert message in str(app.query_one("#train-size").render())
        app.query_one("#train-time", Input).value = "1h30m"
        await pilot.pause()
        cfg = app.query_one(TrainingPane)._config()
        assert (cfg.time_s, cfg.epochs, cfg.max_steps) == (5400.0, None, None)  # a budget alone: no epoch cap
        app.query_one("#train-time", Input).value = ""
        await pilot.pause()
        cfg = app.query_one(TrainingPane)._config()
        assert (cfg.time_s, cfg.epochs) == (600.0, 100.0)  # nothing given: the defaults


async def test_form_takes_another_corpus_and_reports_a_bad_one(small_corpus: Path, tmp_path: Path) -> None:
    app = KantaiApp(corpus=small_corpus, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await workers_settled(app)
        await pilot.press("3")
        corpus = app.query_one("#train-corpus", Input)
        assert corpus.value == str(small_corpus)  # filled from the app's corpus
        corpus.value = str(tmp_path / "missing.txt")
        await pilot.press("escape", "s")
        await until(pilot, lambda: "missing.txt: no such file or folder" in str(app.query_one("#train-error").render()))
        assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


async def test_the_pane_and_follow_show_the_same_smoothed_loss_across_a_resume(tmp_path: Path, capsys) -> None:
    """One smoothing rule: a recorded run whose metrics hold steps a crashed trainer logged past its
    checkpoint (then a resume from it) reads the same smoothed loss in the pane and in `kantai follow`.
    Before the shared rule, follow smoothed the dropped steps in, and a missing loss reset it to '—'."""
    import json

    from kantai_tui.cli import main
    from tests.helpers import recorded_run

    runs = recorded_run(tmp_path)
    metrics = runs / "demo" / "metrics.jsonl"
    rows = [
        {"kind": "step", "step": s, "loss": 20.0, "lr": 1e-3, "tokens_per_s": 1.0, "elapsed_s": s / 5, "epoch": 1.0}
        for s in (210, 220)
    ]  # logged by a process that died before its next checkpoint
    rows.append(
        {
            "kind": "started",
            "run": "demo",
            "total_steps": 240,
            "start_step": 200,
            "parameters": 1,
            "train_examples": 1,
            "eval_examples": 1,
            "tokens_per_step": 1,
            "device": "cpu",
        }
    )
    rows += [
        {"kind": "step", "step": s, "loss": 5.5, "lr": 1e-3, "tokens_per_s": 1.0, "elapsed_s": s / 5, "epoch": 1.0}
        for s in (210, 220, 230, 240)
    ]
    recorded = [json.loads(line) for line in metrics.read_text().splitlines()]
    metrics.write_text("".join(json.dumps({"epoch": 1.0, **r}) + "\n" for r in recorded + rows))

    assert main(["follow", "demo", "--runs-dir", str(runs)]) == 0
    followed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    follow_smooth = followed[-1].split("smooth ")[1].split()[0]

    app = KantaiApp(corpus=None, runs_dir=runs, watch_devices=False)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(TrainingPane)
        pane.attach(runs / "demo")
        status = app.query_one("#train-status")
        await until(pilot, lambda: "smoothed" in str(status.render()), timeout=10)
        pane_smooth = str(status.render()).split("smoothed ")[1].split()[0]
        assert app.query_one(LossChart).steps[-4:] == [210, 220, 230, 240] and 20.0 not in app.query_one(LossChart).raw
    assert follow_smooth == pane_smooth


async def test_attaching_another_run_shows_only_its_own_figures(tmp_path: Path) -> None:
    """Regression (issue 14, item 22): after attaching to another run the pane kept the previous run's
    held-out line ("held-out @ step 200") under a run that has no evaluation. Names, presets and errors
    from hand-edited files are shown as text: a '[/]' in one raised MarkupError and ended the app."""
    import json

    from tests.helpers import recorded_run

    runs = recorded_run(tmp_path)
    other = runs / "other"
    other.mkdir()
    (other / "run.json").write_text(json.dumps({"name": "other", "config": {"preset": "[/]odd", "recipe": "padded"}}))
    (other / "status.json").write_text(json.dumps({"state": "failed", "step": 4, "error": "it broke [/]"}))
    (other / "metrics.jsonl").write_text(
        json.dumps({"kind": "step", "step": 4, "loss": 7.0, "lr": 1e-3, "tokens_per_s": 1.0, "elapsed_s": 1.0}) + "\n"
    )
    app = KantaiApp(corpus=None, runs_dir=runs, watch_devices=False)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(TrainingPane)
        evals = app.query_one("#train-evals")
        pane.attach(runs / "demo")
        await until(pilot, lambda: "held-out @ step 200" in str(evals.render()), timeout=30)
        pane.attach(other)
        status = app.query_one("#train-status")
        await until(pilot, lambda: "step 4" in str(status.render()), timeout=30)
        assert str(evals.render()) == ""
        assert "it broke [/]" in str(status.render()) and "[/]odd preset" in str(app.query_one("#train-run").render())
        assert app.query_one(LossChart).steps == [4] and app.is_running


async def test_reads_that_overlap_apply_each_metrics_row_once(tmp_path: Path, monkeypatch) -> None:
    """Regression (issue 14, item 22): attaching reads the run at once and the 0.5 s timer reads it again; a
    read that started from the offset another read had already moved past was applied too, so its rows were
    charted twice and the smoothed loss (an average over the points) was not `kantai follow`'s. Now a read
    applies only from the offset the pane is at. (The first read is held until the second is applied.)"""
    import threading

    from kantai_tui.tui.panes import training
    from tests.helpers import recorded_run

    gate, calls = threading.Event(), []
    real_read_status = training.read_status

    def first_read_waits(run_dir: Path) -> dict:
        calls.append(run_dir)
        if len(calls) == 1:
            gate.wait(10)
        return real_read_status(run_dir)

    monkeypatch.setattr(training, "read_status", first_read_waits)
    runs = recorded_run(tmp_path)
    app = KantaiApp(corpus=None, runs_dir=runs, watch_devices=False)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(TrainingPane)
        chart = app.query_one(LossChart)
        pane.attach(runs / "demo")
        await until(pilot, lambda: len(calls) >= 1, timeout=30)  # the timer may have read again already
        pane._poll_attached()  # what the timer does meanwhile
        await until(pilot, lambda: len(chart.steps) >= 20, timeout=30)
        gate.set()  # the first read, from offset 0, comes in late
        await pilot.pause(0.3)
        await workers_settled(app)
        await pilot.pause(0.2)
        assert chart.steps == list(range(10, 201, 10)) and [s for s, _ in chart.evals] == [50, 100, 150, 200]


async def _status_of_a_live_run(tmp_path: Path, status: dict, shows: str, run_json: dict | None = None) -> str:
    """The Training pane's status line for a recorded run whose trainer holds its lock (as a live one does),
    with the given status.json, once it shows ``shows``."""
    import json

    from kantai_tui.core.runs.folder import RunLock
    from tests.helpers import recorded_run

    runs = recorded_run(tmp_path)
    run = runs / "demo"
    if run_json is not None:
        (run / "run.json").write_text(json.dumps(run_json))
    else:
        (run / "metrics.jsonl").write_text("")
    (run / "status.json").write_text(json.dumps(status))
    app = KantaiApp(corpus=None, runs_dir=runs, watch_devices=False)
    with RunLock(run):
        async with app.run_test(size=(120, 40)) as pilot:
            app.query_one(TrainingPane).attach(run)
            line = app.query_one("#train-status")
            await until(pilot, lambda: shows in str(line.render()), timeout=30)
            return str(line.render())


async def test_a_frozen_trainer_reads_stalled_in_the_pane(tmp_path: Path) -> None:
    """Regression (issue 14, item 14): a trainer stopped with SIGSTOP showed "running" forever."""
    status = {"state": "running", "step": 200, "elapsed_s": 40.0, "updated": time.time() - 300}
    config = {"name": "demo", "config": {"preset": "tiny", "log_every": 10}}
    line = await _status_of_a_live_run(tmp_path, status, "stalled — no step for", run_json=config)
    assert "running · stalled — no step for 5m0" in line
    assert "ETA" not in line


async def test_a_preparing_run_shows_its_phase_in_the_pane(tmp_path: Path) -> None:
    """A detached run's first start (tokenizer, token cache, packing) reads as its phase, share, rate and time
    left, from what the trainer keeps in status.json."""
    from kantai_tui.core.progress import Progress

    phase = Progress("encoding the token cache", 30 << 20, 120 << 20, 10.0).to_dict()
    status = {"state": "preparing", "preparation": phase, "updated": time.time()}
    line = await _status_of_a_live_run(tmp_path, status, "encoding the token cache")
    assert "preparing · encoding the token cache 25% · 30.0 MiB of 120.0 MiB · " in line
    assert "left" in line


# --- the overlay: runs compared in the chart and the diff -------------------------------------------


def _x_labels(chart: LossChart) -> list[str]:
    """The x-axis tick labels as drawn: the chart's last line, or, on a chart too short for a line of its own,
    the labels set into the axis line (└0────50────100)."""
    return re.split(r"[\s└─┬]+", chart.render().plain.splitlines()[-1].strip("└─ "))


def _y_labels(chart: LossChart) -> list[str]:
    """The y-axis tick labels as drawn (what stands before a ┤)."""
    return [line.split("┤")[0].strip() for line in chart.render().plain.splitlines() if "┤" in line]


async def _overlay(pilot: Pilot, marks: int = 2) -> None:
    """Attach to the first run, mark the next ``marks`` ones with space, and wait until they are read."""
    app = pilot.app
    await pilot.press("3")
    await until(pilot, lambda: app.query_one("#train-runs", OptionList).option_count == 3, timeout=30)
    await pilot.press("enter")
    for _ in range(marks):
        await pilot.press("down", "space")
    await until(pilot, lambda: len(app.query_one(LossChart).compared) == marks, timeout=30)
    await until(pilot, lambda: len(app.query_one(LossChart).steps) == 20, timeout=30)


async def test_space_marks_runs_and_the_chart_overlays_each_in_its_colour(tmp_path: Path) -> None:
    from kantai_tui.tui.widgets.loss_chart import PALETTE
    from tests.tui.compared_runs import compared_runs

    app = KantaiApp(corpus=None, runs_dir=compared_runs(tmp_path), watch_devices=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await _overlay(pilot, marks=1)
        chart = app.query_one(LossChart)
        assert [t.name for t in chart.traces] == ["lr-1e-3", "lr-3e-4"]  # the attached run drawn last, on top
        assert [t.colour for t in chart.traces] == [PALETTE[1], PALETTE[0]]
        drawn = {(line.run, line.role) for line in chart.lines()}
        assert {(run, role) for run in ("lr-3e-4", "lr-1e-3") for role in ("raw", "smoothed", "held-out")} <= drawn
        assert all(len(line.points) == 20 for line in chart.lines() if line.role in ("raw", "smoothed"))
        runs = app.query_one("#train-runs", OptionList)
        prompts = [str(runs.get_option_at_index(i).prompt) for i in range(3)]
        assert prompts[0].startswith("▶ lr-3e-4") and prompts[1].startswith("● lr-1e-3") and prompts[2][0] == " "
        assert "━ lr-1e-3" in chart.render().plain  # the legend names it
        await pilot.press("down", "space")  # a third run
        await until(pilot, lambda: len(chart.compared) == 2, timeout=30)
        assert [t.colour for t in chart.traces] == [PALETTE[1], PALETTE[2], PALETTE[0]]
        await pilot.press("up", "space")  # unmarked again
        await pilot.pause()
        assert [t.name for t in chart.compared] == ["lr-3e-3"]
        assert str(runs.get_option_at_index(1).prompt).startswith("  lr-1e-3")


async def test_the_diff_lists_exactly_the_settings_that_differ_and_who_learned_fastest(tmp_path: Path) -> None:
    from kantai_tui.core.runs.history import config_diff, load_history
    from kantai_tui.tui.widgets.run_diff import RunDiff
    from tests.tui.compared_runs import compared_runs

    runs = compared_runs(tmp_path)
    app = KantaiApp(corpus=None, runs_dir=runs, watch_devices=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await _overlay(pilot)
        diff = app.query_one(RunDiff)
        assert diff.display and not app.query_one("#train-evals").display  # the diff takes the history's place
        configs = [load_history(runs / name).config for name in ("lr-3e-4", "lr-1e-3", "lr-3e-3")]
        assert diff.keys == list(config_diff(configs)) == ["lr", "batch_size"]
        shown = screen_text(app)
        assert "3e-4" in shown and "1e-3" in shown and "3e-3" in shown and "held-out" in shown
        assert "preset" not in diff.keys and "seed" not in diff.keys
        await pilot.press("t")  # by tokens: lr-3e-3 trains on half the tokens per step, so ends first
        await pilot.pause()
        assert "@ 410k tok" in screen_text(app)


async def test_the_x_axis_cycles_steps_tokens_time_and_its_ticks_follow(tmp_path: Path) -> None:
    from tests.tui.compared_runs import compared_runs

    app = KantaiApp(corpus=None, runs_dir=compared_runs(tmp_path), watch_devices=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await _overlay(pilot)
        chart = app.query_one(LossChart)
        seen = []
        for _ in range(4):
            seen.append((chart.x_axis, _x_labels(chart)))
            await pilot.press("t")
            await pilot.pause()
        assert [axis for axis, _ in seen] == ["step", "tokens", "elapsed_s", "step"]
        assert [labels for _, labels in seen] == [
            ["0", "50", "100", "150", "200"],
            ["0", "200k", "400k", "600k", "800k"],  # 200 steps of 32 sequences of 128 tokens
            ["0", "10s", "20s", "30s", "40s"],
            ["0", "50", "100", "150", "200"],
        ]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_every_axis_has_at_least_four_labelled_ticks(tmp_path: Path, size: tuple[int, int]) -> None:
    from tests.tui.compared_runs import compared_runs

    app = KantaiApp(corpus=None, runs_dir=compared_runs(tmp_path), watch_devices=False)
    async with app.run_test(size=size) as pilot:
        await _overlay(pilot)
        chart = app.query_one(LossChart)
        for metric in ("loss", "accuracy", "lr", "grad_norm"):
            for x_axis in ("step", "tokens", "elapsed_s"):
                for log in (False, True):
                    chart.metric, chart.x_axis, chart.log_scale = metric, x_axis, log
                    await pilot.pause()
                    what = (metric, x_axis, log, chart.size)
                    assert len([y for y in _y_labels(chart) if y]) >= 4, what
                    assert len(_x_labels(chart)) >= 4, what


async def test_log_scale_visibly_changes_a_short_chart(tmp_path: Path) -> None:
    """A loss from 9.5 down to 5.5 reads almost the same on a linear and a log axis; the log one is
    widened to the 1-2-5 values around it and ticked at every whole value, so the labels move."""
    from tests.tui.compared_runs import compared_runs

    app = KantaiApp(corpus=None, runs_dir=compared_runs(tmp_path), watch_devices=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await _overlay(pilot, marks=0)
        chart = app.query_one(LossChart)
        assert chart.size.height <= 16  # a short chart
        linear = chart.render().plain.splitlines()
        await pilot.press("l")
        await pilot.pause()
        log = chart.render().plain.splitlines()
        assert chart.log_scale and "· log" in log[0] and "· linear" in linear[0]
        assert _y_labels(chart) != [line.split("┤")[0].strip() for line in linear if "┤" in line]
        plot = lambda lines: [line.split("┤")[-1].split("│")[-1] for line in lines[1:-2]]  # noqa: E731
        changed = sum(a != b for a, b in zip(plot(linear), plot(log), strict=False))
        assert changed >= len(plot(log)) // 2  # most rows of dots moved, not a pixel or two


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_smoothed_curve_is_smoother_over_the_logged_points_whatever_the_width(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    """One rule: the chart's smoothed loss is format.Smoother over every logged point, for the attached run
    (read row by row) and a compared one (read whole), at any width, whatever else the chart shows."""
    import json

    from kantai_tui.format import Smoother
    from tests.tui.compared_runs import compared_runs

    runs = compared_runs(tmp_path)
    app = KantaiApp(corpus=None, runs_dir=runs, watch_devices=False)
    async with app.run_test(size=size) as pilot:
        await _overlay(pilot, marks=1)
        chart = app.query_one(LossChart)
        for name in ("lr-3e-4", "lr-1e-3"):
            expected = Smoother()
            for line in (runs / name / "metrics.jsonl").read_text().splitlines():
                row = json.loads(line)
                if row["kind"] == "step":
                    expected.add(row["step"], row["loss"])
            smoothed = next(line for line in chart.lines() if line.run == name and line.role == "smoothed")
            assert smoothed.points == list(zip(expected.steps, expected.smooth, strict=True))
            raw = next(line for line in chart.lines() if line.run == name and line.role == "raw")
            assert [y for _, y in raw.points] == expected.raw


async def test_the_chart_keys_are_in_the_help_and_the_palette(tmp_path: Path) -> None:
    from kantai_tui.tui.help_screen import HelpScreen, _key_rows

    rows = dict(_key_rows(list(TrainingPane.BINDINGS)))
    assert rows["t"] == "X axis: chart by steps → tokens → training time"
    assert rows["c"] == "Chart: chart loss → held-out accuracy → learning rate → grad norm"
    assert rows["space"].startswith("Compare run: mark or unmark the highlighted run")
    app = KantaiApp(corpus=None, runs_dir=tmp_path / "runs", watch_devices=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "X axis" in screen_text(app) and "Compare run" in screen_text(app)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Training: Compare run", "Training: X axis", "Training: Chart", "Training: Log scale"} <= titles


async def test_the_batch_field_takes_auto_and_the_pane_says_why_the_trainer_chose_its_batch(
    small_corpus: Path, tmp_path: Path
) -> None:
    """'auto' in the form measures the batch on any device; a run that picked its batch shows the trainer's
    one line about it until the first evaluation takes that line."""
    import json

    from kantai_tui.core.runs.folder import RunLock
    from kantai_tui.tui.panes.training import TrainingPane
    from tests.helpers import recorded_run

    app = KantaiApp(corpus=small_corpus, runs_dir=tmp_path / "runs")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        app.query_one("#train-batch-size", Input).value = "auto"
        await pilot.pause()
        cfg = app.query_one(TrainingPane)._config()
        assert cfg.measure_batch and cfg.batch_size is None and cfg.resolved().batch_size is None
    runs = recorded_run(tmp_path / "recorded")
    run = runs / "demo"
    reason = "batch 64 chosen by measuring on this CPU: 32: 8 k tokens/s, 64: 9 k tokens/s; 128 was not 10% faster"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    started = {"kind": "started", "run": "demo", "total_steps": 200, "start_step": 0, "batch_reason": reason}
    kept = [started, *(r for r in rows if r.get("kind") == "step")]  # steps, no evaluation yet
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    app = KantaiApp(corpus=None, runs_dir=runs, watch_devices=False)
    with RunLock(run):
        async with app.run_test(size=(120, 40)) as pilot:
            app.query_one(TrainingPane).attach(run)
            evals = app.query_one("#train-evals")
            await until(pilot, lambda: "chosen by measuring" in str(evals.render()), timeout=30)
            assert reason in " ".join(str(evals.render()).split())
