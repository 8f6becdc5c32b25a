"""``kantai export``: runs as CSV and as TensorBoard event files, read back with tensorboard's own reader.

The run folders are written by hand as the trainer writes them (a crash past a checkpoint, then a resume
that trains those steps again), and one is a real tiny run (the session's ``trained_run``).
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path

import pytest

from kantai_tui.cli import main
from kantai_tui.core.runs.export import TensorBoardSink, csv_columns, csv_rows, write_csv
from kantai_tui.core.runs.folder import METRIC_FIELDS
from kantai_tui.core.runs.history import load_history

CREATED = 1_700_000_000.0

FIRST_LIFE = [
    {"kind": "started", "run": "r", "start_step": 0, "total_steps": 40},
    {"kind": "step", "step": 10, "loss": 9.0, "lr": 1e-3, "tokens": 1000, "elapsed_s": 1.0, "grad_norm": 2.0},
    {"kind": "step", "step": 20, "loss": 8.0, "lr": 2e-3, "tokens": 2000, "elapsed_s": 2.0, "grad_norm": 1.5},
    {"kind": "eval", "step": 20, "eval_loss": 8.5, "perplexity": 4914.8, "mask_acc": 0.1, "cloze_hits5": 0.0},
    {"kind": "checkpoint", "step": 20, "path": "checkpoints/step-00000020"},
    {"kind": "step", "step": 30, "loss": 7.0, "lr": 3e-3, "tokens": 3000, "elapsed_s": 3.0, "grad_norm": 1.0},
    {"kind": "step", "step": 40, "loss": 6.0, "lr": 4e-3, "tokens": 4000, "elapsed_s": 4.0, "grad_norm": 0.5},
    {"kind": "eval", "step": 40, "eval_loss": 6.5, "perplexity": 665.1, "mask_acc": 0.2, "cloze_hits5": 0.1},
]  # ... and the trainer was killed before its checkpoint at 40
SECOND_LIFE = [
    {"kind": "started", "run": "r", "start_step": 20, "total_steps": 40},
    {"kind": "step", "step": 30, "loss": 7.5, "lr": 3e-3, "tokens": 3000, "elapsed_s": 3.25, "grad_norm": 1.25},
    {"kind": "step", "step": 40, "loss": 6.5, "lr": 4e-3, "tokens": 4000, "elapsed_s": 4.5, "grad_norm": 0.75},
    {"kind": "eval", "step": 40, "eval_loss": 7.0, "perplexity": 1096.6, "mask_acc": 0.15, "cloze_hits5": 0.05},
    {"kind": "checkpoint", "step": 40, "path": "checkpoints/step-00000040"},
    {"kind": "finished", "step": 40, "final_dir": "final", "stopped": False},
]
# what training really did: each step once, the resumed values where a step was trained twice
TRAJECTORY = [*FIRST_LIFE[1:4], *SECOND_LIFE[1:4]]
INSTALL = "pip install 'kantai-tui[tensorboard]'"


def write_run(runs: Path, name: str, rows: list[dict]) -> Path:
    """A run folder with run.json, status.json and metrics.jsonl, as the trainer leaves them."""
    run = runs / name
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"name": name, "config": {"preset": "tiny"}, "created": CREATED}))
    (run / "status.json").write_text(json.dumps({"state": "finished", "step": 40, "total_steps": 40}))
    (run / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return run


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    write_run(tmp_path / "runs", "resumed", FIRST_LIFE + SECOND_LIFE)
    return tmp_path / "runs"


def export(capsys: pytest.CaptureFixture[str], runs: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["export", *argv, "--runs-dir", str(runs)])
    out, err = capsys.readouterr()
    return code, out, err


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def scalars(log_dir: Path) -> dict[str, list[tuple[int, float, float]]]:
    """Every scalar series in a TensorBoard run folder, as TensorBoard's own loader reads it."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir))
    accumulator.Reload()
    return {
        tag: [(e.step, e.value, e.wall_time) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]
    }


# --- CSV -------------------------------------------------------------------------------------------


def test_the_csv_has_one_row_per_step_and_eval_rewound_at_the_resume(
    capsys: pytest.CaptureFixture[str], runs: Path, tmp_path: Path
) -> None:
    code, out, err = export(capsys, runs, "resumed", "--csv", str(tmp_path / "r.csv"))
    assert code == 0 and err == ""
    assert out == f"exported run resumed: 6 rows to CSV {tmp_path / 'r.csv'}\n"
    rows = read_csv(tmp_path / "r.csv")
    assert list(rows[0])[:5] == ["run", "kind", "step", "tokens", "elapsed_s"]
    assert list(rows[0]) == csv_columns()
    assert [(r["kind"], r["step"]) for r in rows] == [(r["kind"], str(r["step"])) for r in TRAJECTORY]
    assert [r["loss"] for r in rows if r["kind"] == "step"] == ["9.0", "8.0", "7.5", "6.5"]  # 30, 40 once: resumed
    assert [r["eval_loss"] for r in rows if r["kind"] == "eval"] == ["8.5", "7.0"]
    assert {r["run"] for r in rows} == {"resumed"}


def test_evals_are_placed_with_tokens_and_missing_fields_are_empty(runs: Path) -> None:
    columns, rows = csv_rows(load_history(runs / "resumed"))
    by_column = [dict(zip(columns, row, strict=True)) for row in rows]
    evals = [r for r in by_column if r["kind"] == "eval"]
    assert [(e["step"], e["tokens"], e["elapsed_s"]) for e in evals] == [(20, 2000, 2.0), (40, 4000, 4.5)]
    assert evals[0]["loss"] == "" and evals[0]["content_acc"] == "" and by_column[0]["eval_loss"] == ""
    assert set(METRIC_FIELDS["step"]) | set(METRIC_FIELDS["eval"]) <= set(columns)


def test_a_field_added_to_the_step_rows_becomes_a_column(
    runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(METRIC_FIELDS["step"], "made_up_rate", float)
    rows = [*FIRST_LIFE[:2], {**FIRST_LIFE[2], "made_up_rate": 0.25}]
    write_run(tmp_path / "more", "new-field", rows)
    columns, table = csv_rows(load_history(tmp_path / "more" / "new-field"))
    assert "made_up_rate" in columns
    assert [row[columns.index("made_up_rate")] for row in table] == ["", 0.25]


def test_several_runs_go_into_one_csv_told_apart_by_the_run_column(
    capsys: pytest.CaptureFixture[str], runs: Path, tmp_path: Path
) -> None:
    write_run(runs, "short", FIRST_LIFE[:3])
    code, out, _ = export(capsys, runs, "resumed", "short", "resumed", "--csv", str(tmp_path / "both.csv"), "--json")
    assert code == 0
    assert json.loads(out) == {
        "csv": str(tmp_path / "both.csv"),
        "tensorboard": None,
        "runs": ["resumed", "short"],
        "rows": 8,
    }
    rows = read_csv(tmp_path / "both.csv")
    assert [r["run"] for r in rows] == ["resumed"] * 6 + ["short"] * 2


def test_the_csv_goes_to_stdout_with_the_summary_on_stderr(capsys: pytest.CaptureFixture[str], runs: Path) -> None:
    code, out, err = export(capsys, runs, "resumed", "--csv", "-")
    assert code == 0 and err == "exported run resumed: 6 rows\n"
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 6 and rows[-1]["mask_acc"] == "0.15"


def test_an_export_replaces_the_file_whole_and_leaves_no_temporary(runs: Path, tmp_path: Path) -> None:
    target = tmp_path / "r.csv"
    target.write_text("an older export\n")
    assert write_csv([load_history(runs / "resumed")], target) == 6
    assert target.read_text().startswith("run,kind,step,") and set(tmp_path.iterdir()) == {runs, target}


# --- TensorBoard -----------------------------------------------------------------------------------


def test_tensorboard_events_read_back_equal_metrics_jsonl(
    capsys: pytest.CaptureFixture[str], runs: Path, tmp_path: Path
) -> None:
    board = tmp_path / "tb"
    code, out, _ = export(capsys, runs, "resumed", "--tensorboard", str(board))
    assert code == 0
    assert (
        out == f"exported run resumed: 6 rows to TensorBoard events in {board} (view: tensorboard --logdir {board})\n"
    )
    series = scalars(board / "resumed")
    assert {"train/loss", "train/lr", "train/grad_norm", "train/tokens", "train/elapsed_s"} <= set(series)
    assert {"eval/loss", "eval/perplexity", "eval/mask_acc", "eval/cloze_hits5"} <= set(series)
    assert "eval/tokens" not in series and "eval/eval_loss" not in series
    steps = [r for r in TRAJECTORY if r["kind"] == "step"]
    evals = [r for r in TRAJECTORY if r["kind"] == "eval"]
    for tag, field, rows in [
        ("train/loss", "loss", steps),
        ("train/lr", "lr", steps),
        ("train/grad_norm", "grad_norm", steps),
        ("eval/loss", "eval_loss", evals),
        ("eval/mask_acc", "mask_acc", evals),
    ]:
        assert [s for s, _, _ in series[tag]] == [r["step"] for r in rows], tag
        assert [v for _, v, _ in series[tag]] == pytest.approx([r[field] for r in rows], rel=1e-6), tag
    # wall time: the run's creation plus its training seconds (evals at their step's)
    assert [t for _, _, t in series["train/loss"]] == [CREATED + r["elapsed_s"] for r in steps]
    assert [t for _, _, t in series["eval/loss"]] == [CREATED + 2.0, CREATED + 4.5]


def test_each_run_gets_its_folder_and_exporting_again_replaces_it(
    capsys: pytest.CaptureFixture[str], runs: Path, tmp_path: Path
) -> None:
    write_run(runs, "short", FIRST_LIFE[:3])
    board = tmp_path / "tb"
    for _ in range(2):
        code, out, _ = export(capsys, runs, "resumed", "short", "--tensorboard", str(board), "--json")
        assert code == 0
    assert json.loads(out) == {"csv": None, "tensorboard": str(board), "runs": ["resumed", "short"], "rows": 8}
    assert sorted(p.name for p in board.iterdir()) == ["resumed", "short"]
    assert len(list((board / "resumed").iterdir())) == 1  # the second export replaced the first
    assert [s for s, _, _ in scalars(board / "short")["train/loss"]] == [10, 20]


def test_the_live_sink_writes_a_resumed_run_so_tensorboard_shows_each_step_once(tmp_path: Path) -> None:
    """Two trainer processes write into one folder: the dead one's steps 30 and 40, then the resumed
    one's. Its restart marker makes TensorBoard drop the dead steps past the checkpoint at 20."""
    board = tmp_path / "live"
    with TensorBoardSink(board) as sink:
        for row in FIRST_LIFE:
            sink.write(row)
    time.sleep(1.05 - time.time() % 1)  # event files sort by their second of creation, as two processes' do
    before = time.time()
    with TensorBoardSink(board) as sink:
        for row in SECOND_LIFE:
            sink.write(row)
            sink.flush()
    assert len(list(board.iterdir())) == 2
    series = scalars(board)
    assert [(s, v) for s, v, _ in series["train/loss"]] == [(10, 9.0), (20, 8.0), (30, 7.5), (40, 6.5)]
    assert [(s, v) for s, v, _ in series["eval/loss"]] == [(20, 8.5), (40, 7.0)]
    assert [(s, v) for s, v, _ in series["train/grad_norm"]] == [(10, 2.0), (20, 1.5), (30, 1.25), (40, 0.75)]
    assert all(t >= before for s, _, t in series["train/loss"] if s > 20)  # live: the time it was written


# --- bad input -------------------------------------------------------------------------------------


def test_without_the_tensorboard_package_the_message_names_the_install(
    capsys: pytest.CaptureFixture[str], runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "tensorboard" or m.startswith("tensorboard.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    code, out, err = export(capsys, runs, "resumed", "--csv", str(tmp_path / "r.csv"), "--tensorboard", str(tmp_path))
    assert (code, out) == (2, "")
    assert err == f"kantai: error: TensorBoard export needs the tensorboard package: {INSTALL}\n"
    assert not (tmp_path / "r.csv").exists()  # nothing half done


def test_a_broken_tensorboard_install_says_to_reinstall(
    capsys: pytest.CaptureFixture[str], runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed, but a part of it does not import (a protobuf it was not built for, a half-removed copy)."""
    import tensorboard.compat.proto

    monkeypatch.delattr(tensorboard.compat.proto, "event_pb2", raising=False)  # as if never imported
    monkeypatch.setitem(sys.modules, "tensorboard.compat.proto.event_pb2", None)
    code, _, err = export(capsys, runs, "resumed", "--tensorboard", str(tmp_path / "tb"))
    assert code == 2
    assert err.startswith("kantai: error: the tensorboard package cannot be imported (import of tensorboard.compat")
    assert err.endswith("; reinstall it: pip install --force-reinstall 'kantai-tui[tensorboard]'\n")


def test_an_unknown_run_is_named_and_nothing_is_written(
    capsys: pytest.CaptureFixture[str], runs: Path, tmp_path: Path
) -> None:
    code, out, err = export(capsys, runs, "resumed", "nope", "--csv", str(tmp_path / "r.csv"))
    assert (code, out) == (2, "")
    assert err == f"kantai: error: no run named 'nope' in {runs}\n"
    assert not (tmp_path / "r.csv").exists()


def test_export_needs_a_csv_or_a_tensorboard_folder(capsys: pytest.CaptureFixture[str], runs: Path) -> None:
    code, _, err = export(capsys, runs, "resumed")
    assert code == 2
    assert err == "kantai: error: give --csv FILE or --tensorboard DIR (or both): where to export the runs\n"


def test_a_csv_on_stdout_does_not_mix_with_json(capsys: pytest.CaptureFixture[str], runs: Path) -> None:
    code, out, err = export(capsys, runs, "resumed", "--csv", "-", "--json")
    assert (code, out) == (2, "")
    assert err == "kantai: error: --csv - writes the CSV to stdout, where --json would go too; give --csv a FILE\n"


@pytest.mark.parametrize(
    ("option", "target", "message"),
    [
        ("--csv", "{tmp}", "cannot write the CSV {tmp}: it is a folder; give a file name"),
        ("--csv", "{tmp}/no/r.csv", "cannot write the CSV {tmp}/no/r.csv: there is no folder {tmp}/no"),
        ("--tensorboard", "{tmp}/file", "cannot write TensorBoard events into {tmp}/file: it is a file, not a folder"),
        (
            "--tensorboard",
            "{tmp}/runs",
            "{tmp}/runs/resumed exists and holds more than TensorBoard event files; export into another folder",
        ),
    ],
    ids=["csv-folder", "csv-no-folder", "tensorboard-file", "tensorboard-into-the-runs"],
)
def test_an_output_that_cannot_be_written_is_named(
    capsys: pytest.CaptureFixture[str], runs: Path, tmp_path: Path, option: str, target: str, message: str
) -> None:
    (tmp_path / "file").write_text("not a folder")
    code, out, err = export(capsys, runs, "resumed", option, target.format(tmp=tmp_path))
    assert (code, out) == (2, "")
    assert err == f"kantai: error: {message.format(tmp=tmp_path)}\n"
    assert (runs / "resumed" / "metrics.jsonl").is_file()  # a run folder is never replaced


# --- a real run ------------------------------------------------------------------------------------


def test_a_trained_run_exports_what_its_trainer_logged(
    capsys: pytest.CaptureFixture[str], trained_run: Path, tmp_path: Path
) -> None:
    logged = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in logged if r["kind"] == "step"]
    evals = [r for r in logged if r["kind"] == "eval"]
    code, out, _ = export(
        capsys, trained_run.parent, trained_run.name, "--csv", str(tmp_path / "r.csv"),
        "--tensorboard", str(tmp_path / "tb"), "--json",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["rows"] == len(steps) + len(evals) > 0
    rows = read_csv(tmp_path / "r.csv")
    assert [float(r["loss"]) for r in rows if r["kind"] == "step"] == [r["loss"] for r in steps]
    assert [int(r["tokens"]) for r in rows if r["kind"] == "step"] == [r["tokens"] for r in steps]
    series = scalars(tmp_path / "tb" / trained_run.name)
    assert [s for s, _, _ in series["train/loss"]] == [r["step"] for r in steps]
    assert [v for _, v, _ in series["train/tokens_per_s"]] == pytest.approx([r["tokens_per_s"] for r in steps], 1e-6)
    assert [v for _, v, _ in series["eval/content_acc"]] == pytest.approx([r["content_acc"] for r in evals], 1e-6)
