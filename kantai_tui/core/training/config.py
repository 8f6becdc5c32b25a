"""The training configuration: one frozen dataclass, every default resolved before the run starts.

``run.json`` stores the resolved form, so a resumed run uses exactly the settings of the
original, and nobody has to know which defaults applied.
"""

from __future__ import annotations

import re
from dataclasses import MISSING, asdict, dataclass, fields, replace
from typing import Any, TypeVar

from kantai_tui.core.corpus.files import ERROR_MODES
from kantai_tui.core.errors import BadInputError
from kantai_tui.core.training.presets import PRESETS

RECIPES = ("packed", "seed")
PRECISIONS = ("auto", "fp32", "bf16")
COMPILE_MODES = ("auto", "on", "off", "reduce-overhead", "max-autotune")
SCHEDULES = ("linear", "wsd", "cosine")
ATTENTION_SPANS = ("block", "line")
WSD_DECAY = 0.25  # warmup-stable-decay: the lr falls to 0 over the last quarter of the run
# The tutorial's Trainer defaults; kantai's packed defaults were tuned on the tiny preset (docs/BENCHMARKS.md).
SEED_RECIPE = {
    "lr": 5e-5,
    "warmup_ratio": 0.0,
    "weight_decay": 0.0,
    "batch_size": 64,
    "dropout": 0.1,
    "attention_span": "block",
    "mlm_probability": 0.15,
}
PACKED_LR = {"tiny": 2e-3, "small": 1e-3, "kantai": 5e-4}
# No dropout for packed pretraining: one pass over a corpus does not overfit, and dropout costs
# time and slows learning (held-out loss at equal tokens, docs/BENCHMARKS.md), as in Cramming BERT.
# Attention within each line of a packed block, positions restarting per line: the one change that took the
# held-out loss from the unigram plateau (5.8) to 4.2 in 2 minutes (bench_quality.py, BENCHMARKS.md).
PACKED_RECIPE = {
    "warmup_ratio": 0.05,
    "weight_decay": 0.01,
    "batch_size": 32,
    "dropout": 0.0,
    "attention_span": "line",
    "mlm_probability": 0.3,  # masked in training; evaluation always masks 15%
}

# A run given no length (no --epochs, --max-steps or --time): DEFAULT_EPOCHS or DEFAULT_TIME_S of training,
# whichever comes first, so it ends on a slow laptop as on a GPU (chosen by bench_quality.py, BENCHMARKS.md).
DEFAULT_EPOCHS = 100.0
DEFAULT_TIME_S = 600.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhd])+")


def parse_duration(text: str) -> float:
    """'90s', '10m', '1h30m', '2.5m' or plain seconds ('600') as seconds; a BadInputError says what is wrong."""
    value = text.strip().lower()
    if not value:
        raise BadInputError("the time budget is empty; write it like 90s, 10m or 1h30m")
    try:
        return float(value)
    except ValueError:
        pass
    if not _DURATION.fullmatch(value):
        raise BadInputError(f"{text!r} is not a time budget; write it like 90s, 10m or 1h30m")
    return sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(value))


def duration(seconds: float) -> str:
    """3,725 s -> '1h02m'; 125 s -> '2m05s' (never more precision than a person reads); parse_duration reads
    it back, so a hint may print a budget this way."""
    whole = max(int(seconds), 0)
    if whole >= 3600:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 60}m{whole % 60:02d}s"


def run_length(epochs: float | None, max_steps: int | None, time_s: float | None) -> dict[str, Any]:
    """The length fields of a new run's config from what the user gave: nothing means the defaults
    (DEFAULT_EPOCHS or DEFAULT_TIME_S, whichever first); --time alone means no epoch limit."""
    if epochs is None and max_steps is None and time_s is None:
        return {"epochs": DEFAULT_EPOCHS, "max_steps": None, "time_s": DEFAULT_TIME_S}
    return {"epochs": epochs, "max_steps": max_steps, "time_s": time_s}


T = TypeVar("T")


def _set(value: T | None, name: str) -> T:
    if value is None:
        raise TypeError(f"TrainConfig.{name} is read before resolved() filled it")
    return value


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a run computes (paths are absolute once resolved)."""

    corpus: str
    tokenizer_dir: str
    preset: str = "tiny"
    recipe: str = "packed"
    block_size: int = 128
    batch_size: int | None = None  # None once resolved: the trainer picks it (batching.py), then run.json holds it
    # measure the batch on any device (--batch-size auto); by default only a CUDA run measures, a CPU one takes 32
    measure_batch: bool = False
    grad_accum: int = 1
    lr: float | None = None
    warmup_ratio: float | None = None
    weight_decay: float | None = None
    epochs: float | None = 1.0  # None: no epoch limit (the run ends at max_steps or time_s)
    max_steps: int | None = None
    seed: int = 42
    holdout: float = 0.01
    mlm_probability: float | None = None  # share of tokens masked in training; None: the recipe's
    clip_norm: float = 1.0
    log_every: int = 10
    eval_every: int = 200
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    sparse_head: bool = True
    device: str = "auto"
    errors: str = "strict"
    text_field: str = "text"  # the field (JSON lines) or column (parquet) that holds a record's text
    probes: str | None = None  # a file of <mask> sentences; None = the default set
    auto_batch_size: bool = False  # on out-of-memory, split each batch in two and retry (same effective batch)
    precision: str = "auto"  # auto: bf16 autocast on CUDA and on CPUs with native bf16 (avx512_bf16/amx), else fp32
    dropout: float | None = None  # hidden and attention dropout; None: the recipe's (packed 0.0, seed 0.1)
    # torch.compile the training step; auto: on CUDA (with CUDA graphs, mode reduce-overhead, when one process
    # takes whole steps), and on a CPU for a --time of 2 min or more; reduce-overhead, max-autotune: that mode
    compile: str = "auto"
    time_s: float | None = None  # training time budget: the schedule follows the clock, the run ends at it
    schedule: str = "linear"  # lr after warm-up: linear decay to 0, wsd (hold, then decay), cosine
    # packed: attend within each line (positions restart per line) or across the block; None: the recipe's
    # (a run.json from before the option has none: such a run resumes as it was trained, across the block)
    attention_span: str | None = None
    # where the lr schedule's current segment starts: set when an extension (--resume RUN --epochs…) or a
    # fork (--from RUN) gives the run a new length; None = the segment is the whole run (step.lr_at)
    segment_step: int | None = None
    segment_s: float | None = None  # training seconds at segment_step (a --time budget's segment)
    segment_lr: float | None = None  # the lr when the segment began: its warm-up starts there
    # a fork with --reset-optimizer: the parent's checkpoint at this step is loaded without its optimizer state
    fresh_optimizer_at: int | None = None

    @property
    def batch(self) -> int:
        """The global batch size, once resolved (reading it before ``resolved()`` is a bug)."""
        return _set(self.batch_size, "batch_size")

    @property
    def peak_lr(self) -> float:
        """The learning rate at the end of warm-up, once resolved."""
        return _set(self.lr, "lr")

    @property
    def mask_rate(self) -> float:
        """The share of tokens masked in training, once resolved (a run.json from before it was a recipe
        default holds 0.15)."""
        return _set(self.mlm_probability, "mlm_probability")

    @property
    def warmup(self) -> float:
        return _set(self.warmup_ratio, "warmup_ratio")

    @property
    def decay(self) -> float:
        return _set(self.weight_decay, "weight_decay")

    def resolved(self, cuda: bool = False) -> TrainConfig:
        """Fill the recipe's defaults and check every value, with a message naming the option.

        One default may be left to the trainer: a packed run's batch when it trains on a GPU (``cuda``:
        the device is cuda, or auto on a machine that has one; step.may_use_cuda) or is asked to measure
        (``measure_batch``). Which batch fills a GPU is a measurement on that GPU (batching.py); the lr,
        which scales with the batch, then waits for it too."""
        self._check()
        base = SEED_RECIPE if self.recipe == "seed" else {**PACKED_RECIPE, "lr": PACKED_LR.get(self.preset)}
        if self.batch_size is None and self.batch_waits(cuda):
            base = {k: v for k, v in base.items() if k not in ("batch_size", "lr")}
        filled: dict[str, Any] = {k: v for k, v in base.items() if getattr(self, k) is None}
        return replace(self, **filled)

    def batch_waits(self, cuda: bool = False) -> bool:
        """Whether the trainer picks this packed run's batch when none is given: on a GPU, or when asked to
        measure; elsewhere the recipe's 32 (the batch the CPU recipe was tuned at)."""
        return self.recipe == "packed" and (self.measure_batch or cuda or self.device.startswith("cuda"))

    def with_batch(self, batch: int, lr: float | None) -> TrainConfig:
        """The config once the trainer picked the batch; ``lr`` fills an lr that waited for it."""
        return replace(self, batch_size=batch, lr=self.lr if self.lr is not None else lr)

    def _check(self) -> None:
        if self.preset not in PRESETS:
            raise BadInputError(f"--preset {self.preset!r} is not one of {', '.join(PRESETS)}")
        if self.precision not in PRECISIONS:
            raise BadInputError(f"--precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.compile not in COMPILE_MODES:
            raise BadInputError(f"--compile {self.compile!r} is not one of {', '.join(COMPILE_MODES)}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise BadInputError(f"--dropout {self.dropout} must be at least 0 and below 1")
        if self.recipe not in RECIPES:
            raise BadInputError(f"--recipe {self.recipe!r} is not one of {', '.join(RECIPES)}")
        if not 8 <= self.block_size <= 512:
            raise BadInputError(f"--block-size {self.block_size} must be between 8 and 512")
        positive = {
            "--batch-size": self.batch_size,
            "--grad-accum": self.grad_accum,
            "--max-steps": self.max_steps,
            "--log-every": self.log_every,
            "--eval-every": self.eval_every,
            "--checkpoint-every": self.checkpoint_every,
        }
        for option, value in positive.items():
            if value is not None and value < 1:
                raise BadInputError(f"{option} {value} must be at least 1")
        if self.lr is not None and not 0 < self.lr < 1:
            raise BadInputError(f"--lr {self.lr} must be between 0 and 1")
        if self.epochs is not None and not 0 < self.epochs < 1e6:  # 'not' also catches NaN
            raise BadInputError(f"--epochs {self.epochs} must be above 0")
        if self.time_s is not None and not 1 <= self.time_s <= 1e7:
            raise BadInputError(f"--time {self.time_s:g}s must be between 1 second and 115 days")
        if self.epochs is None and self.max_steps is None and self.time_s is None:
            raise BadInputError("the run has no length: give --epochs, --max-steps or --time")
        if self.mlm_probability is not None and not 0.01 <= self.mlm_probability <= 0.99:
            raise BadInputError(f"--mask-rate {self.mlm_probability} must be between 0.01 and 0.99")
        if self.attention_span is not None and self.attention_span not in ATTENTION_SPANS:
            raise BadInputError(f"--attention-span {self.attention_span!r} is not one of {', '.join(ATTENTION_SPANS)}")
        if self.measure_batch and self.recipe == "seed":
            raise BadInputError(
                "--batch-size auto measures packed runs; --recipe seed trains the tutorial's batch of 64"
            )
        if self.schedule not in SCHEDULES:
            raise BadInputError(f"--schedule {self.schedule!r} is not one of {', '.join(SCHEDULES)}")
        self._check_rest()

    def _check_rest(self) -> None:
        """Fields with no command-line option: only a hand-edited run.json gets them wrong."""
        ranges = {
            "holdout": (0.0, 0.5),
            "warmup_ratio": (0.0, 0.99),
            "weight_decay": (0.0, 1.0),
            "clip_norm": (1e-6, 1e6),
        }
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if value is not None and not low <= value <= high:
                raise BadInputError(f"{name} {value} must be between {low} and {high}")
        if not 0 <= self.seed < 2**32:
            raise BadInputError(f"--seed {self.seed} must be between 0 and 2**32 - 1")
        if self.keep_checkpoints < 1:
            raise BadInputError(f"keep_checkpoints {self.keep_checkpoints} must be at least 1")
        if not self.text_field.strip():
            raise BadInputError("--text-field is empty; name the field or column that holds the text (default text)")
        if self.errors not in ERROR_MODES:
            raise BadInputError(f"--errors {self.errors!r} is not one of {', '.join(ERROR_MODES)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Rebuild from run.json, ignoring keys this version does not know; a value of the wrong type
        (a hand-edited file) is a BadInputError naming the key, not a TypeError later in training."""
        if not isinstance(data, dict):
            raise BadInputError(f"the config is {type(data).__name__}, not an object")
        known = {f.name: f for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name, value in values.items():
            if not _is_a(value, str(known[name].type)):
                raise BadInputError(f"{name!r} is {value!r}, expected {known[name].type}")
        missing = [f.name for f in fields(cls) if f.name not in values and f.default is MISSING]
        if missing:
            raise BadInputError(f"the config lacks {', '.join(missing)}")
        return cls(**values)


_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "None": (type(None),),
}


def _is_a(value: object, annotation: str) -> bool:
    """``value`` fits an annotation like 'int | None' (a bool is not an int here, as JSON means it)."""
    allowed = tuple(t for part in annotation.split("|") for t in _TYPES[part.strip()])
    if isinstance(value, bool) and bool not in allowed:
        return False
    return isinstance(value, allowed)
