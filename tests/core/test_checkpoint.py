"""The checkpoint commit protocol: verification, fallback, retention; the run-folder readers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kantai_tui.core.errors import BadInputError, RunLockedError
from kantai_tui.core.files import read_json_lines
from kantai_tui.core.runs.folder import RunLock, lock_is_held, run_path
from kantai_tui.core.training import checkpoint


def _write(payload: bytes):
    def write(folder: Path) -> None:
        (folder / "model.safetensors").write_bytes(payload)
        (folder / "state.json").write_text('{"step": 1}')

    return write


def test_commit_then_verify(tmp_path: Path) -> None:
    path = checkpoint.commit(tmp_path, 10, _write(b"weights"))
    assert path.name == "step-00000010" and checkpoint.verify(path) is None
    assert not list(tmp_path.glob(".staging-*"))
    manifest = json.loads((path / "MANIFEST.json").read_text())
    assert {f["name"] for f in manifest["files"]} == {"model.safetensors", "state.json"}


def test_newest_verified_skips_broken_ones_and_says_why(tmp_path: Path) -> None:
    checkpoint.commit(tmp_path, 10, _write(b"good"))
    bad = checkpoint.commit(tmp_path, 20, _write(b"also good"))
    (bad / "model.safetensors").write_bytes(b"flipped!!")  # same size, other bytes
    half = checkpoint.commit(tmp_path, 30, _write(b"x"))
    (half / "COMPLETE").unlink()  # as if killed before the marker
    (tmp_path / ".staging-step-00000040").mkdir()  # killed while staging
    skipped: list[tuple[str, str]] = []
    found = checkpoint.newest_verified(tmp_path, lambda p, why: skipped.append((p.name, why)))
    assert found is not None and found.step == 10
    assert skipped == [
        ("step-00000030", "no COMPLETE marker (interrupted while writing)"),
        ("step-00000020", "model.safetensors does not match its sha256"),
    ]


def test_retention_keeps_two_verified(tmp_path: Path) -> None:
    for step in (10, 20, 30, 40):
        checkpoint.commit(tmp_path, step, _write(b"w"))
    (tmp_path / ".staging-step-00000050").mkdir()
    checkpoint.apply_retention(tmp_path, keep=1)  # asks for 1, gets the minimum of 2
    assert [p.name for _, p in checkpoint.list_checkpoints(tmp_path)] == ["step-00000040", "step-00000030"]
    assert not list(tmp_path.glob(".staging-*"))


def test_metrics_reader_ignores_a_partial_last_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"kind": "step", "step": 1}\nnot json\n{"kind": "step", "step": 2}\n{"kind": "st')
    rows, offset = read_json_lines(path)
    assert [r["step"] for r in rows] == [1, 2]
    with path.open("a") as handle:
        handle.write('ep", "step": 3}\n')
    rows, _ = read_json_lines(path, offset)
    assert rows == [{"kind": "step", "step": 3}]


def test_second_trainer_is_refused(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from pathlib import Path; from kantai_tui.core.runs.folder import RunLock; "
                "lock = RunLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(30)"
            ),
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert lock_is_held(tmp_path)
        with pytest.raises(RunLockedError, match=f"run {tmp_path.name} is already being trained") as info:
            RunLock(tmp_path).acquire()
        assert info.value.exit_code == 3
    finally:
        holder.kill()
        holder.wait()
    assert not lock_is_held(tmp_path)  # the kernel freed it with the process
    RunLock(tmp_path).acquire().release()


@pytest.mark.parametrize("name", ["../x", "/abs", "a/b", ".hidden", ""])
def test_run_names_cannot_escape(tmp_path: Path, name: str) -> None:
    with pytest.raises(BadInputError, match="run name"):
        run_path(tmp_path, name)


def test_symlinked_run_is_refused(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    os.symlink(tmp_path, tmp_path / "runs" / "sneaky")
    with pytest.raises(BadInputError, match="is a link out of the runs folder"):
        run_path(tmp_path / "runs", "sneaky")
