"""Three finished runs' folders, as a trainer writes them, with fixed curves: what the overlay tests compare.

Recorded data, not a fake trainer: the same shape of run.json, status.json and metrics.jsonl, with
losses from a formula so every figure (and every snapshot pixel) is the same on every machine. The runs
differ in lr (and one in batch size); the fastest learner is ``lr-3e-3``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

# (name, lr, batch size, how fast its loss falls, updated: the runs list shows the newest first)
RUNS = (("lr-3e-4", 3e-4, 32, 1.0, 3.0), ("lr-1e-3", 1e-3, 32, 2.0, 2.0), ("lr-3e-3", 3e-3, 16, 3.5, 1.0))
STEPS = range(10, 201, 10)
EVALS = (50, 100, 150, 200)
BLOCK = 128


def loss_at(step: int, speed: float) -> float:
    return 5.5 + 4.0 * math.exp(-step * speed / 200)


def compared_runs(root: Path) -> Path:
    """The runs folder holding the three runs."""
    runs = root / "runs"
    for name, lr, batch, speed, updated in RUNS:
        write_run(runs / name, lr, batch, speed, updated)
    return runs


def write_run(run: Path, lr: float, batch: int, speed: float, updated: float) -> None:
    run.mkdir(parents=True)
    config = {
        "preset": "tiny",
        "recipe": "packed",
        "lr": lr,
        "batch_size": batch,
        "block_size": BLOCK,
        "max_steps": 200,
        "log_every": 10,
        "eval_every": 50,
        "seed": 42,
    }
    (run / "run.json").write_text(json.dumps({"name": run.name, "config": config}))
    rows: list[dict] = [{"kind": "started", "run": run.name, "total_steps": 200, "start_step": 0}]
    for step in STEPS:
        rows.append(
            {
                "kind": "step",
                "step": step,
                "epoch": step / 400,
                "loss": loss_at(step, speed) + 0.25 * math.sin(step * 1.3 + speed),
                "lr": lr * min(1.0, step / 20) * (1 - step / 210),
                "tokens": step * batch * BLOCK,
                "tokens_per_s": 20_000.0,
                "elapsed_s": step * batch / 160,
                "grad_norm": 1.5 / (1 + step * speed / 100) + 0.1 * math.cos(step),
                "progress": step / 200,
            }
        )
        if step in EVALS:
            rows.append(
                {
                    "kind": "eval",
                    "step": step,
                    "eval_loss": loss_at(step, speed) + 0.1,
                    "perplexity": math.exp(loss_at(step, speed) + 0.1),
                    "mask_acc": 0.05 + 0.1 * speed * step / 200,
                    "content_acc": 0.02 * speed * step / 200,
                }
            )
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    last = rows[-2]["loss"]
    status = {"state": "finished", "step": 200, "total_steps": 200, "loss": last, "updated": updated}
    (run / "status.json").write_text(json.dumps(status))
