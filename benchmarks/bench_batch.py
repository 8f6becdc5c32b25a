"""What a bigger batch costs in tokens: held-out loss and cloze hits per token for each batch size.

A GPU runs a big batch faster (tokens/s), but a big batch takes fewer optimizer steps per token, so it
may need more tokens to learn the same. Time to quality is tokens needed / tokens per second; the first
factor does not depend on the device (same model, data and masks), so it is measured here, on any
machine, and the second at the start of each CUDA run (core/training/batching.py). The baseline is the
CPU default batch (32) at its tuned lr; each other batch trains the same number of tokens with the lr
scaled by sqrt(batch / 32) (Adam's square-root rule), and, for one batch, unscaled.

Reported per batch: the held-out loss curve against tokens, and the **token cost**: the tokens it needs
to reach the baseline's loss at half its run, over the tokens the baseline needed (1.0 = as efficient
per token as batch 32). Run:
``python benchmarks/bench_batch.py --json benchmarks/results/cpu-batch.json`` (about 12 min on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from kantai_tui.core.corpus.sample import bundled_corpus
from kantai_tui.core.tokenizer.bpe import train_tokenizer
from kantai_tui.core.training.config import PACKED_LR, TrainConfig
from kantai_tui.core.training.events import EvalLogged, StepLogged
from kantai_tui.core.training.trainer import Trainer

BASE_BATCH = 32


def run(cfg: TrainConfig, run_dir: Path, evals: int) -> dict:
    """Train ``cfg`` and return its held-out curve: (tokens, loss, cloze@5) at ``evals`` points."""
    import torch

    torch._dynamo.reset()  # each Trainer's loss module is a new class: past 8, dynamo stops compiling them
    steps = cfg.max_steps or 1
    trainer = Trainer(replace(cfg, eval_every=max(1, steps // evals)), run_dir)
    curve, last = [], None
    for event in trainer.events():
        if isinstance(event, StepLogged):
            last = event
        elif isinstance(event, EvalLogged):
            tokens = event.step * cfg.batch * cfg.block_size
            curve.append(
                {
                    "step": event.step,
                    "tokens": tokens,
                    "eval_loss": round(event.eval_loss, 4),
                    "cloze_hits5": event.cloze_hits5,
                }
            )
    assert last is not None
    return {
        "batch": cfg.batch,
        "lr": cfg.lr,
        "steps": last.step,
        "tokens": last.tokens,
        "tokens_per_s": round(last.tokens / last.elapsed_s),
        "curve": curve,
    }


def tokens_to(curve: list[dict], target: float) -> float | None:
    """Tokens at which the curve first reaches ``target`` (linear between evaluations); None if never."""
    for before, after in zip([{"tokens": 0, "eval_loss": math.inf}, *curve], curve, strict=False):
        if after["eval_loss"] <= target:
            if not math.isfinite(before["eval_loss"]):
                return float(after["tokens"])
            share = (before["eval_loss"] - target) / max(before["eval_loss"] - after["eval_loss"], 1e-9)
            return before["tokens"] + share * (after["tokens"] - before["tokens"])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--batches", default="32,64,128,256")
    parser.add_argument("--unscaled", type=int, default=256, help="also this batch at the base lr (0: none)")
    parser.add_argument("--tokens", type=float, default=4e6, help="tokens each run trains")
    parser.add_argument("--evals", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    base_lr = PACKED_LR[args.preset]
    plan = [(int(b), base_lr * math.sqrt(int(b) / BASE_BATCH), "sqrt") for b in args.batches.split(",")]
    if args.unscaled:
        plan.append((args.unscaled, base_lr, "base lr"))
    results: dict = {
        "command": " ".join(sys.argv),
        "date": time.strftime("%F"),
        "machine": os.uname().nodename,
        "cpus": os.cpu_count(),
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        os.environ["XDG_DATA_HOME"] = str(tmp)
        tok = tmp / "tok"
        train_tokenizer(bundled_corpus(), tok)
        for batch, lr, rule in plan:
            steps = max(1, round(args.tokens / (batch * 128)))
            cfg = TrainConfig(
                corpus=str(bundled_corpus()),
                tokenizer_dir=str(tok),
                preset=args.preset,
                batch_size=batch,
                lr=lr,
                epochs=None,
                max_steps=steps,
                device=args.device,
                compile="on",
                checkpoint_every=10**9,
                log_every=max(1, steps // 20),
            ).resolved()
            row = {"rule": rule, **run(cfg, tmp / f"b{batch}-{rule.replace(' ', '')}", args.evals)}
            results["runs"].append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "curve"} | {"final": row["curve"][-1]}), flush=True)
    base = next(r for r in results["runs"] if r["batch"] == BASE_BATCH)
    target = base["curve"][len(base["curve"]) // 2 - 1]["eval_loss"]
    needed = tokens_to(base["curve"], target)
    results["target_loss"] = target
    for row in results["runs"]:
        took = tokens_to(row["curve"], target)
        row["tokens_to_target"] = None if took is None else round(took)
        row["token_cost"] = None if took is None or not needed else round(took / needed, 2)
        if took is None and needed:  # not reached within its tokens: at least this much
            row["token_cost_at_least"] = round(row["tokens"] / needed, 2)
        cost = row["token_cost"] if took is not None else f"> {row.get('token_cost_at_least')} (not reached)"
        print(
            f"batch {row['batch']:>4} ({row['rule']}, lr {row['lr']:.2e}): token cost {cost} "
            f"(baseline batch {BASE_BATCH}: 1.0, {needed:,.0f} tokens to loss {target}); "
            f"final loss {row['curve'][-1]['eval_loss']}",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
