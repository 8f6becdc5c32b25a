"""Hostile and malformed input, property-tested with hypothesis: whatever the bytes, text, arguments or
hand-edited run files, kantai answers with its documented exit code and one clear line, never a traceback.

40 examples per property by default (CI); ``pytest --long`` runs 1,000 each.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from kantai_tui.cli import main
from kantai_tui.core.errors import BadInputError

DOCUMENTED = {0, 1, 2, 3, 4, 5, 6, 7, 129, 130, 141, 143}
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)


def run_cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    """``kantai argv`` in this process: (exit code, stdout, stderr); argparse's own exits count as codes."""
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse: 2 for a usage error, 0 for --help/--version
        code = exit_.code if isinstance(exit_.code, int) else 2
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean(code: int, err: str) -> None:
    """A documented code; on failure one 'kantai: error:' line (or argparse's usage), never a traceback."""
    assert code in DOCUMENTED, err
    assert "Traceback" not in err and "\x1b" not in err  # no escape sequence reaches the terminal
    if 2 <= code <= 7:  # argparse's usage errors end alike: "kantai stats: error: ..."
        assert re.match(r"kantai( [\w-]+)*: error: ", err.strip().splitlines()[-1]), err


# --- corpus bytes --------------------------------------------------------------------------------


@given(data=st.binary(max_size=3000))
@example(data=b"\xff\xfe\x00\x00")
@example(data=b"\n\n\n")
@example(data="Kant \u0000 \ud7ff \U0010ffff\r\n".encode("utf-8", "surrogatepass"))
def test_any_corpus_bytes(
    data: bytes, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path_factory.mktemp("bytes")
    corpus = folder / "corpus.txt"
    corpus.write_bytes(data)
    for argv in (
        ["stats", str(corpus), "--json"],
        ["stats", str(corpus), "--errors", "replace"],
        ["tokenizer", "train", str(corpus), "--out", str(folder / "tok"), "--vocab-size", "300", "--errors", "replace"],
    ):
        code, _, err = run_cli(capsys, argv)
        assert code in (0, 2)
        assert_clean(code, err)


# --- fill-mask text ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fill(trained_run: Path):
    from kantai_tui.core.fillmask import FillMask

    return FillMask.open(trained_run)


TEXT = st.text(st.characters(codec="utf-8"), max_size=300)


@given(before=TEXT, after=TEXT, masks=st.integers(0, 3), repeat=st.sampled_from([1, 1, 1, 40]))
@example(before="", after="", masks=1, repeat=1)
@example(before="<mask" * 3, after="</s><s><pad>", masks=1, repeat=1)
@example(before="x " * 600, after="", masks=1, repeat=1)
def test_any_fill_mask_text(fill, before: str, after: str, masks: int, repeat: int) -> None:
    text = (before + " <mask>" * masks + after) * repeat
    try:
        result = fill.predict(text, 5)
    except BadInputError as err:
        message = str(err)
        assert "\n" not in message and ("<mask>" in message or "tokens" in message), message
        return
    assert len(result.masks) >= 1
    for mask in result.masks:
        assert 1 <= len(mask.candidates) <= 5
        assert 0.0 <= sum(c.score for c in mask.candidates) <= 1.0 + 1e-5


# --- command lines -------------------------------------------------------------------------------

COMMANDS = ["stats", "tokenizer", "train", "presets", "runs", "follow", "stop", "fill-mask", "probes", "gpu"]
WORDS = st.sampled_from(
    [
        "--json",
        "--runs-dir",
        "--tokenizer",
        "--preset",
        "kantai",
        "--max-steps",
        "0",
        "-1",
        "--batch-size",
        "nan",
        "1e309",
        "--lr",
        "--resume",
        "../x",
        "/",
        "--top-k",
        "train",
        "show",
        "encode",
        "--search",
        "(",
        "--regex",
        "--errors",
        "--block-size",
        "513",
        "''",
        "--checkpoint",
        "--device",
        "cuda:9",
        "--precision",
        "--vocab-size",
        "-",
        "\x00",
    ]
)


@given(command=st.sampled_from(COMMANDS), rest=st.lists(WORDS | st.text(max_size=12), max_size=6))
@example(command="tokenizer", rest=["show", "/", "--search", "(", "--regex"])
@example(command="train", rest=["--resume", "../../etc"])
@example(command="fill-mask", rest=["/", "<mask>"])
@example(command="stats", rest=["\x1b]0;owned\x07\x1b[2J\nsecond line"])  # a terminal escape in a file name
def test_any_command_line(
    command: str,
    rest: list[str],
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if "--watch" in rest:
        return
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))  # an empty folder: no corpus or runs to act on
    code, _, err = run_cli(capsys, [command, *rest])
    assert_clean(code, err)


# --- hand-edited run folders ---------------------------------------------------------------------

RUN_FILES = [
    "run.json",
    "status.json",
    "metrics.jsonl",
    "probes.jsonl",
    "tokenizer/tokenizer.json",
    "tokenizer/kantai.json",
    "final/config.json",
    "final/tokenizer.json",
]


def _damaged(original: bytes, how: str, blob: bytes, value: object) -> bytes:
    if how == "truncate":
        return original[: len(blob) % (len(original) + 1)]
    if how == "garbage":
        return blob
    if how == "json":
        return json.dumps(value).encode()
    # a valid JSON document with one field changed, as a person editing it might leave it
    try:
        data = json.loads(original)
    except ValueError:
        lines = original.splitlines()
        return b"\n".join([*lines[:-1], json.dumps(value).encode()])
    if isinstance(data, dict) and data:
        key = sorted(data)[len(blob) % len(data)]
        if isinstance(data[key], dict) and data[key]:
            inner = sorted(data[key])[len(blob) % len(data[key])]
            data[key][inner] = value
        else:
            data[key] = value
    return json.dumps(data).encode()


@given(
    file=st.sampled_from(RUN_FILES),
    how=st.sampled_from(["truncate", "garbage", "json", "edit"]),
    blob=st.binary(max_size=200),
    value=JSON,
)
def test_any_hand_edited_run_file(
    trained_run: Path,
    tmp_path_factory: pytest.TempPathFactory,
    file: str,
    how: str,
    blob: bytes,
    value: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runs = tmp_path_factory.mktemp("runs")
    run = runs / "probe-run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("checkpoints"))
    path = run / file
    path.write_bytes(_damaged(path.read_bytes(), how, blob, value))
    for argv in (
        ["runs", "--runs-dir", str(runs)],
        ["runs", "--runs-dir", str(runs), "--json"],
        ["follow", "probe-run", "--runs-dir", str(runs)],
        ["probes", "probe-run", "--runs-dir", str(runs)],
        ["fill-mask", "probe-run", "Reason is <mask>.", "--runs-dir", str(runs)],
        ["tokenizer", "show", str(run / "tokenizer")],
    ):
        code, _, err = run_cli(capsys, argv)
        assert_clean(code, err)
    from kantai_tui.core.runs.process import load_config

    try:
        load_config(run).resolved()  # what 'train --resume' reads first
    except BadInputError as err:
        assert "run.json" in str(err)


@pytest.mark.parametrize(
    "edit, named",
    [
        ({"batch_size": "64"}, "'batch_size' is '64'"),
        ({"lr": -1.0}, "--lr -1.0 must be between 0 and 1"),
        ({"holdout": 3}, "holdout 3 must be between"),
        ({"preset": None}, "'preset' is None"),
    ],
)
def test_resume_of_a_hand_edited_run_json_names_the_key(
    trained_run: Path, tmp_path: Path, edit: dict, named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "probe-run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("checkpoints", "final"))
    data = json.loads((run / "run.json").read_text())
    data["config"].update(edit)
    (run / "run.json").write_text(json.dumps(data))
    code, _, err = run_cli(capsys, ["train", "--resume", "probe-run", "--runs-dir", str(tmp_path)])
    assert code == 2
    assert err.startswith(f"kantai: error: {run / 'run.json'}: ") and named in err and "edited by hand" in err


def _edited_runs(trained_run: Path, root: Path) -> Path:
    """Five copies of a real run, each with files edited the way a person (or a crash) might leave them."""
    edits = {
        "strings": {
            "status.json": json.dumps(
                {
                    "state": "finished",
                    "step": "twenty",
                    "total_steps": [20],
                    "loss": "low",
                    "error": 7,
                    "updated": "now",
                }
            )
        },
        "rows": {
            "metrics.jsonl": '{"kind": "step", "step": "1", "loss": "x"}\n{"kind": "eval"}\n[1, 2]\n'
            '{"kind": "step", "step": 2, "loss": 5.0, "lr": "fast"}\n{"kind": "started", "start_step": "0"}\n'
        },
        "config": {"run.json": json.dumps({"name": "config", "config": ["not", "an", "object"]})},
        "empty": {"status.json": "", "metrics.jsonl": "\x00\x00\x00"},
        "nulls": {  # what a NaN leaves (null) and a hand edit may: the pane once raised TypeError on "lr": null
            "metrics.jsonl": '{"kind": "started", "run": "nulls", "start_step": 0, "total_steps": null}\n'
            '{"kind": "step", "step": 5, "loss": null, "lr": null, "tokens_per_s": null, "elapsed_s": null}\n'
            '{"kind": "eval", "step": 5, "eval_loss": null, "mask_acc": null}\n',
            "probes.jsonl": '{"step": 5, "probe": "a <mask>"}\n{"step": 6, "probe": "a <mask>", "top": []}\n'
            '{"step": 7, "probe": "a <mask>", "top": [["x", null]], "content": null}\n',
            "status.json": json.dumps({"state": "failed", "step": 5, "error": "[/] not markup [red"}),
        },
    }
    for name, files in edits.items():
        run = root / name
        shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("checkpoints", "final"))
        for file, text in files.items():
            (run / file).write_text(text)
    return root


async def test_the_tui_lists_and_attaches_hand_edited_runs(
    trained_run: Path, tmp_path: Path, small_corpus: Path, small_tokenizer: Path
) -> None:
    from textual.widgets import OptionList

    from kantai_tui.tui.app import KantaiApp
    from kantai_tui.tui.panes.training import TrainingPane
    from tests.helpers import workers_settled

    runs = _edited_runs(trained_run, tmp_path / "runs")
    app = KantaiApp(corpus=small_corpus, tokenizer=small_tokenizer, runs_dir=runs, watch_devices=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        pane = app.query_one(TrainingPane)
        runs_list = app.query_one("#train-runs", OptionList)
        for _ in range(50):
            if runs_list.option_count == 5:
                break
            await pilot.pause(0.1)
        assert runs_list.option_count == 5
        for name in ("strings", "rows", "config", "empty", "nulls"):
            pane.attach(runs / name)
            await workers_settled(app)
            await pilot.pause()
            assert pane.attached == runs / name
        assert app.is_running  # nothing raised in a handler (that would have ended the app)


# --- one damaged row of probes.jsonl or metrics.jsonl --------------------------------------------
# A row a person edited (a key removed, set to null or to any JSON; an answer damaged): the shared
# readers hand every consumer (kantai probes/follow, the Training and Fill-mask panes) only what it can
# format. Before, a probe row with an empty top or a [token, null] answer raised in `kantai probes`
# and the Fill-mask pane, and "lr": null in a step row raised TypeError in the Training pane.

PROBE_ROW = {
    "step": 20,
    "probe": "Reason is <mask>.",
    "top": [["Ġreason", 0.5], ["Ġnature", 0.25]],
    "content": [True, False],
}
METRIC_ROWS = {
    "step": {
        "kind": "step",
        "step": 20,
        "epoch": 1.0,
        "loss": 5.0,
        "lr": 1e-3,
        "tokens": 1000,
        "tokens_per_s": 100.0,
        "samples_per_s": 1.0,
        "elapsed_s": 2.0,
        "grad_norm": 1.0,
        "progress": 1.0,
    },
    "eval": {"kind": "eval", "step": 20, "eval_loss": 5.0, "perplexity": 148.4, "mask_acc": 0.1, "cloze_hits5": 0.1},
    "started": {
        "kind": "started",
        "run": "r",
        "total_steps": 20,
        "start_step": 10,
        "parameters": 1000,
        "train_examples": 10,
        "eval_examples": 1,
        "tokens_per_step": 100,
        "device": "cpu",
        "time_s": None,
    },
}


def _edited_row(row: dict, key: str, how: str, value: object) -> dict:
    """``row`` with ``key`` dropped, set to ``value``, or (for a list) its first item or that item's
    second element set to ``value``: how a hand edit or a foreign writer leaves a line."""
    edited = json.loads(json.dumps(row))
    if how == "drop":
        edited.pop(key, None)
    elif how == "set" or not isinstance(edited.get(key), list) or not edited[key]:
        edited[key] = value
    elif how == "first" or not isinstance(edited[key][0], list):
        edited[key][0] = value
    else:
        edited[key][0][-1] = value
    return edited


def _observed_run(runs: Path, files: dict[str, list[dict]]) -> Path:
    """A finished run folder holding only what observers read: run.json, status.json and the given JSON lines."""
    run = runs / "r"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"name": "r", "config": {"preset": "tiny", "recipe": "packed"}}))
    (run / "status.json").write_text(json.dumps({"state": "finished", "step": 20, "total_steps": 20}))
    for name, rows in files.items():
        (run / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


JSON_OR_GONE = st.sampled_from(["drop", "set", "first", "last"])


@given(key=st.sampled_from(sorted(PROBE_ROW)), how=JSON_OR_GONE, value=JSON)
@example(key="top", how="drop", value=None)
@example(key="top", how="set", value=[])
@example(key="top", how="last", value=None)
@example(key="top", how="last", value="high")
@example(key="top", how="first", value=None)
@example(key="content", how="set", value=[True])
@example(key="probe", how="set", value="[/b] [link=x]")
def test_any_probes_row(
    key: str, how: str, value: object, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from kantai_tui.core.runs.probes import probe_timeline

    runs = tmp_path_factory.mktemp("runs")
    run = _observed_run(runs, {"probes.jsonl": [PROBE_ROW | {"step": 10}, _edited_row(PROBE_ROW, key, how, value)]})
    for argv in (["probes", "r", "--runs-dir", str(runs)], ["probes", "r", "--runs-dir", str(runs), "--json"]):
        code, _, err = run_cli(capsys, argv)
        assert code == 0 and err == "", err
    # what the Fill-mask pane formats: each point has answers, each a [token, probability] pair,
    # and content marks (if any) of the same length
    for probe in probe_timeline(run)["probes"]:
        assert isinstance(probe["text"], str) and probe["points"]
        for point in probe["points"]:
            assert isinstance(point["step"], int) and point["top"]
            for token, score in point["top"]:
                assert isinstance(token, str) and isinstance(score, (int, float)) and not isinstance(score, bool)
            marks = point.get("content", [False] * len(point["top"]))
            assert len(marks) == len(point["top"]) and all(isinstance(m, bool) for m in marks)


@given(
    kind=st.sampled_from(sorted(METRIC_ROWS)), key=st.text(max_size=3), how=JSON_OR_GONE, value=JSON, pick=st.integers()
)
@example(kind="step", key="lr", how="set", value=None, pick=0)
@example(kind="step", key="loss", how="drop", value=None, pick=0)
@example(kind="started", key="total_steps", how="set", value="x", pick=0)
def test_any_metrics_row(
    kind: str,
    key: str,
    how: str,
    value: object,
    pick: int,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kantai_tui.core.runs.folder import METRIC_FIELDS, metrics_row

    row = METRIC_ROWS[kind]
    key = key if key in row or not key else sorted(row)[pick % len(row)]  # mostly a real key, sometimes a new one
    edited = _edited_row(row, key, how, value)
    runs = tmp_path_factory.mktemp("runs")
    rows = [METRIC_ROWS["started"] | {"start_step": 0}, METRIC_ROWS["step"] | {"step": 10}, edited]
    run = _observed_run(runs, {"metrics.jsonl": rows})
    code, _, err = run_cli(capsys, ["follow", "r", "--runs-dir", str(runs)])
    assert code == 0 and "Traceback" not in err
    # the typed reader every observer uses: a known field is of its type, or absent
    typed = metrics_row(edited)
    if typed is not None and isinstance(typed.get("kind"), str):
        for name, types in METRIC_FIELDS.get(typed["kind"], {}).items():
            if name in typed:
                assert isinstance(typed[name], types) and (types is bool or not isinstance(typed[name], bool))
    assert run.is_dir()
