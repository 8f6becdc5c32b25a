"""Helpers shared by tests in several folders: paths, recorded data, a process on its own terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path

from kantai_tui.core.device import DeviceSnapshot, DriverStats, GpuProcess, GpuSnapshot, HostSnapshot

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
TINY = ROOT / "tests" / "data" / "tiny_corpus.txt"


class Terminal:
    """A process on its own pty (80×24), as if started in an SSH session."""

    def __init__(self, args: list[str], ignore_hangup: bool = False) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))

        def become_session_leader() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # the pty is now this process's controlling terminal
            if ignore_hangup:
                signal.signal(signal.SIGHUP, signal.SIG_IGN)  # what nohup does

        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
        self.process = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, env=env, preexec_fn=become_session_leader
        )
        os.close(slave)
        self.screen = b""

    def read_until(self, needle: bytes, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.screen:
            assert time.monotonic() < deadline, f"{needle!r} never appeared"
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                self.screen += os.read(self.master, 65536)

    def hang_up(self) -> None:
        """Close the terminal: the kernel sends SIGHUP to the session and reads return end-of-file."""
        os.close(self.master)

    def exit_code(self, timeout: float = 15.0) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:  # a failed test leaves no process behind
                self.process.kill()


def recorded_run(root: Path) -> Path:
    """A finished run's files as a trainer writes them, with a fixed loss curve (recorded data, not a fake trainer)."""
    import json
    import math

    run = root / "runs" / "demo"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"name": "demo", "config": {"preset": "tiny", "recipe": "packed"}}))
    (run / "status.json").write_text(json.dumps({"state": "finished", "step": 200, "total_steps": 200, "loss": 5.9}))
    rows = [
        {
            "kind": "step",
            "step": s,
            "loss": 6 + 3 * math.exp(-s / 40) + 0.2 * math.sin(s),
            "lr": 1e-3,
            "tokens_per_s": 18000.0,
            "elapsed_s": s / 5,
        }
        for s in range(10, 201, 10)
    ]
    rows += [
        {"kind": "eval", "step": s, "eval_loss": 6 + 3 * math.exp(-s / 40), "perplexity": 1.0, "mask_acc": 0.1}
        for s in (50, 100, 150, 200)
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sorted(rows, key=lambda r: r["step"])))
    return run.parent


GIB = 2**30
HOST = HostSnapshot(cpu_pct=37.0, cpu_count=16, ram_used_bytes=40 * GIB, ram_total_bytes=128 * GIB)


def recorded_h100(processes: tuple[GpuProcess, ...], nvml: bool = True) -> DeviceSnapshot:
    driver = DriverStats(
        utilization_pct=87.0,
        memory_used_bytes=61 * GIB,
        memory_total_bytes=80 * GIB,
        temperature_c=64.0,
        power_w=512.0,
        power_limit_w=700.0,
        processes=processes,
    )
    gpu = GpuSnapshot(0, "NVIDIA H100 80GB HBM3", "9.0", 80 * GIB, 19 * GIB, 0, 0, driver if nvml else None)
    return DeviceSnapshot(
        time.time(),
        "2.11.0+cu130",
        "13.0",
        True,
        None,
        (gpu,),
        "ok" if nvml else "nvidia-ml-py is not installed (pip install 'kantai-tui[gpu]')",
        HOST,
    )


async def workers_settled(app: object) -> None:
    """Wait for every worker the app runs now. An exclusive worker replaced by a newer one (a poll timer
    fired meanwhile) is cancelled: that is not a failure, while a worker that raised still fails the test.
    (``app.workers.wait_for_complete()`` raises WorkerCancelled for the replaced one.)"""
    from textual.worker import WorkerCancelled

    for worker in list(app.workers):  # type: ignore[attr-defined]
        try:
            await worker.wait()
        except WorkerCancelled:
            continue


def tiny_config(corpus: Path, **fields: object):
    """A TrainConfig small enough for a test: 8 sequences of 32 tokens, no evaluation before the end."""
    from kantai_tui.core.training.config import TrainConfig

    base: dict[str, object] = {
        "tokenizer_dir": "",
        "max_steps": 4,
        "batch_size": 8,
        "block_size": 32,
        "eval_every": 1000,
    }
    return TrainConfig(corpus=str(corpus), **{**base, **fields})  # type: ignore[arg-type]
