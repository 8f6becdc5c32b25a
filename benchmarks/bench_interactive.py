"""Interactive speed: ``kantai --help``, the TUI's first frame, and its answer to a key press while a run trains.

Everything runs as a user would see it: real processes on a real pseudo-terminal (120×40), the
times taken from outside, with baselines measured in the same run (``python -c pass`` for
start-up, ``python -c "import torch"`` for what the first frame must not wait for).

- ``--help``: wall time of the process, median of ``--repeat``.
- first frame: from spawning ``kantai tui`` until the tab bar ("1 Corpus") is on the terminal; at
  that moment /proc/PID/maps says whether libtorch is loaded yet (it must not be).
- key press while training: a detached tiny run trains on the same 2 cores (``--epochs 50``, so
  it is still training throughout); the TUI switches panes ``--presses`` times (1 → 3 → 5 → 1 …);
  each time is from writing the key to the pty until the new pane's text arrives.

Fill-mask against transformers' pipeline is ``benchmarks/bench_fillmask.py``.
Run: ``python benchmarks/bench_interactive.py [--repeat 5] [--presses 30]``
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

from kantai_tui.core.corpus.sample import bundled_corpus

PANES = [("1", b"non-empty lines"), ("3", b"smoothed"), ("5", b"RAM")]


def wall(args: list[str], repeat: int) -> list[float]:
    """Wall seconds of ``args`` run to completion, ``repeat`` times."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        subprocess.run(args, capture_output=True, check=True)
        times.append(time.perf_counter() - began)
    return times


class Pty:
    """A process on its own 120×40 pseudo-terminal; ``wait_for`` reads its output until a needle shows."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.began = time.perf_counter()
        self.process = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, start_new_session=True, env={**env, "TERM": "xterm-256color"}
        )
        os.close(slave)
        self.output = b""

    def wait_for(self, needle: bytes, since: int = 0, timeout: float = 60.0) -> float:
        """perf_counter time at which ``needle`` appeared in the output after byte ``since``."""
        deadline = time.perf_counter() + timeout
        while needle not in self.output[since:]:
            if time.perf_counter() > deadline:
                raise SystemExit(f"{needle!r} never appeared; the screen so far ends with {self.output[-400:]!r}")
            ready, _, _ = select.select([self.master], [], [], 0.005)
            if ready:
                self.output += os.read(self.master, 1 << 16)
        return time.perf_counter()

    def press(self, key: str, needle: bytes) -> float:
        """Seconds from writing ``key`` until ``needle`` arrives."""
        self.drain()
        mark = len(self.output)
        began = time.perf_counter()
        os.write(self.master, key.encode())
        return self.wait_for(needle, since=mark) - began

    def drain(self) -> None:
        """Read what is pending, so the next needle is new output."""
        while select.select([self.master], [], [], 0.05)[0]:
            self.output += os.read(self.master, 1 << 16)

    def torch_loaded(self) -> bool:
        return "libtorch" in Path(f"/proc/{self.process.pid}/maps").read_text()

    def close(self) -> None:
        os.write(self.master, b"q")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self.master)


def first_frame(env: dict[str, str], runs: Path) -> dict:
    """Seconds to the first frame, and whether torch was loaded by then."""
    term = Pty([sys.executable, "-m", "kantai_tui", "tui", "--runs-dir", str(runs)], env)
    try:
        seconds = term.wait_for(b"1 Corpus") - term.began
        loaded = term.torch_loaded()
    finally:
        term.close()
    return {"seconds": round(seconds, 3), "torch_loaded_at_first_frame": loaded}


def key_presses(env: dict[str, str], runs: Path, presses: int) -> list[float]:
    """Pane switches answered while the detached run trains."""
    term = Pty([sys.executable, "-m", "kantai_tui", "tui", "--runs-dir", str(runs)], env)
    try:
        term.wait_for(b"1 Corpus")
        term.press("3", b"smoothed")  # the Training pane attaches to the running run
        time.sleep(2.0)  # let the device probe (torch import) and the corpus scan finish: steady state
        times = []
        for index in range(presses):
            key, needle = PANES[index % len(PANES)]
            times.append(term.press(key, needle))
            time.sleep(0.3)
    finally:
        term.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--presses", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        env = {**os.environ, "XDG_DATA_HOME": str(tmp / "data"), "XDG_CONFIG_HOME": str(tmp / "config")}
        kantai = [sys.executable, "-m", "kantai_tui"]
        results: dict = {
            "python -c pass": statistics.median(wall([sys.executable, "-c", "pass"], args.repeat)),
            "import torch": statistics.median(wall([sys.executable, "-c", "import torch"], args.repeat)),
            "kantai --help": statistics.median(wall([*kantai, "--help"], args.repeat)),
        }
        runs = tmp / "runs"
        frames = [first_frame(env, runs) for _ in range(args.repeat)]
        results["first frame"] = statistics.median(f["seconds"] for f in frames)
        results["torch loaded at first frame"] = any(f["torch_loaded_at_first_frame"] for f in frames)
        detach = [
            *kantai,
            "train",
            str(bundled_corpus()),
            "--runs-dir",
            str(runs),
            "--name",
            "bench",
            "--preset",
            "tiny",
            "--epochs",
            "50",
            "--detach",
        ]
        subprocess.run(detach, check=True, env=env, capture_output=True)
        try:
            times = key_presses(env, runs, args.presses)
        finally:
            stop = [*kantai, "stop", "bench", "--runs-dir", str(runs)]
            subprocess.run(stop, env=env, capture_output=True, check=False)
        for key, _ in PANES:
            mine = times[PANES.index(next(p for p in PANES if p[0] == key)) :: len(PANES)]
            results[f"key {key}: p50 / max"] = f"{statistics.median(mine) * 1000:.0f} / {max(mine) * 1000:.0f} ms"
        results["key presses in order, ms"] = " ".join(str(round(t * 1000)) for t in times)
        times.sort()
        results["key press while training, p50"] = statistics.median(times)
        results["key press while training, p90"] = times[int(0.9 * (len(times) - 1))]
        results["key press while training, max"] = times[-1]
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
