"""Does a stopped-and-resumed run log the same losses as one that never stopped, on this device?

On CPU the two agree to float rounding (tests/system/test_kill.py asserts it); on CUDA some kernels
(embedding and attention backward) add in a nondeterministic order, so this prints how far
apart they end up. Run: ``python benchmarks/check_resume.py [--device cuda] [--steps 40]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from kantai_tui.core.corpus.sample import bundled_corpus
from kantai_tui.core.tokenizer.bpe import train_tokenizer
from kantai_tui.core.training.config import TrainConfig
from kantai_tui.core.training.events import StepLogged
from kantai_tui.core.training.trainer import Trainer


def losses(cfg: TrainConfig, run: Path, stop_at: int | None = None) -> dict[int, float]:
    """Step → loss of one Trainer's events, stopping after ``stop_at`` steps if given."""
    trainer = Trainer(cfg, run)
    return {
        e.step: e.loss
        for e in trainer.events(lambda: stop_at is not None and trainer.state.step >= stop_at)
        if isinstance(e, StepLogged)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--compile", default="auto", choices=("auto", "on", "off"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        os.environ["XDG_DATA_HOME"] = str(tmp)
        train_tokenizer(bundled_corpus(), tmp / "tok")
        cfg = TrainConfig(
            corpus=str(bundled_corpus()),
            tokenizer_dir=str(tmp / "tok"),
            preset=args.preset,
            device=args.device,
            compile=args.compile,
            max_steps=args.steps,
            log_every=1,
            checkpoint_every=10**9,
            eval_every=10**9,
        ).resolved()
        whole = losses(cfg, tmp / "whole")
        half = args.steps // 2
        resumed = {**losses(cfg, tmp / "resumed", stop_at=half), **losses(cfg, tmp / "resumed")}
    worst = max(abs(resumed[s] - whole[s]) / abs(whole[s]) for s in whole)
    after = max(abs(resumed[s] - whole[s]) / abs(whole[s]) for s in whole if s > half)
    print(
        f"{args.steps} steps on {args.device}, stopped at {half} and resumed: steps logged {sorted(resumed) == sorted(whole)}; "
        f"max relative loss difference {worst:.2e} (after the resume {after:.2e}); "
        f"final loss {whole[args.steps]:.4f} vs {resumed[args.steps]:.4f}"
    )


if __name__ == "__main__":
    main()
