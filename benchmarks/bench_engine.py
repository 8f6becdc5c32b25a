"""Real (non-padding) tokens per second of kantai's default engine against ``--recipe seed``.

Both run in this process, on the same corpus, preset, tokenizer, seed and machine. ``seed`` is
the tutorial's data pipeline inside kantai's loop: one padded line per example, batch 64, the
full LM head; the default packs lines into 128-token blocks and runs the LM head only at
masked positions. Setup (tokenization, model build) is excluded; the first steps are a warm-up.

Run: ``python benchmarks/bench_engine.py [--preset tiny] [--steps 60]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from dataclasses import replace
from pathlib import Path

from kantai_tui.core.corpus.sample import bundled_corpus
from kantai_tui.core.tokenizer.bpe import train_tokenizer
from kantai_tui.core.training.config import TrainConfig
from kantai_tui.core.training.events import StepLogged
from kantai_tui.core.training.trainer import Trainer


def measure(cfg: TrainConfig, run_dir: Path, warmup: int) -> dict:
    """Tokens/s over the steps after ``warmup``, from the loop's own step events."""
    trainer = Trainer(cfg, run_dir)
    logged = [e for e in trainer.events() if isinstance(e, StepLogged)]
    first, last = logged[warmup - 1], logged[-1]
    seconds = last.elapsed_s - first.elapsed_s
    tokens = last.tokens - first.tokens
    return {
        "recipe": cfg.recipe,
        "batch_size": cfg.batch_size,
        "sparse_head": cfg.sparse_head,
        "steps_timed": last.step - first.step,
        "real_tokens_per_s": round(tokens / seconds),
        "samples_per_s": round((last.step - first.step) * cfg.batch_size / seconds, 1),
        "final_loss": round(last.loss, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    import torch

    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, cuda: {torch.cuda.is_available()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("XDG_DATA_HOME", tmp)
        tok = Path(tmp) / "tok"
        train_tokenizer(bundled_corpus(), tok)
        base = TrainConfig(
            corpus=str(bundled_corpus()),
            tokenizer_dir=str(tok),
            preset=args.preset,
            max_steps=args.steps,
            log_every=1,
            eval_every=10**9,
            checkpoint_every=10**9,
        )
        seed = measure(replace(base, recipe="seed", sparse_head=False).resolved(), Path(tmp) / "seed", args.warmup)
        packed = measure(base.resolved(), Path(tmp) / "packed", args.warmup)
    report = {
        "preset": args.preset,
        "seed_recipe": seed,
        "default": packed,
        "tokens_per_s_ratio": round(packed["real_tokens_per_s"] / seed["real_tokens_per_s"], 2),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
