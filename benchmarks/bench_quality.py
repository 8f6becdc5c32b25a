"""What the model knows per minute of training: kantai's defaults against the tutorial's pipeline.

For wall-clock budgets (CPU: 2, 5, 10 min; GPU: 15 s, 60 s, 5 min) it trains

(a) the tutorial's pipeline: transformers' ``Trainer``, one example per non-empty line truncated
    at 128, ``DataCollatorForLanguageModeling`` (15%), the tutorial's ``RobertaConfig`` (the
    ``kantai`` preset), batch 64, lr 5e-5, one epoch, fp32 as in the notebook; one run as long as
    the longest budget, scored as it passes each budget (scoring time left out of its clock);
(b) kantai's defaults, one run per budget (``--time BUDGET``: the schedule fitted to it), scored at
    the end and along the way (the quality-over-time curve, in tokens and seconds),

on the same corpus, tokenizer and held-out split, and scores both with kantai's Evaluator: held-out
loss, masked-token accuracy, content-word accuracy (targets outside the corpus's 100 most
frequent tokens and punctuation), cloze hits@1/@5 (one content word masked in each usable
held-out line), and the top 5 for the tutorial's prompt "Human thinking involves human <mask>.".

``--ablations NAME,...`` (or ``all``) trains variants of the defaults at ``--ablation-budgets``
(default 2 and 5 min) instead, one setting changed each, and reports the same figures.

Needs ``pip install -e '.[bench]'`` (Trainer requires accelerate). Run:
``python benchmarks/bench_quality.py --json benchmarks/results/cpu-quality.json``
``python benchmarks/bench_quality.py --ablations all --json benchmarks/results/cpu-quality-ablations.json``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from kantai_tui.core.corpus.sample import bundled_corpus
from kantai_tui.core.tokenizer.bpe import load_tokenizer, train_tokenizer
from kantai_tui.core.training.config import TrainConfig, run_length
from kantai_tui.core.training.data import open_token_cache, split_lines
from kantai_tui.core.training.events import EvalLogged, StepLogged
from kantai_tui.core.training.presets import PRESETS, Preset, get_preset, roberta_config
from kantai_tui.core.training.quality import cloze_prompts, content_table
from kantai_tui.core.training.step import Evaluator, may_use_cuda
from kantai_tui.core.training.trainer import Trainer as KantaiTrainer

PROMPT = "Human thinking involves human <mask>."
CPU_BUDGETS = (120.0, 300.0, 600.0)
GPU_BUDGETS = (15.0, 60.0, 300.0)

# Shapes tried beside the presets (width by depth for a CPU budget); registered so TrainConfig accepts them.
EXTRA_SHAPES = {
    "w256l2": Preset("w256l2", 256, 2, 4, 1024, description="ablation: small's width, tiny's depth"),
    "w192l3": Preset("w192l3", 192, 3, 3, 768, description="ablation: between tiny and small"),
    "w128l4": Preset("w128l4", 128, 4, 2, 512, description="ablation: tiny's width, small's depth"),
}

# One setting changed from the defaults each (TrainConfig fields).
ABLATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "seed-7": {"seed": 7},
    "seed-1234": {"seed": 1234},
    "lr-2x": {"lr": "2x"},
    "lr-half": {"lr": "0.5x"},
    "warmup-0.02": {"warmup_ratio": 0.02},
    "warmup-0.2": {"warmup_ratio": 0.2},
    "schedule-wsd": {"schedule": "wsd"},
    "schedule-cosine": {"schedule": "cosine"},
    "mask-0.3": {"mlm_probability": 0.3},
    "mask-0.4": {"mlm_probability": 0.4},
    "dropout-0.1": {"dropout": 0.1},
    "batch-16": {"batch_size": 16},
    "batch-64": {"batch_size": 64},
    "preset-tiny": {"preset": "tiny"},
    "preset-small": {"preset": "small"},
    "shape-w256l2": {"preset": "w256l2"},
    "shape-w192l3": {"preset": "w192l3"},
    "shape-w128l4": {"preset": "w128l4"},
    "span-block": {"attention_span": "block"},
    "span-line-mask-only": {"attention_span": "line", "_line": "mask-only"},
    "span-line-positions-only": {"attention_span": "line", "_line": "positions-only"},
    "weight-decay-0.1": {"weight_decay": 0.1},
    # the 2-minute winners together, with and without dropout, for the 10-minute (44-epoch) regime
    "winners": {"mlm_probability": 0.4, "schedule": "wsd", "warmup_ratio": 0.2},
    "winners-dropout-0.1": {"mlm_probability": 0.4, "schedule": "wsd", "warmup_ratio": 0.2, "dropout": 0.1},
    "block-64": {"block_size": 64},
    "block-256": {"block_size": 256},
}


class Scorer:
    """kantai's Evaluator with the content table and cloze set, plus the tutorial prompt's top 5."""

    def __init__(self, tok_dir: Path, seed: int = 42) -> None:
        """``seed``: the run's, which decides its held-out split (another seed holds out other lines)."""
        tokenizer = load_tokenizer(tok_dir)
        cache = open_token_cache(bundled_corpus(), tok_dir)
        self.train_idx, eval_idx = split_lines(cache.lines, 0.01, seed)
        content = content_table(cache, tokenizer)
        cloze = cloze_prompts(cache, eval_idx, tokenizer, content)
        self.cloze_count = len(cloze)
        self.mask_id = tokenizer.token_to_id("<mask>")
        self.evaluate = Evaluator(
            cache, eval_idx, self.mask_id, tokenizer.get_vocab_size(), content=content, cloze=cloze
        )
        self.tokenizer, self.cache = tokenizer, cache

    def __call__(self, model: Any, device: str, bf16: bool = False) -> dict:
        import torch

        autocast = (
            (lambda: torch.autocast(device.split(":")[0], dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
        )
        result = {k: round(v, 4) for k, v in (self.evaluate(model, device, autocast) or {}).items()}
        return {**result, "prompt_top5": self.prompt_top5(model, device)}

    def prompt_top5(self, model: Any, device: str) -> list[str]:
        import torch

        encoding = self.tokenizer.encode(PROMPT)
        position = encoding.ids.index(self.mask_id)
        model.eval()
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([encoding.ids], device=device)).logits[0, position].float()
        model.train()
        probabilities = logits.softmax(-1)
        top = probabilities.topk(5)
        return [
            f"{(self.tokenizer.id_to_token(int(i)) or f'<row {int(i)}>').removeprefix('Ġ')} {float(p):.1%}"
            for p, i in zip(top.values, top.indices, strict=True)
        ]


def tutorial_pipeline(tok_dir: Path, scorer: Scorer, budgets: tuple[float, ...], device: str, out: Path) -> list[dict]:
    """The notebook's Trainer, stopped at the longest budget, scored as its training clock passes each."""
    import torch
    from transformers import (
        DataCollatorForLanguageModeling,
        RobertaForMaskedLM,
        RobertaTokenizerFast,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    tokenizer = RobertaTokenizerFast.from_pretrained(str(tok_dir), max_length=512)
    lines = [scorer.tokenizer.decode(scorer.cache.line(int(i)).tolist()) for i in scorer.train_idx]
    encoded = tokenizer(lines, add_special_tokens=True, truncation=True, max_length=128)["input_ids"]
    dataset = [{"input_ids": torch.tensor(ids, dtype=torch.long)} for ids in encoded]
    real: list[int] = []

    class CountingCollator(DataCollatorForLanguageModeling):
        def __call__(self, examples: list) -> dict:
            batch = super().__call__(examples)
            real.append(int(batch["attention_mask"].sum()) if "attention_mask" in batch else batch["input_ids"].numel())
            return batch

    points: list[dict] = []
    pending = list(budgets)

    class Clock(TrainerCallback):
        """Training seconds, scoring excluded; scores at each budget and stops after the last."""

        def __init__(self) -> None:
            self.start, self.paused = 0.0, 0.0

        def on_train_begin(self, args: object, state: object, control: object, **kwargs: object) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            trained = time.perf_counter() - self.start - self.paused
            while pending and trained >= pending[0]:
                began = time.perf_counter()
                score = scorer(kwargs["model"], device)
                points.append(
                    {"budget_s": pending.pop(0), "train_s": round(trained, 1), "steps": state.global_step}
                    | {"tokens": sum(real), **score}
                )
                print(f"  tutorial @ {points[-1]['budget_s']:g}s: {_brief(points[-1])}", flush=True)
                self.paused += time.perf_counter() - began
            control.should_training_stop = not pending

    torch.manual_seed(42)
    model = RobertaForMaskedLM(roberta_config(get_preset("kantai"), tokenizer.vocab_size))
    args = TrainingArguments(
        output_dir=str(out),
        num_train_epochs=1,
        per_device_train_batch_size=64,
        learning_rate=5e-5,
        save_strategy="no",
        logging_strategy="no",
        report_to=[],
        seed=42,
        use_cpu=device == "cpu",
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    collator = CountingCollator(tokenizer=tokenizer, mlm=True, mlm_probability=0.15)
    Trainer(model=model, args=args, data_collator=collator, train_dataset=dataset, callbacks=[Clock()]).train()
    for budget in pending:  # the epoch ended before this budget: its score is the end of the epoch
        points.append({"budget_s": budget, "note": "the tutorial's one epoch ended before this budget"})
    return points


def kantai_run(base: TrainConfig, budget: float, run_dir: Path, scorer: Scorer, curve_every: int | None) -> dict:
    """kantai's loop with ``--time budget``; scored at the end (and every ``curve_every`` steps by the run's
    own evaluations, which count in its clock as they do for a user)."""
    import torch

    cfg = replace(base, **run_length(None, None, budget), eval_every=curve_every or 10**9)
    cfg = cfg.resolved(cuda=may_use_cuda(cfg.device))  # on a GPU, the batch a user's run would measure
    torch._dynamo.reset()  # each Trainer's loss module is a new class: past 8, dynamo stops compiling them
    began = time.perf_counter()
    trainer = KantaiTrainer(cfg, run_dir)
    setup_s = time.perf_counter() - began
    curve: list[dict] = []
    last: StepLogged | None = None
    for event in trainer.events():
        if isinstance(event, StepLogged):
            last = event
        elif isinstance(event, EvalLogged) and curve_every and last is not None:
            curve.append(
                {"step": event.step, "train_s": last.elapsed_s, "tokens": last.tokens}
                | {k: round(v, 4) for k, v in vars(event).items() if isinstance(v, float)}
            )
    assert last is not None
    if cfg.seed != 42:  # scored on its own held-out lines: the default split's are in its training lines
        scorer = Scorer(Path(cfg.tokenizer_dir), cfg.seed)
    score = scorer(trainer.model, trainer.device, trainer.bf16)
    return {
        "budget_s": budget,
        "train_s": last.elapsed_s,
        "setup_s": round(setup_s, 1),
        "steps": last.step,
        "tokens": last.tokens,
        "tokens_per_s": round(last.tokens / max(last.elapsed_s, 1e-9)),
        "batch": trainer.cfg.batch_size,
        "lr": trainer.cfg.lr,
        "config": {k: v for k, v in cfg.to_dict().items() if k not in ("corpus", "tokenizer_dir", "probes")},
        **score,
        **({"curve": curve} if curve_every else {}),
    }


def _brief(point: dict) -> str:
    keys = ("eval_loss", "mask_acc", "content_acc", "cloze_hits1", "cloze_hits5")
    figures = " ".join(f"{k}={point.get(k)}" for k in keys)
    return f"{figures} steps={point.get('steps')} top5={point.get('prompt_top5')}"


def _variant(defaults: TrainConfig, change: dict[str, Any]) -> TrainConfig:
    """The defaults with one change; 'Nx' scales the default value. A shape without its own default lr
    (the extra shapes) keeps the default preset's. Keys starting with '_' are not config fields."""
    resolved = defaults.resolved()
    values = {
        k: getattr(resolved, k) * float(v[:-1]) if isinstance(v, str) and v.endswith("x") else v
        for k, v in change.items()
        if not k.startswith("_")
    }
    if values.get("preset") in EXTRA_SHAPES and "lr" not in values:
        values["lr"] = resolved.lr
    return replace(defaults, **values)


@contextlib.contextmanager
def line_parts(which: str | None) -> Iterator[None]:
    """Attribution of --attention-span line: keep only its mask (positions run on across the block) or only
    its positions (attention across the block), by swapping step.line_attention for this run."""
    from kantai_tui.core.training import step

    original = step.line_attention

    def mask_only(inputs: Any) -> tuple:
        mask, _ = original(inputs)
        return mask, None

    def positions_only(inputs: Any) -> tuple:
        _, positions = original(inputs)
        return None, positions

    step.line_attention = {"mask-only": mask_only, "positions-only": positions_only}.get(which or "", original)
    try:
        yield
    finally:
        step.line_attention = original


def _machine(device: str) -> str:
    import torch

    name = torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or "CPU"
    return (
        f"{platform.platform()}, {os.cpu_count()} CPUs, {name}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", help="comma-separated seconds (default: 120,300,600 on CPU, 15,60,300 on GPU)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-tutorial", action="store_true", help="skip the tutorial pipeline")
    parser.add_argument("--ablations", help="comma-separated names, or 'all': " + ", ".join(ABLATIONS))
    parser.add_argument("--ablation-budgets", default="120,300", help="seconds (default 120,300)")
    parser.add_argument("--curve-every", type=int, default=100, help="steps between the default run's evaluations")
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    args = parser.parse_args()
    from transformers.utils import logging as hf_logging

    from kantai_tui.core.training.step import pick_device

    hf_logging.set_verbosity_error()
    PRESETS.update(EXTRA_SHAPES)
    device = pick_device(args.device)
    cuda = device.startswith("cuda")
    budgets = (
        tuple(float(b) for b in args.budgets.split(",")) if args.budgets else (GPU_BUDGETS if cuda else CPU_BUDGETS)
    )
    results: dict[str, Any] = {"machine": _machine(device), "command": " ".join(sys.argv), "date": time.strftime("%F")}
    print(f"machine: {results['machine']}", flush=True)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        os.environ["XDG_DATA_HOME"] = str(tmp)
        tok = tmp / "tok"
        train_tokenizer(bundled_corpus(), tok)
        scorer = Scorer(tok)
        results["cloze_prompts"] = scorer.cloze_count
        defaults = TrainConfig(
            corpus=str(bundled_corpus()), tokenizer_dir=str(tok), device=device, checkpoint_every=10**9
        )
        if args.ablations:
            names = list(ABLATIONS) if args.ablations == "all" else args.ablations.split(",")
            results["ablations"] = ablations(names, defaults, args, tmp, scorer)
        else:
            results["kantai"] = []
            for budget in budgets:
                longest = budget == max(budgets)
                point = kantai_run(
                    defaults, budget, tmp / f"k-{budget:g}", scorer, args.curve_every if longest else None
                )
                results["kantai"].append(point)
                print(f"kantai @ {budget:g}s: {_brief(point)}", flush=True)
            if not args.no_tutorial:
                results["tutorial"] = tutorial_pipeline(tok, scorer, budgets, device, tmp / "hf")
            results["summary"] = summary(results)
            print(json.dumps(results["summary"], indent=1), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def ablations(names: list[str], defaults: TrainConfig, args: argparse.Namespace, tmp: Path, scorer: Scorer) -> list:
    rows = []
    for budget in (float(b) for b in args.ablation_budgets.split(",")):
        for name in names:
            cfg = _variant(defaults, ABLATIONS[name])
            with line_parts(ABLATIONS[name].get("_line")):
                point = kantai_run(cfg, budget, tmp / f"a-{name}-{budget:g}", scorer, None)
            rows.append({"ablation": name, "change": ABLATIONS[name], **point})
            print(f"{name} @ {budget:g}s: {_brief(point)}", flush=True)
    return rows


def summary(results: dict) -> list[dict]:
    """Per budget: both pipelines' figures and kantai's lead (tutorial minus kantai loss; hits ratio)."""
    rows = []
    tutorial = {p["budget_s"]: p for p in results.get("tutorial", [])}
    for point in results["kantai"]:
        theirs = tutorial.get(point["budget_s"], {})
        keys = ("eval_loss", "mask_acc", "content_acc", "cloze_hits1", "cloze_hits5", "prompt_top5", "tokens")
        rows.append(
            {
                "budget_s": point["budget_s"],
                "kantai": {k: point.get(k) for k in keys},
                "tutorial": {k: theirs.get(k) for k in keys},
                "loss_lead": round(theirs["eval_loss"] - point["eval_loss"], 3) if "eval_loss" in theirs else None,
            }
        )
    return rows


if __name__ == "__main__":
    main()
