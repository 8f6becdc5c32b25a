"""kantai runs and kantai compare on recorded run folders: the diff, equal tokens and time, time to a loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kantai_tui.cli import main
from kantai_tui.core.runs.history import config_diff, crossing, interpolate, load_history


def _run(root: Path, name: str, lr: float, speed: float, parent: dict | None = None, batch: int = 32) -> None:
    """A finished run's files as a trainer writes them: the held-out loss falls by ``speed`` per 1k tokens."""
    run = root / name
    run.mkdir(parents=True)
    config = {"preset": "tiny", "recipe": "packed", "lr": lr, "batch_size": batch, "tokenizer_dir": str(run / "t")}
    record = {"name": name, "config": config, **({"parent": parent} if parent else {})}
    (run / "run.json").write_text(json.dumps(record))
    (run / "status.json").write_text(json.dumps({"state": "finished", "step": 100, "total_steps": 100, "updated": lr}))
    rows: list[dict] = [{"kind": "started", "run": name, "total_steps": 100, "start_step": 0}]
    for step in range(10, 101, 10):
        tokens, seconds = step * 100, step / 2
        rows.append({"kind": "step", "step": step, "loss": 9 - speed * tokens / 1000, "tokens": tokens,
                     "elapsed_s": seconds, "tokens_per_s": 200.0, "lr": lr})  # fmt: skip
        if step % 20 == 0:
            rows.append(
                {"kind": "eval", "step": step, "eval_loss": 9.5 - speed * tokens / 1000, "mask_acc": step / 1000}
            )
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    _run(root, "fast", 2e-3, 0.4)
    _run(root, "slow", 5e-4, 0.2)
    _run(root, "wide", 1e-3, 0.3, batch=64)
    return root


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_diff_holds_only_the_keys_that_differ_and_never_the_runs_own_paths() -> None:
    configs = [
        {"lr": 1e-3, "preset": "tiny", "tokenizer_dir": "/a"},
        {"lr": 5e-4, "preset": "tiny", "tokenizer_dir": "/b"},
    ]
    assert config_diff(configs) == {"lr": [1e-3, 5e-4]}
    assert config_diff([{"seed": 1}, {"seed": 1, "batch_size": 8}]) == {"batch_size": [None, 8]}


def test_interpolation_and_crossing_between_evaluations() -> None:
    points = [(0.0, 8.0), (10.0, 6.0), (20.0, 5.0)]
    assert interpolate(points, 5.0) == 7.0 and interpolate(points, 25.0) is None
    assert crossing(points, 5.5) == 15.0 and crossing(points, 8.5) == 0.0 and crossing(points, 4.0) is None


def test_compare_reads_equal_tokens_equal_time_and_the_time_to_the_target(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _json(capsys, "compare", "fast", "slow", "--runs-dir", str(runs))
    assert report["config_diff"] == {"lr": [2e-3, 5e-4]}
    assert report["target"] == pytest.approx(9.5 - 0.2 * 10)  # the worst final held-out loss: slow's
    fast, slow = report["runs"]
    assert fast["to_target"]["tokens"] == pytest.approx(5000) and slow["to_target"]["tokens"] == pytest.approx(10000)
    assert fast["to_target"]["elapsed_s"] == pytest.approx(25.0) and fast["to_target"]["step"] == pytest.approx(50)
    assert report["first_to_target"] == {"by_time": "fast", "by_tokens": "fast"}
    at_tokens = report["at_equal_tokens"]
    assert [p["tokens"] for p in at_tokens] == pytest.approx([2000, 4666.67, 7333.33, 10000], rel=1e-4)
    assert at_tokens[-1]["eval_loss"] == pytest.approx([5.5, 7.5])
    assert [p["elapsed_s"] for p in report["at_equal_time"]][-1] == 50.0
    assert (
        _json(capsys, "compare", "fast", "slow", "--target", "1.0", "--runs-dir", str(runs))["first_to_target"] is None
    )


def test_compare_prints_the_winner_and_refuses_bad_input(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "fast", "slow", "wide", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "settings that differ" in out and "batch_size" in out and "first to 7.500: fast by training time" in out
    assert main(["compare", "fast", "--runs-dir", str(runs)]) == 2
    assert "kantai: error: compare needs two runs or more (got fast)" in capsys.readouterr().err
    assert main(["compare", "fast", "nope", "--runs-dir", str(runs)]) == 2
    assert f"kantai: error: no run named 'nope' in {runs}" in capsys.readouterr().err


def test_runs_lists_quality_and_the_differing_settings_sorted(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _json(capsys, "runs", "--runs-dir", str(runs), "--sort", "loss")
    assert [r["run"] for r in rows] == ["fast", "wide", "slow"]
    assert rows[0]["settings"] == {"lr": 2e-3, "batch_size": 32} and rows[0]["tokens"] == 10000
    assert [r["run"] for r in _json(capsys, "runs", "--runs-dir", str(runs), "--sort", "name")] == [
        "fast",
        "slow",
        "wide",
    ]
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "settings that differ" in out and "batch_size" in out and "fast" in out


def test_a_fork_shows_its_parent_and_is_compared_over_its_whole_training(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(runs, "child", 1e-4, 0.1, parent={"run": "fast", "step": 40})
    rows = _json(capsys, "runs", "--runs-dir", str(runs))
    assert next(r for r in rows if r["run"] == "child")["parent"] == {"run": "fast", "step": 40}
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    assert "from fast@40" in capsys.readouterr().out
    history = load_history(runs / "child", with_parent=True)
    inherited = [e["step"] for e in history.evals if e.get("inherited")]
    assert inherited == [20, 40]
    assert main(["compare", "fast", "child", "--runs-dir", str(runs)]) == 0
    assert "fast@40" in capsys.readouterr().out


@pytest.mark.parametrize(
    "parent",
    [
        {"run": "../../outside", "step": 40},
        {"run": 5, "step": 1},
        {"run": "fast", "step": "40"},
        {"run": "me", "step": 1},
    ],
)
def test_a_hand_edited_parent_is_shown_but_never_followed_out_of_the_runs_folder(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], parent: dict
) -> None:
    outside = tmp_path / "outside"
    _run(tmp_path, "outside", 1e-3, 9.0)  # a run folder beside the runs folder, that a '../' would reach
    _run(runs, "me", 1e-3, 0.1)
    record = json.loads((runs / "me" / "run.json").read_text())
    (runs / "me" / "run.json").write_text(json.dumps({**record, "parent": parent}))
    history = load_history(runs / "me", with_parent=True)
    assert not any(e.get("inherited") for e in history.evals) and outside.is_dir()
    assert main(["compare", "me", "fast", "--runs-dir", str(runs)]) == 0
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    capsys.readouterr()


def test_runs_from_before_tokens_were_logged_are_compared_by_what_they_have(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("fast", "slow"):
        metrics = runs / name / "metrics.jsonl"
        rows = [json.loads(line) for line in metrics.read_text().splitlines()]
        metrics.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "tokens"}) + "\n" for r in rows))
    record = json.loads((runs / "slow" / "run.json").read_text())
    (runs / "slow" / "run.json").write_text(json.dumps({**record, "extensions": "edited"}))
    report = _json(capsys, "compare", "fast", "slow", "--runs-dir", str(runs))
    assert report["first_to_target"] == {"by_time": "fast", "by_tokens": None}
    assert report["at_equal_tokens"] == [] and report["at_equal_time"]
    assert main(["compare", "fast", "slow", "--runs-dir", str(runs)]) == 0
    assert "fast by training time, — by tokens" in capsys.readouterr().out
