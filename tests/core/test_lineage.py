"""Extending a run's length and forking a run from a checkpoint: exact, recorded, refused with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kantai_tui.cli import main
from kantai_tui.core.runs.folder import load_config
from kantai_tui.core.runs.lineage import extend_run
from kantai_tui.core.training.config import TrainConfig, run_length
from kantai_tui.core.training.events import StepLogged
from kantai_tui.core.training.step import lr_at, segment_progress
from kantai_tui.core.training.trainer import Trainer


def _train(runs: Path, *argv: str) -> int:
    return main(["train", *argv, "--runs-dir", str(runs)])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, small_corpus: Path, small_tokenizer: Path) -> Path:
    """A finished 12-step run with checkpoints every 4 steps and a loss at every step, trained once."""
    tmp_path = tmp_path_factory.mktemp("lineage")
    runs = tmp_path / "runs"
    probes = tmp_path / "probes.txt"
    probes.write_text("Reason is the faculty of <mask>.\n")
    code = _train(
        runs, str(small_corpus), "--tokenizer", str(small_tokenizer), "--run", "base", "--max-steps", "12",
        "--batch-size", "8", "--block-size", "32", "--log-every", "1", "--checkpoint-every", "4",
        "--eval-every", "6", "--probes", str(probes), "--json",
    )  # fmt: skip
    assert code == 0
    return runs


@pytest.fixture
def base(trained: Path, tmp_path: Path) -> Path:
    """A runs folder holding a copy of the trained run, for a test to extend and fork."""
    import shutil

    return Path(shutil.copytree(trained, tmp_path / "runs"))


def _losses(run_dir: Path) -> dict[int, float]:
    """step -> loss as metrics.jsonl has it (the last row for a step wins, as after a resume)."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if r["kind"] == "step"}


def _rows(run_dir: Path, kind: str) -> list[dict]:
    return [
        r for line in (run_dir / "metrics.jsonl").read_text().splitlines() if (r := json.loads(line))["kind"] == kind
    ]


def test_an_extended_run_goes_on_from_its_end_and_rewarms_the_lr(base: Path) -> None:
    before = _losses(base / "base")
    assert _train(base, "--resume", "base", "--max-steps", "20", "--json") == 0
    after = _losses(base / "base")
    assert sorted(after) == list(range(1, 21)) and {s: after[s] for s in before} == before
    record = json.loads((base / "base" / "run.json").read_text())
    assert record["config"]["max_steps"] == 20 and record["config"]["segment_step"] == 12
    assert record["extensions"][0]["from"]["max_steps"] == 12 and record["extensions"][0]["to"]["max_steps"] == 20
    lrs = {r["step"]: r["lr"] for r in _rows(base / "base", "step")}
    assert lrs[12] == 0.0 and lrs[13] > 0.0 and lrs[20] == 0.0  # decayed, warmed up again, decayed to the new end
    assert (base / "base" / "final" / "config.json").is_file()
    assert json.loads((base / "base" / "status.json").read_text())["step"] == 20


def test_an_extension_stopped_and_resumed_logs_the_same_losses(base: Path) -> None:
    """Resume stays exact inside an extension: the segment is in run.json, the lr of the last step in the checkpoint."""
    import shutil

    shutil.copytree(base / "base", base / "cut")  # the finished 12-step run, twice
    assert _train(base, "--resume", "base", "--max-steps", "20", "--json") == 0
    run = base / "cut"
    assert extend_run(run, run_length(None, 20, None), base)
    assert not extend_run(run, run_length(None, 20, None), base)  # the same length again: no second segment
    steps: dict[int, float] = {}
    trainer = Trainer(load_config(run), run)
    for event in trainer.events(lambda: trainer.state.step >= 15):  # stopped after step 15: a checkpoint there
        if isinstance(event, StepLogged):
            steps[event.step] = event.loss
    resumed = Trainer(load_config(run), run)
    assert (max(steps), resumed.state.step) == (15, 15)
    for event in resumed.events():
        if isinstance(event, StepLogged):
            steps[event.step] = event.loss
    expected = _losses(base / "base")
    assert steps == {s: expected[s] for s in range(13, 21)}


def test_an_extension_must_go_past_where_the_run_is(base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = str(base)
    assert _train(base, "--resume", "base", "--max-steps", "8") == 2
    assert (
        f"--max-steps 8: run base is at step 12 already; the length counts from the run's start, so give more, "
        f"e.g. 'kantai train --resume base --max-steps 24 --runs-dir {runs}'" in capsys.readouterr().err
    )
    assert _train(base, "--resume", "base", "--time", "0.01s") == 2
    assert "the budget counts from the run's start, so give more, e.g. 'kantai train --resume base --time" in (
        capsys.readouterr().err
    )
    assert _train(base, "--resume", "base", "--epochs", "0.01") == 2
    assert "--epochs 0.01: run base is at 0.0" in capsys.readouterr().err
    assert json.loads((base / "base" / "run.json").read_text())["config"]["max_steps"] == 12  # nothing changed


def test_resume_still_refuses_other_settings_and_names_the_fork_that_takes_them(
    base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(base, "--resume", "base", "--lr", "0.0001") == 2
    err = capsys.readouterr().err
    assert "--lr: a run resumes with the settings it was created with (run.json); only its length" in err
    assert f"fork it: kantai train --from base --lr 0.0001 --runs-dir {base}" in err


def test_a_fork_with_no_new_setting_trains_exactly_as_its_parent(base: Path) -> None:
    assert _train(base, "--from", "base@8", "--json") == 0
    parent, fork = _losses(base / "base"), _losses(base / "base-from-8")
    assert sorted(fork) == list(range(9, 13))
    assert fork == {s: parent[s] for s in range(9, 13)}
    record = json.loads((base / "base-from-8" / "run.json").read_text())
    assert record["parent"] == {"run": "base", "step": 8, "optimizer": True}
    assert record["config"]["tokenizer_dir"] == str((base / "base-from-8" / "tokenizer").resolve())
    assert (base / "base-from-8" / "tokenizer" / "tokenizer.json").is_file()


def test_a_fork_takes_new_settings_and_a_new_length(base: Path) -> None:
    assert _train(base, "--from", "base@8", "--lr", "0.0005", "--max-steps", "16", "--run", "slow", "--json") == 0
    cfg = load_config(base / "slow")
    assert (cfg.lr, cfg.max_steps, cfg.segment_step, cfg.batch_size, cfg.block_size) == (5e-4, 16, 8, 8, 32)
    assert sorted(_losses(base / "slow")) == list(range(9, 17))
    assert _train(base, "--from", "base@8", "--reset-optimizer", "--json") == 0  # a second fork from step 8
    assert load_config(base / "base-from-8").fresh_optimizer_at == 8
    fresh, parent = _losses(base / "base-from-8"), _losses(base / "base")
    assert fresh[9] == parent[9] and fresh[10] != parent[10]  # the same weights; fresh AdamW moments, another step


def test_fork_bad_input_is_one_line_each(base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        ("--from", "nope"): "--from nope: no run named 'nope' in",
        ("--from", "base@5"): "--from base@5: run base has no checkpoint at step 5; it keeps steps 8, 12",
        ("--from", "base@x@y"): "--from 'base@x@y': write it RUN or RUN@STEP, e.g. --from base@500",
        ("--from", "base", "--preset", "small"): "--preset small: a fork starts from run base's weights, a tiny model",
        ("--from", "base", "--tokenizer", "x"): "--tokenizer: a fork uses its parent's tokenizer",
        ("--reset-optimizer", "kant"): "--reset-optimizer goes with --from RUN (a fork)",
        ("--from", "base@8", "--max-steps", "4"): (
            f"--max-steps 4: base@8 is at step 8 already; the length counts from the run's start, so give more, "
            f"e.g. 'kantai train --from base@8 --max-steps 16 --runs-dir {base.resolve()}'"
        ),
        ("--from", "base", "--resume", "base"): "give either CORPUS (a new run), --from RUN (a fork) or --resume RUN",
    }
    for argv, message in cases.items():
        assert _train(base, *argv) == 2, argv
        assert message in capsys.readouterr().err, argv


def test_a_segment_rewarms_from_its_start_lr_then_decays_to_its_end(small_corpus: Path) -> None:
    cfg = TrainConfig(
        corpus=str(small_corpus), tokenizer_dir="", max_steps=200, lr=1e-3, epochs=None,
        segment_step=100, segment_s=50.0, segment_lr=2e-4,
    ).resolved()  # fmt: skip
    at = lambda step: lr_at(segment_progress(step, 0.0, cfg, 200), cfg)  # noqa: E731
    assert at(100) == pytest.approx(2e-4)  # starts where the run was
    assert at(105) == pytest.approx(1e-3)  # warmed up over 5% of the segment
    assert at(150) == pytest.approx(1e-3 * (1 - (0.5 - 0.05) / 0.95))
    assert at(200) == 0.0


def test_tensorboard_events_are_written_while_training_and_on_resume(base: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = tmp_path / "board"
    assert _train(base, "--resume", "base", "--max-steps", "16", "--tensorboard", str(board), "--json") == 0
    assert json.loads((base / "base" / "run.json").read_text())["tensorboard"] == str(board.resolve())
    events = EventAccumulator(str(board / "base"))
    events.Reload()
    logged = {r["step"]: r["loss"] for r in _rows(base / "base", "step") if r["step"] > 12}
    assert {e.step: pytest.approx(e.value) for e in events.Scalars("train/loss")} == logged
    assert [e.step for e in events.Scalars("eval/loss")] == [16]  # evaluated at the run's (new) last step


def test_a_run_that_is_training_is_not_extended_under_it(base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kantai_tui.core.runs.folder import RunLock

    with RunLock(base / "base"):  # a live trainer holds this
        assert _train(base, "--resume", "base", "--max-steps", "20") == 3
    assert "run base is already being trained" in capsys.readouterr().err
    assert json.loads((base / "base" / "run.json").read_text())["config"]["max_steps"] == 12


def test_a_forks_default_name_is_a_run_name_even_for_a_parent_of_64_characters(tmp_path: Path) -> None:
    from kantai_tui.cli.train import _fork_name
    from kantai_tui.core.runs.folder import NAME_RE

    runs = tmp_path / "runs"
    (runs / f"{'p' * 40}-from-12345678").mkdir(parents=True)  # taken: the next one gets -2
    name = _fork_name(str(runs), "p" * 64, 12345678)
    assert name == f"{'p' * 40}-from-12345678-2" and NAME_RE.match(name)


def test_a_hand_edited_extensions_entry_is_replaced_by_a_list(base: Path) -> None:
    run = base / "base"
    record = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**record, "extensions": "edited"}))
    assert extend_run(run, run_length(None, 20, None), base)
    extensions = json.loads((run / "run.json").read_text())["extensions"]
    assert [e["to"]["max_steps"] for e in extensions] == [20]
