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
    """Four copies of a real run, each with one file edited the way a person (or a crash) might leave it."""
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
            if runs_list.option_count == 4:
                break
            await pilot.pause(0.1)
        assert runs_list.option_count == 4
        for name in ("strings", "rows", "config", "empty"):
            pane.attach(runs / name)
            await workers_settled(app)
            await pilot.pause()
            assert pane.attached == runs / name
        assert app.is_running  # nothing raised in a handler (that would have ended the app)
