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
- chart keys while training, the pane switches above as their baseline: in the Training pane,
  attached to the training run, ``space`` marks a recorded 50,000-step run (5,000 logged points, read
  whole in a worker) until its name shows in the chart's legend; then ``t`` cycles the x-axis, ``l``
  the log scale and ``c`` what is charted, each until the chart's new title arrives, all with the two
  runs overlaid; ``--chart-rounds`` times. The goal is a new frame within 100 ms of the key.

Fill-mask against transformers' pipeline is ``benchmarks/bench_fillmask.py``.
Run: ``python benchmarks/bench_interactive.py [--repeat 5] [--presses 30]``
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
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
# (key, what the chart shows first in the frame that answers it)
CHART_KEYS = [
    (" ", "━ other".encode()),  # space marks the recorded run: its curves overlaid, its name in the legend
    ("t", b"loss by tokens"),
    ("t", b"loss by time"),
    ("t", b"loss by steps"),
    ("l", "· log".encode()),
    ("l", "· linear".encode()),
    ("c", b"accuracy by"),
    ("c", b"learning rate by"),
    ("c", b"grad norm by"),
    ("c", b"loss by"),
]
FRAME_GOAL_S = 0.1


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


def recorded_run(runs: Path, name: str, steps: int = 50_000, log_every: int = 10) -> None:
    """A finished run's folder with a long, fixed history (what a chart overlays): a step row every
    ``log_every`` steps, an evaluation every 1,000, another lr than the training run's."""
    run = runs / name
    run.mkdir(parents=True)
    config = {"preset": "tiny", "recipe": "packed", "lr": 3e-4, "batch_size": 32, "log_every": log_every}
    (run / "run.json").write_text(json.dumps({"name": name, "config": config}))
    status = {"state": "finished", "step": steps, "total_steps": steps, "updated": 1.0}
    (run / "status.json").write_text(json.dumps(status))
    rows = []
    for step in range(log_every, steps + 1, log_every):
        loss = 6 + 3 * math.exp(-step / 8000) + 0.3 * math.sin(step * 0.7)
        lr = 3e-4 * min(1.0, step / 2500) * (1 - step / (steps + 1))
        row = {"kind": "step", "step": step, "loss": loss, "lr": lr, "tokens": step * 4096, "elapsed_s": step * 0.05}
        rows.append({**row, "grad_norm": 1 + 0.5 * math.cos(step), "tokens_per_s": 80_000.0, "epoch": step / 1000})
        if step % 1000 == 0:
            rows.append({"kind": "eval", "step": step, "eval_loss": loss - 0.2, "mask_acc": 0.3, "content_acc": 0.1})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def key_presses(env: dict[str, str], runs: Path, presses: int, chart_rounds: int) -> tuple[list[float], list[float]]:
    """Pane switches, then chart keys with two runs overlaid, answered while the detached run trains."""
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
        term.press("3", b"smoothed")
        os.write(term.master, b"\x1b[B")  # down: the recorded run (the training one, updated last, is first)
        time.sleep(1.0)
        chart = []
        for _ in range(chart_rounds):
            for key, needle in CHART_KEYS:
                chart.append(term.press(key, needle))
                time.sleep(0.3)
            os.write(term.master, b" ")  # unmark it, for the next round's mark
            time.sleep(1.0)
    finally:
        term.close()
    return times, chart


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--presses", type=int, default=30)
    parser.add_argument("--chart-rounds", type=int, default=3, help=f"rounds of the {len(CHART_KEYS)} chart keys")
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
        recorded_run(runs, "other")
        try:
            times, chart = key_presses(env, runs, args.presses, args.chart_rounds)
        finally:
            stop = [*kantai, "stop", "bench", "--runs-dir", str(runs)]
            subprocess.run(stop, env=env, capture_output=True, check=False)
        for key, _ in PANES:
            mine = times[PANES.index(next(p for p in PANES if p[0] == key)) :: len(PANES)]
            results[f"key {key}: p50 / max"] = f"{statistics.median(mine) * 1000:.0f} / {max(mine) * 1000:.0f} ms"
        results["key presses in order, ms"] = " ".join(str(round(t * 1000)) for t in times)
        for key in dict(CHART_KEYS):
            mine = [t for index, t in enumerate(chart) if CHART_KEYS[index % len(CHART_KEYS)][0] == key]
            label = "space (overlay)" if key == " " else key
            results[f"chart key {label}: p50 / max"] = (
                f"{statistics.median(mine) * 1000:.0f} / {max(mine) * 1000:.0f} ms"
            )
        results["chart keys in order, ms"] = " ".join(str(round(t * 1000)) for t in chart)
        results["chart key / pane switch, p50 ratio"] = statistics.median(chart) / statistics.median(times)
        results[f"chart keys within {FRAME_GOAL_S * 1000:.0f} ms"] = (
            f"{sum(t < FRAME_GOAL_S for t in chart)}/{len(chart)}"
        )
        times.sort()
        results["key press while training, p50"] = statistics.median(times)
        results["key press while training, p90"] = times[int(0.9 * (len(times) - 1))]
        results["key press while training, max"] = times[-1]
        chart.sort()
        results["chart key while training, p50"] = statistics.median(chart)
        results["chart key while training, p90"] = chart[int(0.9 * (len(chart) - 1))]
        results["chart key while training, max"] = chart[-1]
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
