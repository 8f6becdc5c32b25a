"""kantai's engine against the tutorial's pipeline (transformers Trainer), same corpus, preset and seed.

(a) the tutorial: ``Trainer`` + one example per non-empty line truncated at 128 (what
    ``LineByLineTextDataset`` built) + ``DataCollatorForLanguageModeling`` (15%), batch 64, lr 5e-5;
(b) kantai's default engine (packed blocks, LM head at masked positions, tuned lr with warm-up).

Both train the same ``RobertaConfig`` on the training lines of the same held-out split, and both
are evaluated by kantai's Evaluator on the same held-out lines with the same fixed masks, after
(about) the same number of real tokens. Reported: real (non-padding) tokens per second, measured
after warm-up steps, and the held-out loss.

Needs ``pip install accelerate`` (Trainer requires it). Run:
``python benchmarks/bench_train.py [--preset tiny] [--hf-steps 120]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from kantai_tui.core.bpe import train_tokenizer
from kantai_tui.core.config import TrainConfig
from kantai_tui.core.data import PAD, open_token_cache, split_lines
from kantai_tui.core.engine import Evaluator
from kantai_tui.core.events import StepLogged
from kantai_tui.core.presets import get_preset, roberta_config
from kantai_tui.core.sample import bundled_corpus
from kantai_tui.core.trainer import Trainer as KantaiTrainer

WARMUP_STEPS = 5


def tutorial_pipeline(tok_dir: Path, lines: list[str], preset: str, steps: int, out: Path) -> tuple[object, dict]:
    """The notebook's Trainer run, with a collator that counts real tokens and a callback that times steps."""
    import torch
    from transformers import (DataCollatorForLanguageModeling, RobertaForMaskedLM, RobertaTokenizerFast, Trainer,
                              TrainerCallback, TrainingArguments)  # fmt: skip

    tokenizer = RobertaTokenizerFast.from_pretrained(str(tok_dir), max_length=512)
    encoded = tokenizer(lines, add_special_tokens=True, truncation=True, max_length=128)["input_ids"]
    dataset = [{"input_ids": torch.tensor(ids, dtype=torch.long)} for ids in encoded]
    real_tokens: list[int] = []

    class CountingCollator(DataCollatorForLanguageModeling):
        def __call__(self, examples: list) -> dict:
            batch = super().__call__(examples)
            real_tokens.append(int((batch["input_ids"] != PAD).sum()) if "attention_mask" not in batch
                               else int(batch["attention_mask"].sum()))  # fmt: skip
            return batch

    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args: object, state: object, control: object, **kwargs: object) -> None:
            stamps.append(time.perf_counter())

    torch.manual_seed(42)
    model = RobertaForMaskedLM(roberta_config(get_preset(preset), tokenizer.vocab_size))
    args = TrainingArguments(output_dir=str(out), max_steps=steps,
                             per_device_train_batch_size=64, save_strategy="no", logging_strategy="no",
                             report_to=[], seed=42, use_cpu=True, dataloader_num_workers=0,
                             disable_tqdm=True)  # fmt: skip
    collator = CountingCollator(tokenizer=tokenizer, mlm=True, mlm_probability=0.15)
    Trainer(model=model, args=args, data_collator=collator, train_dataset=dataset, callbacks=[Clock()]).train()
    timed_tokens = sum(real_tokens[WARMUP_STEPS:steps])
    seconds = stamps[steps - 1] - stamps[WARMUP_STEPS - 1]
    return model, {"steps": steps, "real_tokens": sum(real_tokens[:steps]),
                   "real_tokens_per_s": round(timed_tokens / seconds)}  # fmt: skip


def kantai_engine(tok_dir: Path, preset: str, token_budget: int, run_dir: Path) -> tuple[object, dict]:
    """kantai's defaults until it has seen at least ``token_budget`` real tokens."""
    cfg = TrainConfig(corpus=str(bundled_corpus()), tokenizer_dir=str(tok_dir), preset=preset, log_every=1,
                      eval_every=10**9, checkpoint_every=10**9).resolved()  # fmt: skip
    steps = max(WARMUP_STEPS + 5, -(-token_budget // (cfg.batch_size * cfg.block_size)))
    trainer = KantaiTrainer(TrainConfig.from_dict({**cfg.to_dict(), "max_steps": steps}), run_dir)
    logged = [e for e in trainer.events() if isinstance(e, StepLogged)]
    first, last = logged[WARMUP_STEPS - 1], logged[-1]
    rate = (last.tokens - first.tokens) / (last.elapsed_s - first.elapsed_s)
    return trainer.model, {"steps": steps, "real_tokens": last.tokens, "real_tokens_per_s": round(rate)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--hf-steps", type=int, default=120)
    args = parser.parse_args()
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_DATA_HOME"] = tmp
        tok = Path(tmp) / "tok"
        train_tokenizer(bundled_corpus(), tok)
        cache = open_token_cache(bundled_corpus(), tok)
        train_idx, eval_idx = split_lines(cache.lines, 0.01, 42)
        from kantai_tui.core.bpe import load_tokenizer

        tokenizer = load_tokenizer(tok)
        texts = [tokenizer.decode(cache.line(int(i)).tolist()) for i in train_idx]
        evaluate = Evaluator(cache, eval_idx, tokenizer.token_to_id("<mask>"), tokenizer.get_vocab_size())
        hf_model, hf = tutorial_pipeline(tok, texts, args.preset, args.hf_steps, Path(tmp) / "hf")
        hf["eval_loss"] = round(evaluate(hf_model, "cpu", contextlib.nullcontext)[0], 4)
        k_model, kt = kantai_engine(tok, args.preset, hf["real_tokens"], Path(tmp) / "kantai")
        kt["eval_loss"] = round(evaluate(k_model, "cpu", contextlib.nullcontext)[0], 4)
    print(json.dumps({"preset": args.preset, "tutorial_trainer": hf, "kantai_default": kt,
                      "tokens_per_s_ratio": round(kt["real_tokens_per_s"] / hf["real_tokens_per_s"], 2)}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
