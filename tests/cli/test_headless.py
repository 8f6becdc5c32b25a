"""Headless hygiene: every reporting command works with no terminal (stdin /dev/null, output to a
pipe, as under nohup, cron or CI), prints parseable JSON with --json (no progress bars in it), and
honours NO_COLOR on a real terminal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kantai_tui.cli import main
from tests.helpers import Terminal

COLOUR = re.compile(r"\x1b\[[0-9;]*?(?:3[0-8]|4[0-8]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")


def _json_commands(trained_run: Path, corpus: Path, tokenizer: Path, tmp_path: Path) -> list[list[str]]:
    runs = str(trained_run.parent)
    return [
        ["stats", str(corpus), "--json"],
        ["tokenizer", "train", str(corpus), "--out", str(tmp_path / "tok"), "--vocab-size", "500", "--json"],
        ["tokenizer", "show", str(tokenizer), "--json", "--limit", "5"],
        ["tokenizer", "encode", str(tokenizer), "Reason is <mask>.", "--json"],
        ["presets", "--json"],
        ["runs", "--runs-dir", runs, "--json"],
        ["fill-mask", str(trained_run), "Reason is <mask>.", "--json"],
        ["probes", trained_run.name, "--runs-dir", runs, "--json"],
        ["gpu", "--json"],
    ]


def test_every_json_output_is_json_and_only_json(
    trained_run: Path, small_corpus: Path, small_tokenizer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in _json_commands(trained_run, small_corpus, small_tokenizer, tmp_path):
        assert main(argv) == 0, argv
        out = capsys.readouterr().out
        json.loads(out)  # one document, nothing around it (a progress bar would break this)


def test_training_events_are_json_lines_without_a_terminal(
    small_corpus: Path, small_tokenizer: Path, tmp_path: Path
) -> None:
    """A real trainer with stdin at /dev/null and output to pipes, as cron or nohup would run it."""
    runs = tmp_path / "runs"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kantai_tui",
            "train",
            str(small_corpus),
            "--tokenizer",
            str(small_tokenizer),
            "--runs-dir",
            str(runs),
            "--run",
            "cron",
            "--max-steps",
            "6",
            "--batch-size",
            "8",
            "--block-size",
            "32",
            "--log-every",
            "2",
            "--json",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert rows[0]["kind"] == "started" and rows[-1]["kind"] == "finished"
    assert [r["step"] for r in rows if r["kind"] == "step"] == [2, 4, 6]
    assert "\x1b" not in done.stdout + done.stderr  # no colours, no progress bars into a pipe
    stop = subprocess.run(
        [sys.executable, "-m", "kantai_tui", "stop", "cron", "--runs-dir", str(runs), "--json"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert stop.returncode == 2 and "is not training (state: finished)" in stop.stderr


@pytest.mark.parametrize("argv", [["gpu"], ["tokenizer", "show", "{run}/tokenizer"]])
def test_no_color_is_honoured_on_a_real_terminal(argv: list[str], small_corpus: Path, trained_run: Path) -> None:
    argv = [a.format(corpus=small_corpus, runs=trained_run.parent, run=trained_run) for a in argv]
    coloured = _on_a_terminal(argv, {})
    plain = _on_a_terminal(argv, {"NO_COLOR": "1"})
    assert COLOUR.search(coloured), "expected colour on a terminal without NO_COLOR (else this test shows nothing)"
    assert not COLOUR.search(plain), plain


def _on_a_terminal(argv: list[str], env: dict[str, str]) -> str:
    saved = {k: os.environ.get(k) for k in ("NO_COLOR", "FORCE_COLOR", "TERM")}
    os.environ.pop("NO_COLOR", None)
    os.environ.pop("FORCE_COLOR", None)
    os.environ.update(env)
    try:
        term = Terminal([sys.executable, "-m", "kantai_tui", *argv])
        code = term.exit_code(timeout=60)
        while True:  # all it wrote, now that it has exited
            try:
                chunk = os.read(term.master, 65536)
            except OSError:
                break
            if not chunk:
                break
            term.screen += chunk
        assert code == 0, term.screen
        return term.screen.decode("utf-8", "replace")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
