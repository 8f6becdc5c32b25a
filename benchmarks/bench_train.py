"""kantai's engine against the tutorial's pipeline (transformers Trainer), same corpus, preset and seed.

(a) the tutorial: ``Trainer`` + one example per non-empty line truncated at 128 (what
    ``LineByLineTextDataset`` built) + ``DataCollatorForLanguageModeling`` (15%), batch 64, lr 5e-5,
    fp32 as in the notebook;
(b) kantai's engine with its defaults (packed blocks, fixed masked slots with the LM head on them
    only, no dropout, lr with warm-up, bf16 autocast where the hardware has it, compile on CUDA).

Both train the same ``RobertaConfig`` on the training lines of the same held-out split, and are
evaluated by kantai's Evaluator on the same held-out lines with the same fixed masks. Reported:
real (non-padding) tokens per second after warm-up steps (compile time reported apart), held-out
loss after the same number of real tokens and after the same training time, the time each takes
to reach the tutorial's final held-out loss, and on CUDA the model FLOPs utilisation against a
device's nominal dense bf16 peak (speed.GPU_PEAKS) and against a bf16 matmul measured on it.
``--defaults`` reports tokens/s and both MFUs of each preset at the defaults a user gets (on CUDA the
batch measured at the start, compile with CUDA graphs); ``--scaling`` adds tokens/s and peak memory per
preset, per block size and for a 10× corpus, each in a fresh process.

Needs ``pip install -e '.[bench]'`` (Trainer requires accelerate). Run:
``python benchmarks/bench_train.py [--preset tiny] [--hf-steps 120] [--device auto] [--scaling]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from kantai_tui.core.corpus.sample import bundled_corpus
from kantai_tui.core.tokenizer.bpe import load_tokenizer, train_tokenizer
from kantai_tui.core.training.config import COMPILE_MODES, TrainConfig
from kantai_tui.core.training.data import PAD, open_token_cache, split_lines
from kantai_tui.core.training.events import StepLogged
from kantai_tui.core.training.presets import get_preset, model_size, roberta_config
from kantai_tui.core.training.speed import run_speed
from kantai_tui.core.training.step import Evaluator, may_use_cuda
from kantai_tui.core.training.trainer import Trainer as KantaiTrainer

WARMUP_STEPS = 5


def autocast_for(device: str, bf16: bool) -> contextlib.AbstractContextManager:
    """The evaluator's precision: what the model trained under."""
    import torch

    return torch.autocast(device.split(":")[0], dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def tutorial_pipeline(
    tok_dir: Path,
    lines: list[str],
    preset: str,
    steps: int,
    device: str,
    evaluate: Evaluator,
    eval_every: int,
    out: Path,
) -> tuple[object, dict]:
    """The notebook's Trainer run. A collator counts real and padded tokens; a callback stamps each step
    and evaluates every ``eval_every`` steps, its own time left out of the training time."""
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
    encoded = tokenizer(lines, add_special_tokens=True, truncation=True, max_length=128)["input_ids"]
    dataset = [{"input_ids": torch.tensor(ids, dtype=torch.long)} for ids in encoded]
    real: list[int] = []
    padded: list[int] = []

    class CountingCollator(DataCollatorForLanguageModeling):
        def __call__(self, examples: list) -> dict:
            batch = super().__call__(examples)
            real.append(
                int((batch["input_ids"] != PAD).sum())
                if "attention_mask" not in batch
                else int(batch["attention_mask"].sum())
            )
            padded.append(batch["input_ids"].numel())
            return batch

    train_s: list[float] = []  # training time at the end of each step, evaluations excluded
    curve: list[dict] = []

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.start, self.paused = 0.0, 0.0

        def on_train_begin(self, args: object, state: object, control: object, **kwargs: object) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, args: object, state: object, control: object, **kwargs: object) -> None:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            train_s.append(time.perf_counter() - self.start - self.paused)
            if len(train_s) % eval_every == 0 or len(train_s) == steps:
                began = time.perf_counter()
                loss = evaluate(kwargs["model"], device, contextlib.nullcontext)["eval_loss"]
                curve.append(
                    {
                        "step": len(train_s),
                        "train_s": round(train_s[-1], 3),
                        "tokens": sum(real),
                        "eval_loss": round(loss, 4),
                    }
                )
                self.paused += time.perf_counter() - began

    torch.manual_seed(42)
    model = RobertaForMaskedLM(roberta_config(get_preset(preset), tokenizer.vocab_size))
    args = TrainingArguments(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=64,
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
    seconds = train_s[steps - 1] - train_s[WARMUP_STEPS - 1]
    timed = slice(WARMUP_STEPS, steps)
    return model, {
        "steps": steps,
        "real_tokens": sum(real[:steps]),
        "train_s": round(train_s[steps - 1], 2),
        "real_tokens_per_s": round(sum(real[timed]) / seconds),
        "samples_per_s": round(64 * len(real[timed]) / seconds),
        "padded_tokens_per_s": round(sum(padded[timed]) / seconds),
        "real_fraction": round(sum(real) / sum(padded), 3),
        "mean_width": round(sum(padded) / 64 / len(padded), 1),
        "eval_loss": curve[-1]["eval_loss"],
        "curve": curve,
    }


def kantai_engine(cfg: TrainConfig, steps: int, run_dir: Path, evaluate: Evaluator, eval_every: int) -> dict:
    """kantai's loop for ``steps`` steps, evaluated every ``eval_every`` (while the trainer is paused between
    steps, so evaluation is not in its clock). Rates are over the steps after WARMUP_STEPS (compile included
    in those, and reported as ``warmup_s``)."""
    trainer = KantaiTrainer(replace(cfg, max_steps=steps, log_every=1), run_dir)
    logged: list[StepLogged] = []
    curve: list[dict] = []
    for event in trainer.events():
        if not isinstance(event, StepLogged):
            continue
        logged.append(event)
        if event.step % eval_every == 0 or event.step == steps:
            loss = evaluate(trainer.model, trainer.device, lambda: autocast_for(trainer.device, trainer.bf16))[
                "eval_loss"
            ]
            curve.append(
                {
                    "step": event.step,
                    "train_s": round(event.elapsed_s, 3),
                    "tokens": event.tokens,
                    "eval_loss": round(loss, 4),
                }
            )
    first, last = logged[WARMUP_STEPS - 1], logged[-1]
    seconds = last.elapsed_s - first.elapsed_s
    return {
        "steps": steps,
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "real_tokens": last.tokens,
        "train_s": round(last.elapsed_s, 2),
        "warmup_s": round(first.elapsed_s, 2),
        "real_tokens_per_s": round((last.tokens - first.tokens) / seconds),
        "samples_per_s": round(cfg.batch_size * (last.step - first.step) / seconds),
        "eval_loss": curve[-1]["eval_loss"],
        "device": trainer.device,
        "bf16": trainer.bf16,
        "compiled": trainer.compiled,
        "curve": curve,
    }


def time_to(curve: list[dict], target: float) -> float | None:
    """Training seconds at the first evaluation at or below ``target``."""
    return next((point["train_s"] for point in curve if point["eval_loss"] <= target), None)


def compare(args: argparse.Namespace, tmp: Path, device: str) -> dict:
    """Part 1: the two pipelines side by side."""
    tok = tmp / "tok"
    cache = open_token_cache(bundled_corpus(), tok)
    train_idx, eval_idx = split_lines(cache.lines, 0.01, 42)
    tokenizer = load_tokenizer(tok)
    texts = [tokenizer.decode(cache.line(int(i)).tolist()) for i in train_idx]
    evaluate = Evaluator(cache, eval_idx, tokenizer.token_to_id("<mask>"), tokenizer.get_vocab_size())
    _, hf = tutorial_pipeline(tok, texts, args.preset, args.hf_steps, device, evaluate, args.eval_every, tmp / "hf")
    cfg = TrainConfig(
        corpus=str(bundled_corpus()),
        tokenizer_dir=str(tok),
        preset=args.preset,
        device=device,
        batch_size=args.batch_size,
        compile=args.compile,
        eval_every=10**9,
        checkpoint_every=10**9,
    ).resolved(cuda=may_use_cuda(device))
    if cfg.batch_size is None:  # the defaults on a GPU: the batch a first trainer measures, for both runs
        cfg = KantaiTrainer(replace(cfg, max_steps=1), tmp / "k-measure").cfg
        print(f"kantai's batch: {cfg.batch_size}, lr {cfg.lr:.2g}", flush=True)
    per_step = cfg.batch * cfg.block_size
    equal_tokens = max(WARMUP_STEPS + 5, -(-hf["real_tokens"] // per_step))
    kt = kantai_engine(cfg, equal_tokens, tmp / "k-tokens", evaluate, max(1, equal_tokens // 10))
    # as long as the tutorial trained (its rate measured above), a fresh run with its schedule over that time
    equal_time = max(equal_tokens, int(hf["train_s"] * kt["real_tokens_per_s"] / per_step))
    kw = kantai_engine(cfg, equal_time, tmp / "k-time", evaluate, max(1, equal_time // 40))
    target = hf["eval_loss"]
    # from the second run: its compile (if any) hit the caches the first one filled; the first compile is
    # reported apart as compile_warmup_s
    hf_time, k_time = time_to(hf["curve"], target), time_to(kw["curve"], target)
    result = {
        "preset": args.preset,
        "tutorial_trainer": hf,
        "kantai_equal_tokens": kt,
        "kantai_equal_time": kw,
        "tokens_per_s_ratio": round(kt["real_tokens_per_s"] / hf["real_tokens_per_s"], 2),
        "target_loss": target,
        "time_to_target_s": {"tutorial": hf_time, "kantai": k_time},
        "compile_warmup_s": round(kt["warmup_s"] - kw["warmup_s"], 2) if kt["compiled"] else None,
        "time_to_target_ratio": round(hf_time / k_time, 1) if hf_time and k_time else None,
    }
    if device.startswith("cuda"):
        speed = run_speed(cfg, tokenizer.get_vocab_size(), device, bf16=True)
        hf_flops = model_size(get_preset(args.preset), tokenizer.get_vocab_size(), 64, round(hf["mean_width"]), 1.0)
        peaks = {"nominal": speed.peak, "measured": speed.matmul}
        result["mfu"] = {
            "flop_model": speed.flop_model,
            "kantai_flops_per_token": speed.flops_per_token,
            "tutorial_flops_per_padded_token": hf_flops.train_flops_per_token,
            **{
                f"{name}_peak": None if peak is None else {"tflops": round(peak.tflops, 1), "source": peak.source}
                for name, peak in peaks.items()
            },
            **{
                f"{who}_{name}": round(rate * flops / (peak.tflops * 1e12), 3)
                for name, peak in peaks.items()
                if peak is not None
                for who, rate, flops in (
                    ("kantai", kt["real_tokens_per_s"], speed.flops_per_token),
                    ("tutorial", hf["padded_tokens_per_s"], hf_flops.train_flops_per_token),
                )
            },
        }
    return result


# --- scaling: one fresh process per point, so peak memory is that configuration's ----------------------


def scaling_point(spec: dict) -> dict:
    """Train ``spec['steps']`` steps of one configuration; tokens/s after 2 warm-up steps and peak memory."""
    import torch

    cfg = TrainConfig(
        corpus=spec["corpus"],
        tokenizer_dir=spec["tok"],
        preset=spec["preset"],
        device=spec["device"],
        block_size=spec["block"],
        batch_size=spec["batch"],
        compile=spec["compile"],
        log_every=1,
        eval_every=10**9,
        checkpoint_every=10**9,
        max_steps=spec["steps"],
    ).resolved()
    trainer = KantaiTrainer(cfg, Path(spec["run"]))
    logged = [e for e in trainer.events() if isinstance(e, StepLogged)]
    first, last = logged[1], logged[-1]
    cuda = trainer.device.startswith("cuda")
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        **{k: spec[k] for k in ("preset", "block", "batch", "label")},
        "tokens_per_s": round((last.tokens - first.tokens) / (last.elapsed_s - first.elapsed_s)),
        "peak_memory_mib": round(peak / 2**20),
        "memory_kind": "CUDA allocated" if cuda else "process RSS",
    }


def defaults_point(spec: dict) -> dict:
    """One preset at the defaults a user gets on this device (batch measured on CUDA, compile auto), for
    ``spec['steps']`` steps: the batch chosen and why, tokens/s over the steps after the first log window
    (compile and CUDA-graph capture fall in that window, reported as ``warmup_s``), achieved TFLOP/s, MFU
    against the nominal peak and against the measured matmul rate, and peak memory."""
    import torch

    from kantai_tui.core.training.step import may_use_cuda

    cfg = TrainConfig(
        corpus=spec["corpus"],
        tokenizer_dir=spec["tok"],
        preset=spec["preset"],
        device=spec["device"],
        batch_size=spec.get("batch"),
        measure_batch=spec.get("measure", False),
        compile=spec["compile"],
        log_every=spec["log_every"],
        eval_every=10**9,
        checkpoint_every=10**9,
        max_steps=spec["steps"],
        epochs=None,
    ).resolved(cuda=may_use_cuda(spec["device"]))
    began = time.perf_counter()
    trainer = KantaiTrainer(cfg, Path(spec["run"]))
    setup_s = time.perf_counter() - began
    events = list(trainer.events())
    started = next(e for e in events if e.kind == "started")
    logged = [e for e in events if isinstance(e, StepLogged)]
    first, last = logged[0], logged[-1]
    rate = (last.tokens - first.tokens) / max(last.elapsed_s - first.elapsed_s, 1e-9)
    speed = trainer.speed
    cuda = trainer.device.startswith("cuda")
    return {
        "preset": spec["preset"],
        "label": spec.get("label", "defaults"),
        "batch": trainer.cfg.batch,
        "lr": trainer.cfg.lr,
        "batch_reason": started.batch_reason,
        "device": started.device,
        "setup_s": round(setup_s, 1),
        "warmup_s": round(first.elapsed_s, 2),
        "steps": last.step,
        "tokens_per_s": round(rate),
        "tflops": round(speed.tflops(rate), 2),
        "mfu_nominal": None if speed.mfu(rate) is None else round(speed.mfu(rate) or 0.0, 4),
        "peak_tflops": speed.peak.tflops if speed.peak else None,
        "peak_source": speed.peak.source if speed.peak else None,
        "mfu_measured": round(speed.tflops(rate) / speed.matmul.tflops, 4) if speed.matmul else None,
        "matmul_tflops": round(speed.matmul.tflops, 1) if speed.matmul else None,
        "flops_per_token": speed.flops_per_token,
        "flop_model": speed.flop_model,
        "data_wait": last.data_wait,
        "peak_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20) if cuda else None,
    }


def defaults(args: argparse.Namespace, tmp: Path, device: str) -> list[dict]:
    """``--defaults``: each preset of ``--presets`` at its defaults, then each ``--extra`` setting, each in a
    fresh process (its own compile and memory high-water mark)."""
    rows = []
    points = [{"preset": p} for p in args.presets.split(",")]
    for extra in args.extra or []:  # e.g. kantai:512:max-autotune
        preset, batch, *mode = extra.split(":")
        points.append(
            {
                "preset": preset,
                "batch": int(batch),
                "compile": mode[0] if mode else args.compile,
                "label": f"batch {batch}" + (f", compile {mode[0]}" if mode else ""),
            }
        )
    for index, point in enumerate(points):
        spec = {
            "corpus": str(bundled_corpus()),
            "tok": str(tmp / "tok"),
            "device": device,
            "compile": args.compile,
            "steps": args.steps,
            "log_every": max(1, args.steps // 4),
            "run": str(tmp / f"defaults-{index}"),
            "measure": args.measure,
            **point,
        }
        rows.append(_in_a_fresh_process("--defaults-point", spec))
    return rows


def _in_a_fresh_process(flag: str, spec: dict) -> dict:
    """One measurement point in its own process (its own compile caches and memory high-water mark)."""
    child = subprocess.run(
        [sys.executable, __file__, flag, json.dumps(spec)], capture_output=True, text=True, check=False, env=os.environ
    )
    if child.returncode != 0:
        raise SystemExit(f"{flag} {spec} failed (exit {child.returncode}):\n{child.stderr[-3000:]}")
    row = json.loads(child.stdout.strip().splitlines()[-1])
    print(json.dumps(row), flush=True)
    return row


def scaling(args: argparse.Namespace, tmp: Path, device: str) -> list[dict]:
    """tiny/small/kantai at block 128; tiny at 256/512; tiny on the corpus ×1 and ×10 (caches built first)."""
    tok = str(tmp / "tok")
    big = tmp / "corpus-x10.txt"
    one = "".join(p.read_text(encoding="utf-8") for p in sorted(bundled_corpus().glob("*.txt")))
    big.write_text(one * 10, encoding="utf-8")
    open_token_cache(big, tok)
    small_steps = 4 if device == "cpu" else 12
    points = [
        ("tiny", 128, str(bundled_corpus()), "presets"),
        ("small", 128, str(bundled_corpus()), "presets"),
        ("kantai", 128, str(bundled_corpus()), "presets"),
        ("tiny", 256, str(bundled_corpus()), "block size"),
        ("tiny", 512, str(bundled_corpus()), "block size"),
        ("tiny", 128, str(big), "corpus ×10"),
    ]
    if device != "cpu":
        points += [
            ("kantai", 256, str(bundled_corpus()), "block size"),
            ("kantai", 512, str(bundled_corpus()), "block size"),
        ]
    rows = []
    for index, (preset, block, corpus, label) in enumerate(points):
        batch = args.batch_size or 32
        spec = {
            "preset": preset,
            "block": block,
            "batch": max(1, batch * 128 // block),
            "corpus": corpus,
            "tok": tok,
            "device": device,
            "compile": args.compile,
            "label": label,
            "run": str(tmp / f"scale-{index}"),
            "steps": small_steps if preset != "kantai" or device != "cpu" else 4,
        }
        rows.append(_in_a_fresh_process("--scaling-point", spec))
    return rows


def _without_curves(value: object) -> object:
    """The summary for the terminal (curves go to --json)."""
    if isinstance(value, dict):
        return {k: _without_curves(v) for k, v in value.items() if k != "curve"}
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--hf-steps", type=int, default=120)
    parser.add_argument("--eval-every", type=int, default=10, help="tutorial steps between evaluations")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, help="kantai's batch (default: the engine's)")
    parser.add_argument("--compile", default="auto", choices=COMPILE_MODES)
    parser.add_argument("--scaling", action="store_true", help="also tokens/s and peak memory per preset/block/corpus")
    parser.add_argument("--no-compare", action="store_true", help="skip the side-by-side comparison")
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    parser.add_argument(
        "--defaults", action="store_true", help="tokens/s and MFU of --presets at the defaults a user gets"
    )
    parser.add_argument("--presets", default="tiny,small,kantai", help="with --defaults (default tiny,small,kantai)")
    parser.add_argument("--steps", type=int, default=200, help="with --defaults: steps per preset (default 200)")
    parser.add_argument("--measure", action="store_true", help="with --defaults: measure the batch on a CPU too")
    parser.add_argument(
        "--extra", action="append", metavar="PRESET:BATCH[:MODE]", help="with --defaults: also this setting"
    )
    parser.add_argument("--scaling-point", help=argparse.SUPPRESS)
    parser.add_argument("--defaults-point", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scaling_point:
        print(json.dumps(scaling_point(json.loads(args.scaling_point))))
        return
    if args.defaults_point:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        print(json.dumps(defaults_point(json.loads(args.defaults_point))))
        return
    import torch
    from transformers.utils import logging as hf_logging

    from kantai_tui.core.training.step import pick_device

    hf_logging.set_verbosity_error()
    device = pick_device(args.device)
    name = torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or "CPU"
    machine = (
        f"{platform.platform()}, {os.cpu_count()} CPUs, {name}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"machine: {machine}", flush=True)
    results: dict = {"machine": machine, "command": " ".join(sys.argv)}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        os.environ["XDG_DATA_HOME"] = str(tmp)
        train_tokenizer(bundled_corpus(), tmp / "tok")
        if not args.no_compare:
            results["compare"] = compare(args, tmp, device)
            print(json.dumps(_without_curves(results["compare"]), indent=1), flush=True)
        if args.defaults:
            results["defaults"] = defaults(args, tmp, device)
        if args.scaling:
            results["scaling"] = scaling(args, tmp, device)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
