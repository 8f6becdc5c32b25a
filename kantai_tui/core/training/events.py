"""Typed events the training loop yields; the CLI prints them, the run folder records them.

Plain frozen dataclasses with a ``kind`` tag, so they serialise to one JSON object each
(``metrics.jsonl``) and tests can assert on them directly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


def _finite(value: float | None) -> float | None:
    """JSON has no NaN: a non-finite number is written as null."""
    return None if value is None or not math.isfinite(value) else value


@dataclass(frozen=True)
class RunStarted:
    """The loop is about to take its first (or first resumed) step."""

    run: str
    total_steps: int | None  # None: only the time budget bounds the run
    start_step: int
    parameters: int
    train_examples: int
    eval_examples: int
    tokens_per_step: int
    device: str
    time_s: float | None  # the training time budget (--time), if any
    flops_per_token: int  # training FLOPs per real token (speed.py: presets.model_size's model)
    peak_tflops: float | None  # what MFU is measured against; None: a GPU kantai has no figure for
    peak_source: str | None  # where the peak comes from: "… nominal dense bf16", "measured fp32 matmul, …"
    flop_model: str  # the FLOP model in words
    matmul_tflops: float | None = None  # on CUDA: the bf16 matmul rate measured on the GPU (beside the nominal peak)
    matmul_source: str | None = None
    batch_reason: str | None = None  # a batch the trainer picked: what it measured and why (batching.py)
    kind: str = field(default="started", init=False)


@dataclass(frozen=True)
class StepLogged:
    """Training figures at a log step (losses averaged since the previous log step)."""

    step: int
    epoch: float
    loss: float
    lr: float
    tokens: int
    tokens_per_s: float
    samples_per_s: float
    elapsed_s: float
    grad_norm: float
    progress: float  # 0-1: by steps or by the clock (--time), whichever is further; the ETA follows it
    tflops: float  # achieved training TFLOP/s: tokens_per_s times the started row's flops_per_token
    mfu: float | None  # tflops / the started row's peak_tflops; None without a peak
    data_wait: float  # 0-1: share of the window the host spent fetching and masking batches (on CUDA an upper bound)
    kind: str = field(default="step", init=False)


@dataclass(frozen=True)
class EvalLogged:
    """Held-out figures: the same lines and the same fixed masks at every evaluation."""

    step: int
    eval_loss: float
    perplexity: float
    mask_acc: float
    content_acc: float | None = None  # accuracy where the target is a content token (quality.py)
    cloze_hits1: float | None = None  # the held-out cloze prompts answered right at the top
    cloze_hits5: float | None = None  # … within the top 5
    kind: str = field(default="eval", init=False)


@dataclass(frozen=True)
class CheckpointSaved:
    """A checkpoint was committed (staged, verified by its manifest, renamed into place)."""

    step: int
    path: str
    kind: str = field(default="checkpoint", init=False)


@dataclass(frozen=True)
class RunFinished:
    """The loop ended: all steps done (``stopped`` False) or asked to stop (True)."""

    step: int
    final_dir: str | None
    stopped: bool
    kind: str = field(default="finished", init=False)


@dataclass(frozen=True)
class BatchSplit:
    """Out of memory with --auto-batch-size: each batch now runs in ``split`` chunks (same effective batch)."""

    step: int
    micro_batch: int
    split: int
    message: str
    kind: str = field(default="batch_split", init=False)


@dataclass(frozen=True)
class ProbesEvaluated:
    """Fill-mask answers for the probe sentences with the checkpoint just saved ("watch it learn").

    The runner appends ``rows`` to probes.jsonl (not to metrics.jsonl): one row per sentence,
    ``{"step", "probe", "top": [[token, score], ...]}``.
    """

    step: int
    rows: tuple[dict, ...]
    kind: str = field(default="probes", init=False)


Event = RunStarted | StepLogged | EvalLogged | CheckpointSaved | ProbesEvaluated | BatchSplit | RunFinished


def event_to_json(event: Event) -> dict:
    """One JSON-ready object; floats that are not finite become null."""
    return {k: _finite(v) if isinstance(v, float) else v for k, v in asdict(event).items()}
