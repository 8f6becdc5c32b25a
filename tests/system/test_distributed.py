"""torchrun on CPU with the gloo backend: 2 real processes, DDP, against 1 process with the same global batch.

Tolerance: losses agree to a relative 1e-4 (fp32). The two computations are the same sums in a
different order (each rank's half of the batch, then DDP's all-reduce), so they differ by float
rounding only; measured here about 1e-6 after 8 steps.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kantai_tui.cli import main
from kantai_tui.core.files import read_json_lines
from kantai_tui.core.runs.folder import trajectory

STEPS = 8
TOLERANCE = 1e-4


def _args(corpus: Path, tokenizer: Path, runs: Path, name: str) -> list[str]:
    return [
        "train",
        str(corpus),
        "--tokenizer",
        str(tokenizer),
        "--runs-dir",
        str(runs),
        "--name",
        name,
        "--max-steps",
        str(STEPS),
        "--batch-size",
        "8",
        "--block-size",
        "32",
        "--log-every",
        "1",
        "--checkpoint-every",
        "4",
        "--eval-every",
        "100",
        "--precision",
        "fp32",
    ]


def _torchrun(args: list[str]) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=2 -m kantai_tui …`` as a user types it."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "kantai_tui",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, check=False)


def _losses(run: Path) -> dict[int, float]:
    rows = trajectory(read_json_lines(run / "metrics.jsonl")[0])
    return {r["step"]: r["loss"] for r in rows if r["kind"] == "step"}


def _crash_after_step_4(run: Path, copy: Path) -> None:
    """A copy of a finished run as a crash right after the step-4 checkpoint would leave it."""
    shutil.copytree(run, copy)
    shutil.rmtree(copy / "checkpoints" / f"step-{STEPS:08d}")
    shutil.rmtree(copy / "final")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, small_corpus: Path, small_tokenizer: Path) -> Path:
    """One run by 1 process and one by 2 processes (torchrun), same settings."""
    folder = tmp_path_factory.mktemp("ddp")
    assert main(_args(small_corpus, small_tokenizer, folder, "one")) == 0
    done = _torchrun(_args(small_corpus, small_tokenizer, folder, "two"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 processes (DDP)" in done.stdout
    return folder


def test_two_processes_follow_the_one_process_trajectory(runs: Path) -> None:
    one, two = _losses(runs / "one"), _losses(runs / "two")
    assert sorted(two) == list(range(1, STEPS + 1))
    assert two == pytest.approx(one, rel=TOLERANCE)
    assert (runs / "two" / "final" / "model.safetensors").is_file()


def test_only_rank_0_writes_the_run_folder(runs: Path) -> None:
    rows = read_json_lines(runs / "two" / "metrics.jsonl")[0]
    assert [r["step"] for r in rows if r["kind"] == "step"] == list(range(1, STEPS + 1))  # each step once, not twice
    assert [r["kind"] for r in rows].count("started") == 1
    assert sorted(p.name for p in (runs / "two" / "checkpoints").iterdir()) == ["step-00000004", "step-00000008"]
    assert not list((runs / "two").rglob(".staging-*"))


def test_a_two_process_checkpoint_resumes_in_one_process(runs: Path) -> None:
    _crash_after_step_4(runs / "two", runs / "two-then-one")
    assert main(["train", "--resume", "two-then-one", "--runs-dir", str(runs)]) == 0
    assert _losses(runs / "two-then-one") == pytest.approx(_losses(runs / "one"), rel=TOLERANCE)


def test_a_one_process_checkpoint_resumes_in_two_processes(runs: Path, long_run: bool) -> None:
    if not long_run:  # keeps the default suite under 5 minutes; 2 -> 1 above covers another world size
        pytest.skip("1 -> 2 processes runs with --long")
    _crash_after_step_4(runs / "one", runs / "one-then-two")
    done = _torchrun(["train", "--resume", "one-then-two", "--runs-dir", str(runs)])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resum" in done.stdout.lower() or "from step 4" in done.stdout
    assert _losses(runs / "one-then-two") == pytest.approx(_losses(runs / "one"), rel=TOLERANCE)


def test_a_global_batch_that_does_not_divide_is_refused(
    small_corpus: Path, small_tokenizer: Path, tmp_path: Path
) -> None:
    args = _args(small_corpus, small_tokenizer, tmp_path, "odd")
    args[args.index("--batch-size") + 1] = "7"
    done = _torchrun(args)
    assert done.returncode == 1  # torchrun's own code for "a worker failed"; each worker exited 2
    assert "exitcode  : 2" in done.stderr
    assert (
        "kantai: error: --batch-size 7 is the global batch and must divide among 2 processes; use a multiple of 2"
        in done.stderr
    )
    assert not (tmp_path / "odd").exists()  # refused before any run folder


def test_detach_under_torchrun_is_refused(small_corpus: Path, small_tokenizer: Path, tmp_path: Path) -> None:
    done = _torchrun([*_args(small_corpus, small_tokenizer, tmp_path, "bg"), "--detach"])
    assert done.returncode != 0
    assert "--detach does not combine with torchrun" in done.stderr
    assert not (tmp_path / "bg").exists()


def test_kantai_stop_stops_every_rank_after_the_same_step_with_a_checkpoint(
    small_corpus: Path, small_tokenizer: Path, tmp_path: Path
) -> None:
    import json
    import time

    args = _args(small_corpus, small_tokenizer, tmp_path, "long")
    args[args.index("--max-steps") + 1] = "100000"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "kantai_tui",
        *args,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    try:
        deadline = time.monotonic() + 120
        while (
            not (tmp_path / "long" / "metrics.jsonl").is_file()
            or len(read_json_lines(tmp_path / "long" / "metrics.jsonl")[0]) < 5
        ):
            assert time.monotonic() < deadline and process.poll() is None, "the run never got going"
            time.sleep(0.2)
        assert main(["stop", "long", "--runs-dir", str(tmp_path)]) == 0  # SIGTERM to rank 0, the run folder's pid
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    status = json.loads((tmp_path / "long" / "status.json").read_text())
    assert status["state"] == "stopped"
    assert f"stopped after step {status['step']}; its checkpoint is saved" in out
    assert (tmp_path / "long" / "checkpoints" / f"step-{status['step']:08d}" / "COMPLETE").is_file()
    # every rank exits 143, as a single trainer does after kantai stop (torchrun reports those as failures and
    # may SIGTERM a rank that is still exiting); none aborts or has to be killed
    assert "exitcode  : 143" in err
    assert "SIGABRT" not in err and "SIGKILL" not in err and "terminate called" not in err, err[-3000:]
