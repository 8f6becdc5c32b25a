"""The headless CLI: exit codes, one-line errors on stderr, JSON that parses."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kantai_tui.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_stats_json(capsys: pytest.CaptureFixture[str], sample_dir: Path) -> None:
    code, out, err = run(capsys, "stats", str(sample_dir), "--json")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data["nonempty_lines"] == 27_540 and data["words"] == 302_714
    assert data["line_length"]["histogram"] and data["tokens"] is None


def test_stats_with_tokenizer_json(
    capsys: pytest.CaptureFixture[str], small_corpus: Path, small_tokenizer: Path
) -> None:
    code, out, _ = run(
        capsys, "stats", str(small_corpus), "--tokenizer", str(small_tokenizer), "--block-size", "16", "--json"
    )
    tokens = json.loads(out)["tokens"]
    assert code == 0 and tokens["block_size"] == 16 and 0 < tokens["truncated_share"] < 1


def test_stats_human(capsys: pytest.CaptureFixture[str], sample_dir: Path) -> None:
    code, out, _ = run(capsys, "stats", str(sample_dir))
    assert code == 0
    assert "27,540" in out and "critique_of_pure" in out and "top words" in out and "median 67" in out


def test_tokenizer_train_show_encode(capsys: pytest.CaptureFixture[str], small_corpus: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "tok"
    code, out, _ = run(
        capsys, "tokenizer", "train", str(small_corpus), "--out", str(out_dir), "--vocab-size", "1000", "--json"
    )
    trained = json.loads(out)
    assert code == 0 and trained["vocab_size"] == 1000 and trained["out_dir"] == str(out_dir)

    code, out, _ = run(capsys, "tokenizer", "show", str(out_dir), "--search", "␣reas", "--mode", "prefix", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["vocab_size"] == 1000
    assert shown["matches"] == len(shown["entries"]) > 0
    assert all(e["text"].lower().startswith(" reas") for e in shown["entries"])

    code, out, _ = run(capsys, "tokenizer", "encode", str(out_dir), "pure reason", "--json")
    encoded = json.loads(out)
    assert code == 0 and encoded["tokens"][0] == "<s>" and encoded["tokens"][-1] == "</s>"
    assert len(encoded["ids"]) == len(encoded["offsets"]) == len(encoded["tokens"])

    code, out, _ = run(capsys, "tokenizer", "show", str(out_dir), "--limit", "3")
    assert code == 0 and "of 1,000 tokens match; showing 3" in out
    code, out, _ = run(capsys, "tokenizer", "encode", str(out_dir), "pure reason")
    assert (code == 0 and "␣reason" in out) or "Ġreason" in out


BAD_INPUTS = [
    (["stats", "{tmp}/missing.txt"], "missing.txt: no such file or folder"),
    (["stats", "{tmp}/no-txt"], "no-txt: folder holds no corpus files (.txt, .md, .jsonl"),
    (["stats", "{tmp}/empty.txt"], "empty.txt: is empty (0 bytes)"),
    (["stats", "{tmp}/binary.txt"], "binary.txt: looks like a binary file (NUL byte at byte offset 3)"),
    (
        ["stats", "{tmp}/latin1.txt"],
        "latin1.txt: not valid UTF-8 at byte offset 3 (byte 0xe9: invalid continuation byte)",
    ),
    (["tokenizer", "train", "{tmp}/latin1.txt", "--out", "{tmp}/tok"], "latin1.txt: not valid UTF-8 at byte offset 3"),
    (["tokenizer", "train", "{corpus}", "--out", "{tmp}/tok", "--vocab-size", "100"], "--vocab-size 100 is too small"),
    (["tokenizer", "train", "{corpus}", "--out", "{tmp}/empty.txt/tok"], "cannot write the tokenizer there"),
    (
        ["tokenizer", "train", "{corpus}", "--out", "{tmp}/tok", "--min-frequency", "0"],
        "--min-frequency 0 must be at least 1",
    ),
    (["tokenizer", "show", "{tmp}"], "not a tokenizer folder (no vocab.json)"),
    (["tokenizer", "show", "{tokenizer}", "--search", "(", "--mode", "regex"], "invalid regular expression '('"),
    (["tokenizer", "encode", "{tmp}/nowhere", "text"], "nowhere: no such folder"),
    (["stats", "{corpus}", "--tokenizer", "{tmp}"], "not a tokenizer folder (no tokenizer.json)"),
    (
        ["train", "{corpus}", "--runs-dir", "{tmp}/runs", "--time", "ten minutes"],
        "--time: 'ten minutes' is not a time budget; write it like 90s, 10m or 1h30m",
    ),
    (["train", "{corpus}", "--runs-dir", "{tmp}/runs", "--time", "0.5"], "--time 0.5s must be between 1 second"),
    (
        ["train", "{corpus}", "--runs-dir", "{tmp}/runs", "--mask-rate", "1.5"],
        "--mask-rate 1.5 must be between 0.01 and 0.99",
    ),
    (
        ["stats", "{tmp}/cut.txt.gz"],
        "cut.txt.gz: the gzip stream is cut short: it ends at byte 60 of the file, after ",
    ),
    (["stats", "{tmp}/bad.jsonl"], "bad.jsonl: line 2: not valid JSON (Expecting"),
    (
        ["train", "{tmp}/books.jsonl", "--runs-dir", "{tmp}/runs"],
        "books.jsonl: line 1: no 'text' field (the record has: body)",
    ),
    (
        ["tokenizer", "train", "{tmp}/books.jsonl", "--out", "{tmp}/tok"],
        "books.jsonl: line 1: no 'text' field (the record has: body); pass --text-field with one of them",
    ),  # refused before anything is said or made: the first record is read before training starts
    (["stats", "{tmp}/books.jsonl", "--text-field", "title"], "books.jsonl: line 1: no 'title' field"),
    (["stats", "{tmp}/weights.txt"], "weights.txt: a zip archive, not text; extract its files and pass their folder"),
]


@pytest.fixture
def bad_inputs(tmp_path: Path) -> Path:
    (tmp_path / "no-txt").mkdir()
    (tmp_path / "no-txt" / "data.csv").write_text("a,b\n")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "binary.txt").write_bytes(b"\x7fEL\x00\x02\x01")
    (tmp_path / "latin1.txt").write_bytes("caf\u00e9 au lait\n".encode("latin-1"))
    text = b"Reason is the faculty of principles.\n" * 50
    (tmp_path / "cut.txt.gz").write_bytes(gzip.compress(text)[:60])
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"text": fine}\n')
    (tmp_path / "books.jsonl").write_text('{"body": "Reason is the faculty of principles."}\n')
    (tmp_path / "weights.txt").write_bytes(b"PK\x03\x04" + bytes(20))
    return tmp_path


@pytest.mark.parametrize(("argv", "message"), BAD_INPUTS, ids=[" ".join(a[:2]) + ":" + m[:24] for a, m in BAD_INPUTS])
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    bad_inputs: Path,
    small_corpus: Path,
    small_tokenizer: Path,
    argv: list[str],
    message: str,
) -> None:
    args = [a.format(tmp=bad_inputs, corpus=small_corpus, tokenizer=small_tokenizer) for a in argv]
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.startswith("kantai: error: ") and err.count("\n") == 1, err
    assert message.format(tmp=bad_inputs) in err


def test_argparse_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["stats", "x", "--top", "0"])
    assert info.value.code == 2
    assert "--top: 0 must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["train", "kant", "--text-field", " "])
    assert info.value.code == 2
    assert (
        "--text-field: is empty; name the field or column that holds the text (default text)" in capsys.readouterr().err
    )


def test_console_script_end_to_end(tmp_path: Path, sample_dir: Path) -> None:
    """The installed entry point, as a user runs it: no traceback, exit code 2, the message on stderr."""
    exe = shutil.which("kantai") or str(Path(sys.executable).parent / "kantai")
    bad = subprocess.run([exe, "stats", str(tmp_path / "nope")], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "nope: no such file or folder" in bad.stderr
    good = subprocess.run(
        [exe, "stats", str(sample_dir), "--json"], capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"}
    )
    assert good.returncode == 0 and json.loads(good.stdout)["nonempty_lines"] == 27_540


def test_a_reader_that_goes_away_is_not_a_traceback(kant_tokenizer: Path) -> None:
    """2 MB of JSON into a pipe whose reader leaves after one line: exit 141 quietly, as Unix tools do."""
    exe = shutil.which("kantai") or str(Path(sys.executable).parent / "kantai")
    piped = subprocess.run(
        f"'{exe}' tokenizer show '{kant_tokenizer}' --json | head -1; echo \"rc=${{PIPESTATUS[0]}}\"",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
    )
    assert piped.stdout.splitlines() == ["{", "rc=141"]
    assert "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr


def test_a_runs_folder_that_is_a_file_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, small_corpus: Path
) -> None:
    """Before: `kantai train CORPUS --runs-dir FILE` ended in a NotADirectoryError traceback, exit 1."""
    runs = tmp_path / "runs.txt"
    runs.write_text("not a folder\n")
    assert main(["train", str(small_corpus), "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err == f"kantai: error: --runs-dir {runs}: {runs} is a file, not a folder; give a folder for the runs\n"


def test_a_foreign_line_in_probes_jsonl_is_skipped(
    capsys: pytest.CaptureFixture[str], trained_run: Path, tmp_path: Path
) -> None:
    """Before: a hand-edited probes.jsonl line without "probe" ended `kantai probes` in a KeyError traceback."""
    import shutil

    run = tmp_path / "runs" / trained_run.name
    shutil.copytree(trained_run, run)
    with (run / "probes.jsonl").open("a") as handle:
        handle.write('{"step": 30, "note": "added by hand"}\n{"probe": "x <mask>", "step": "thirty", "top": []}\n')
    assert main(["probes", trained_run.name, "--runs-dir", str(tmp_path / "runs"), "--json"]) == 0
    timeline = json.loads(capsys.readouterr().out)
    assert {p["step"] for probe in timeline["probes"] for p in probe["points"]} == {10, 20}


def test_the_probe_timeline_marks_the_first_content_word_answer(
    capsys: pytest.CaptureFixture[str], trained_run: Path, tmp_path: Path
) -> None:
    """Each probe row says which answers are content words; `kantai probes` marks the first checkpoint whose
    top answer is one (here added as a later checkpoint's row: the tiny shared run says nothing yet)."""
    import shutil

    run = tmp_path / "runs" / trained_run.name
    shutil.copytree(trained_run, run)
    rows = [json.loads(line) for line in (run / "probes.jsonl").read_text().splitlines()]
    assert all(len(row["content"]) == 5 and all(isinstance(m, bool) for m in row["content"]) for row in rows)
    later = {**rows[0], "step": 30, "top": [["␣happiness", 0.2]] * 5, "content": [True] * 5}
    with (run / "probes.jsonl").open("a") as handle:
        handle.write(json.dumps(later) + "\n")
    assert main(["probes", trained_run.name, "--runs-dir", str(tmp_path / "runs"), "--json"]) == 0
    timeline = json.loads(capsys.readouterr().out)
    marked = {p["text"]: p["first_content_step"] for p in timeline["probes"]}
    assert marked[rows[0]["probe"]] == 30
    assert main(["probes", trained_run.name, "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert out.count("← first content word") == 1 + sum(1 for v in marked.values() if v not in (None, 30))
