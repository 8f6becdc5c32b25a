"""SIGKILL at a chosen rename of a real ``kantai train``: every rename a run makes is a commit point
(the run folder, status.json, the tokenizer folder, the token cache, checkpoints, ``final/``), and a
kill at any of them must leave a run that resumes to a ``final/`` that fill-mask loads, or nothing.

strace's fault injection (``-e inject=rename:signal=SIGKILL:when=K``) kills the process at exactly the
K-th rename, before the kernel performs it. The default suite kills at the tokenizer's commit (the
kill that lost runs before); ``pytest --long`` at every rename of the run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("strace") is None, reason="strace is not installed (apt-get install strace)"
)

RENAMES = "rename,renameat,renameat2"
TRAIN = ["--preset", "tiny", "--max-steps", "6", "--batch-size", "4", "--block-size", "32"]
TRAIN += ["--log-every", "2", "--eval-every", "3", "--checkpoint-every", "3"]


def _kantai(args: list[str], cwd: Path, strace: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_DATA_HOME": str(cwd / "data")}
    command = [*(strace or []), sys.executable, "-m", "kantai_tui", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _renames(corpus: Path, where: Path) -> list[str]:
    """The targets of every rename an unkilled run makes, in order (its own fresh token cache included)."""
    where.mkdir()
    trace = where / "trace.txt"
    done = _kantai(
        ["train", str(corpus), "--run", "dk", "--runs-dir", "runs", *TRAIN],
        where,
        ["strace", "-f", "-qq", "-e", f"trace={RENAMES}", "-o", str(trace)],
    )
    assert done.returncode == 0, done.stderr
    targets = re.findall(r'rename\w*\((?:AT_FDCWD, )?"[^"]*", (?:AT_FDCWD, )?"([^"]*)"', trace.read_text())
    assert len(targets) >= 10, trace.read_text()
    return targets


def _kill_at(k: int, corpus: Path, where: Path, expect_staging: str | None = None) -> None:
    """SIGKILL at rename ``k``; then resume (or start again, if the run never appeared) to a model."""
    where.mkdir(exist_ok=True)
    killed = _kantai(
        ["train", str(corpus), "--run", "dk", "--runs-dir", "runs", *TRAIN],
        where,
        [
            "strace",
            "-f",
            "-qq",
            "-o",
            os.devnull,
            "-e",
            f"trace={RENAMES}",
            "-e",
            f"inject={RENAMES}:signal=SIGKILL:when={k}",
        ],
    )
    runs = where / "runs"
    if killed.returncode == 0 and expect_staging is None:  # this run made fewer renames than the traced one
        assert (runs / "dk" / "final" / "config.json").is_file()
        return
    assert killed.returncode != 0, f"rename {k} was never reached"
    if expect_staging is not None:  # the kill landed where the test means it to
        assert list((runs / "dk").glob(f"{expect_staging}*")), f"rename {k} is not the one meant: {killed.stderr}"
    if not (runs / "dk").exists():  # killed before the run existed: nothing at all, a new run starts clean
        assert not [p for p in runs.iterdir() if not p.name.startswith(".")] if runs.exists() else True
        again = _kantai(["train", str(corpus), "--run", "dk", "--runs-dir", "runs", *TRAIN], where)
        assert again.returncode == 0, again.stderr
        assert not [p.name for p in runs.iterdir() if p.name != "dk"]  # the half-built folder was swept
    else:
        resumed = _kantai(["train", "--resume", "dk", "--runs-dir", "runs"], where)
        assert resumed.returncode == 0, f"kill at rename {k}: {resumed.stderr}"
        assert "Traceback" not in resumed.stderr
    final = runs / "dk" / "final"
    from transformers import pipeline

    fill = pipeline("fill-mask", model=str(final), tokenizer=str(final))
    assert len(fill("Human thinking involves human <mask>.")) == 5


# run.json and status.json (inside the run's build folder), the run folder, status.json, then the tokenizer
TOKENIZER_COMMIT = 5


def test_a_kill_at_the_tokenizers_commit_resumes_to_a_model(tmp_path: Path, small_corpus: Path) -> None:
    """The kill that lost runs before: inside the tokenizer's save (then five file-by-file renames; a kill
    between two left a folder every resume trusted, trained every step on, then died at export)."""
    _kill_at(TOKENIZER_COMMIT, small_corpus, tmp_path, expect_staging=".tokenizer.staging-")


@pytest.mark.skipif("not config.getoption('--long')", reason="every rename of a run: pytest --long")
def test_a_kill_at_any_rename_leaves_a_resumable_run_or_nothing(tmp_path: Path, small_corpus: Path) -> None:
    targets = _renames(small_corpus, tmp_path / "clean")
    assert "runs/dk/tokenizer" in targets[TOKENIZER_COMMIT - 1]
    for k in range(1, len(targets) + 1):
        _kill_at(k, small_corpus, tmp_path / f"kill-{k}")
