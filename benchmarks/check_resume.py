"""Does a stopped-and-resumed run log the same losses as one that never stopped, on this device?

On CPU the two agree to float rounding (tests/system/test_kill.py asserts it); on CUDA some kernels
(embedding and attention backward) add in a nondeterministic order, so this prints how far apart they
end up, against the tolerance docs/RELIABILITY.md states (exit 1 past it). The run uses the defaults a
user gets: on CUDA the batch the first trainer measures (then fixed, as run.json fixes it) and CUDA
graphs. Run: ``python benchmarks/check_resume.py [--device cuda] [--steps 40] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from kantai_tui.core.corpus.sample import bundled_corpus
from kantai_tui.core.tokenizer.bpe import train_tokenizer
from kantai_tui.core.training.checkpoint import RESUME_TOLERANCE as TOLERANCE
from kantai_tui.core.training.config import COMPILE_MODES, TrainConfig
from kantai_tui.core.training.events import StepLogged
from kantai_tui.core.training.step import may_use_cuda
from kantai_tui.core.training.trainer import Trainer


def losses(cfg: TrainConfig, run: Path, stop_at: int | None = None) -> tuple[dict[int, float], TrainConfig]:
    """Step → loss of one Trainer's events, stopping after ``stop_at`` steps if given; and its settled config."""
    trainer = Trainer(cfg, run)
    logged = {
        e.step: e.loss
        for e in trainer.events(lambda: stop_at is not None and trainer.state.step >= stop_at)
        if isinstance(e, StepLogged)
    }
    return logged, trainer.cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--compile", default="auto", choices=COMPILE_MODES)
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
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
            epochs=None,
        ).resolved(cuda=may_use_cuda(args.device))
        whole, cfg = losses(cfg, tmp / "whole")  # the batch it measured, for the two halves too
        half = args.steps // 2
        resumed = {**losses(cfg, tmp / "resumed", stop_at=half)[0], **losses(cfg, tmp / "resumed")[0]}
    worst = max(abs(resumed[s] - whole[s]) / abs(whole[s]) for s in whole)
    after = max(abs(resumed[s] - whole[s]) / abs(whole[s]) for s in whole if s > half)
    print(
        f"{args.steps} steps on {args.device}, stopped at {half} and resumed: steps logged {sorted(resumed) == sorted(whole)}; "
        f"max relative loss difference {worst:.2e} (after the resume {after:.2e}); "
        f"final loss {whole[args.steps]:.4f} vs {resumed[args.steps]:.4f}; batch {cfg.batch_size}"
    )
    kind = "cuda" if args.device.startswith("cuda") or (args.device == "auto" and may_use_cuda("auto")) else "cpu"
    within = sorted(resumed) == sorted(whole) and worst <= TOLERANCE[kind]
    print(f"tolerance on {kind}: {TOLERANCE[kind]:.0e}: {'within' if within else 'PAST IT'}")
    if args.json:
        figures = {
            "device": kind,
            "steps": args.steps,
            "batch": cfg.batch_size,
            "max_relative": worst,
            "after_resume_relative": after,
            "tolerance": TOLERANCE[kind],
            "within": within,
            "losses": {"whole": whole, "resumed": resumed},
        }
        Path(args.json).write_text(json.dumps(figures, indent=1))
    sys.exit(0 if within else 1)


if __name__ == "__main__":
    main()
