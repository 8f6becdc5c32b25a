"""``kantai gpu --json`` beside ``nvidia-smi`` while a run trains, and the TUI's Device pane in a real terminal.

Starts a detached run on the bundled books, waits until it trains, then three times a second apart
records both tools' figures (utilisation, memory, temperature, power, the processes on the GPU with the
trainer marked) into ``OUT/compare.json``, and captures the Device pane in tmux at 120×40 and 80×24
(``OUT/device-pane-120x40.txt`` …) with the ``kantai gpu --json`` taken at the same moment beside it, so
the capture can be kept as a test fixture (tests/fixtures/gpu/). Where tmux is missing (some GPU images)
the pane is rendered by Textual's own headless driver instead, and the file says so. The run is stopped
at the end. Run: ``python benchmarks/capture_device.py [--device cuda] [--seconds 75] --out DIR``
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KANTAI = [sys.executable, "-m", "kantai_tui"]
SMI_GPU = "index,name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw,power.limit"
SIZES = ((120, 40), (80, 24))


def run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def wait_running(runs: Path, name: str, limit_s: float) -> dict:
    """status.json once the run trains (or what it says when it never does)."""
    deadline = time.monotonic() + limit_s
    status: dict = {}
    while time.monotonic() < deadline:
        path = runs / name / "status.json"
        if path.is_file():
            status = json.loads(path.read_text() or "{}")
            if status.get("state") == "running" and status.get("step"):
                return status
            if status.get("state") in ("failed", "finished", "stopped"):
                break
        time.sleep(0.5)
    raise SystemExit(f"the run did not start training: {status}")


def nvidia_smi() -> dict:
    """nvidia-smi's view (the driver's), as text rows; absent on a machine without it."""
    if shutil.which("nvidia-smi") is None:
        return {"missing": "nvidia-smi is not on PATH"}
    gpus = run(["nvidia-smi", f"--query-gpu={SMI_GPU}", "--format=csv,noheader,nounits"]).stdout.strip()
    apps = run(["nvidia-smi", "--query-compute-apps=pid,process_name,used_memory", "--format=csv,noheader,nounits"])
    return {"query_gpu": SMI_GPU, "gpus": gpus.splitlines(), "compute_apps": apps.stdout.strip().splitlines()}


def kantai_gpu(runs: Path) -> dict:
    done = run([*KANTAI, "gpu", "--json", "--runs-dir", str(runs)])
    return json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr.strip()}


def tmux_capture(runs: Path, size: tuple[int, int], socket: Path) -> str:
    """The Device pane (key 5) of ``kantai tui`` in a detached tmux session of ``size``, after it refreshed."""
    base = ["tmux", "-S", str(socket)]
    command = " ".join([*KANTAI, "tui", "--runs-dir", str(runs)])
    run([*base, "new-session", "-d", "-s", "cap", "-x", str(size[0]), "-y", str(size[1]), f"sleep 0.5; exec {command}"])
    try:
        time.sleep(6)  # the app starts, then its panes fill
        run([*base, "send-keys", "-t", "cap", "5"])
        time.sleep(4)  # two refreshes of the device figures
        return run([*base, "capture-pane", "-p", "-t", "cap"]).stdout
    finally:
        run([*base, "kill-server"])


def textual_capture(runs: Path, size: tuple[int, int]) -> str:
    """No tmux: the same pane rendered by Textual's headless driver (the app's real code, no terminal)."""
    import asyncio

    from kantai_tui.tui.app import KantaiApp

    async def render() -> str:
        app = KantaiApp(runs_dir=str(runs))
        async with app.run_test(size=size) as pilot:
            await pilot.pause(2)
            await pilot.press("5")
            await pilot.pause(3)
            return app.export_screenshot()

    return "(rendered by Textual's headless driver: no tmux on this machine; SVG)\n" + asyncio.run(render())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seconds", type=float, default=75.0, help="the run's --time (it is stopped sooner)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = out / "runs"
    name = "capture"
    train = ["train", "kant", "--time", f"{args.seconds:g}s", "--runs-dir", str(runs), "--run", name]
    started = run([*KANTAI, *train, "--device", args.device, "--detach"])
    if started.returncode != 0:
        raise SystemExit(f"kantai train failed: {started.stderr.strip()}")
    try:
        wait_running(runs, name, limit_s=args.seconds)
        samples = []
        for _ in range(3):
            samples.append({"time": time.time(), "kantai_gpu": kantai_gpu(runs), "nvidia_smi": nvidia_smi()})
            time.sleep(1.0)
        (out / "compare.json").write_text(json.dumps(samples, indent=1))
        print(json.dumps(samples[-1], indent=1)[:3000])
        with tempfile.TemporaryDirectory() as tmp:
            for size in SIZES:
                snapshot = kantai_gpu(runs)
                if shutil.which("tmux"):
                    screen = tmux_capture(runs, size, Path(tmp) / f"tmux-{size[0]}")
                else:
                    screen = textual_capture(runs, size)
                tag = f"{size[0]}x{size[1]}"
                (out / f"device-pane-{tag}.txt").write_text(screen)
                (out / f"device-pane-{tag}.json").write_text(json.dumps(snapshot, indent=1))
                print(f"--- Device pane at {tag}:\n{screen}")
    finally:
        stopped = run([*KANTAI, "stop", name, "--runs-dir", str(runs), "--wait", "60"], timeout=90)
        print(f"stopped the run: {stopped.stdout.strip() or stopped.stderr.strip()}")


if __name__ == "__main__":
    main()
