"""A real trainer process before its first step: it records each preparation phase in status.json for
observers, and Ctrl-C in a phase stops it before the phase ends (its next report, about a second
apart), leaving nothing half-made."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
TOKENIZER = [sys.executable, "-m", "kantai_tui", "tokenizer", "train"]


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled books six times over (about 11 MB): a tokenizer takes seconds to read it here."""
    path = tmp_path_factory.mktemp("big") / "kant6.txt"
    text = "".join(p.read_text(encoding="utf-8") for p in sorted(SAMPLE.glob("*.txt")))
    path.write_text(text * 6, encoding="utf-8")
    return path


def _status(run: Path) -> dict:
    try:
        return json.loads((run / "status.json").read_text())
    except (OSError, ValueError):
        return {}


@pytest.mark.parametrize("phase", ["reading corpus", "encoding the token cache"])
def test_ctrl_c_in_a_preparation_phase_stops_it_and_leaves_nothing_half_made(
    big_corpus: Path, tmp_path: Path, phase: str, request: pytest.FixtureRequest
) -> None:
    if phase != "reading corpus" and not request.config.getoption("--long"):
        pytest.skip("the encoding phase runs with --long (12 s); tests/core/test_progress.py stops it in-process")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    runs = tmp_path / "runs"
    argv = [sys.executable, "-m", "kantai_tui", "train", str(big_corpus), "--runs-dir", str(runs), "--run", "p"]
    if phase == "encoding the token cache":  # a tokenizer of its own, so the run goes straight to encoding
        subprocess.run(
            [*TOKENIZER, str(big_corpus), "--out", str(tmp_path / "tok"), "--sample", "2MB"],  # a sample: quick
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        argv += ["--tokenizer", str(tmp_path / "tok")]
    trainer = subprocess.Popen([*argv, "--max-steps", "2"], env=env, stderr=subprocess.PIPE, text=True)
    run = runs / "p"
    deadline = time.monotonic() + 120
    while (_status(run).get("preparation") or {}).get("phase") != phase:
        assert trainer.poll() is None and time.monotonic() < deadline, f"never saw {phase!r}: {_status(run)}"
        time.sleep(0.05)
    recorded = _status(run)["preparation"]
    assert recorded["done"] <= recorded["total"] == big_corpus.stat().st_size
    trainer.send_signal(signal.SIGINT)
    sent = time.monotonic()
    _, err = trainer.communicate(timeout=60)
    took = time.monotonic() - sent
    assert trainer.returncode == 130, err
    print(f"{phase}: stopped {took:.2f} s after SIGINT")  # the latency is measured, not asserted (a loaded CI)
    assert "stopped before its first step" in err and f"kantai train --resume p --runs-dir {runs}" in err
    status = _status(run)
    assert status["state"] == "stopped" and status.get("preparation") is None
    tokens = tmp_path / "data" / "kantai" / "cache" / "tokens"
    assert not (tokens.is_dir() and os.listdir(tokens)), os.listdir(tokens)  # no cache, no staging folder
    assert not (run / "tokenizer").exists() or phase != "reading corpus"  # no half-trained tokenizer
