"""The batch a packed run trains with when none is given: on CUDA, the one with the best time to quality.

Why measure: where a GPU stops being launch-bound depends on the GPU, the preset and the block size
(H200, ``kantai`` preset, compiled: 358 k tokens/s at batch 32, 1.06 M at 256, 1.13 M at 512;
docs/BENCHMARKS.md), and no table knows every pairing. Why not simply the fastest: a bigger batch takes
fewer optimizer steps per token and needs more tokens to learn as much. Time to quality is tokens needed
over tokens per second; the first factor does not depend on the device (same model, data and masks) and
is measured by ``benchmarks/bench_batch.py`` (TOKEN_COST), the second is measured here, at the start of
the run, on its own device. The candidate with the most tokens per second per unit of token cost wins,
and of those within MARGIN of it (the measurement's noise) the largest.

The lr follows the batch by Adam's square-root rule (Malladi et al., 2022), from the recipe's lr at
BASE_BATCH, when no --lr was given. On a CPU the rate hardly grows with the batch, and a run takes
BASE_BATCH without measuring; ``--batch-size auto`` measures there too.

The policy (``candidates``, ``pick``, ``reason``) is pure and tested on its own; ``measure`` times a
caller's forward and backward pass (``Trainer._time_batch``) without touching the run's state.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

BASE_BATCH = 32  # the batch the packed recipe's lr and schedule were tuned at (bench_quality.py, on a CPU)
CANDIDATES = (32, 64, 128, 256, 512, 1024)
# tokens a batch needs to reach the held-out loss BASE_BATCH reaches, over what BASE_BATCH needs (bench_batch.py,
# tiny preset, lr scaled by sqrt(batch / 32): 64 at 4 M tokens, 128 and 256 at 12 M; docs/BENCHMARKS.md "Batch
# size and time to quality"). About batch / 32: up to 12 M tokens learning is bound by optimizer steps, so a
# bigger batch is worth it only where its step takes no longer. Beyond the table: the last ratio per doubling.
TOKEN_COST = {32: 1.0, 64: 2.05, 128: 4.6, 256: 8.0}
GAIN_TO_GO_ON = 1.1  # stop doubling once a doubling gains less than 10% tokens/s: the device is full
MARGIN = 1.05  # scores within 5% of the best are ties, which go to the larger batch
MEMORY_SHARE = 0.8  # of the device's memory the chosen batch may fill (evaluation, compile and the allocator need room)
TIMED_STEPS = 3  # forward and backward passes timed per candidate, after one warm-up pass


@dataclass(frozen=True)
class Trial:
    """One candidate measured: its tokens/s (None: it ran out of memory) and its peak memory (None: not known)."""

    batch: int
    tokens_per_s: float | None
    memory_bytes: int | None = None


@dataclass(frozen=True)
class Choice:
    """The batch picked, the lr for it, and the one line that says why."""

    batch: int
    lr: float
    reason: str
    trials: tuple[Trial, ...] = ()


def lr_for(batch: int, base_lr: float) -> float:
    """The recipe's lr (tuned at BASE_BATCH) for ``batch``: Adam's square-root scaling."""
    return base_lr * math.sqrt(batch / BASE_BATCH)


def token_cost(batch: int) -> float:
    """Tokens ``batch`` needs to learn as much as BASE_BATCH does, relative (TOKEN_COST, extrapolated)."""
    if batch in TOKEN_COST:
        return TOKEN_COST[batch]
    known = sorted(TOKEN_COST)
    if batch < known[0]:
        return TOKEN_COST[known[0]]
    last, before = known[-1], known[-2]
    per_doubling = (TOKEN_COST[last] / TOKEN_COST[before]) ** (1 / math.log2(last / before))
    return TOKEN_COST[last] * per_doubling ** math.log2(batch / last)


def candidates(examples: int, world: int = 1) -> list[int]:
    """The per-process batches to try: CANDIDATES that the corpus fills (``examples`` training blocks make
    at least one global batch of ``batch * world``); at least the smallest, which Batches then checks."""
    fitting = [b for b in CANDIDATES if b * world <= examples]
    return fitting or [CANDIDATES[0]]


def measure(
    time_batch: Callable[[int], tuple[float, int | None]],
    batches: list[int],
    tokens_per_row: int,
    memory_limit: int | None,
    is_out_of_memory: Callable[[BaseException], bool],
    world: int = 1,
) -> list[Trial]:
    """Try ``batches`` in order: ``time_batch(b)`` gives (seconds per pass, peak memory bytes or None).

    Stops at the first that runs out of memory, before one whose memory (extrapolated from the last,
    as activations grow with the batch) would pass ``memory_limit``, once a doubling gains less than
    GAIN_TO_GO_ON (the device is full), and once a batch's score falls out of MARGIN of the best: tokens/s
    grows ever more slowly with the batch and the token cost does not, so no bigger batch can catch up
    (on a CPU that is the second candidate)."""
    trials: list[Trial] = []
    for batch in batches:
        last = trials[-1] if trials else None
        if last is not None and last.memory_bytes and memory_limit:
            if last.memory_bytes * batch / last.batch > memory_limit:
                break
        try:
            seconds, memory = time_batch(batch)
        except RuntimeError as err:  # torch.cuda.OutOfMemoryError is a RuntimeError
            if not is_out_of_memory(err):
                raise
            trials.append(Trial(batch, None))
            break
        trials.append(Trial(batch, batch * tokens_per_row / max(seconds, 1e-9), memory))
        rate, previous = trials[-1].tokens_per_s, last.tokens_per_s if last else None
        if previous and rate is not None and rate < GAIN_TO_GO_ON * previous:
            break
        if _score(trials[-1], world) * MARGIN < max(_score(t, world) for t in trials):
            break
    return trials


def pick(trials: list[Trial], memory_limit: int | None = None, world: int = 1) -> Trial:
    """The largest batch whose tokens/s per token cost is within MARGIN of the best that fits.

    Why the largest of the near-ties: in a step-bound regime (bench_batch.py: up to 12 M tokens a bigger
    batch learns no more per step) the score is one over the step time, and a batch whose step costs no
    more time (a launch-bound GPU) is free: it learns as fast now and better once the run is data-bound.
    Under torchrun a trial's batch is per process: its token cost is the global batch's (``world`` × it)."""
    usable = [
        t
        for t in trials
        if t.tokens_per_s is not None and not (memory_limit and t.memory_bytes and t.memory_bytes > memory_limit)
    ]
    if not usable:
        raise ValueError("no candidate batch ran")  # measure() always runs the first, or raises its error
    best = max(_score(t, world) for t in usable)
    return max((t for t in usable if _score(t, world) * MARGIN >= best), key=lambda t: t.batch)


def _score(trial: Trial, world: int) -> float:
    return (trial.tokens_per_s or 0.0) / token_cost(trial.batch * world)


def reason(
    chosen: Trial, trials: list[Trial], where: str, lr: float | None, base_lr: float | None, world: int = 1
) -> str:
    """The one line a run prints about its batch: what was measured, and why this one (``lr``: the lr it
    scaled to, None when --lr was given)."""
    rates = ", ".join(_rate(t) for t in trials)
    size = chosen.batch * world
    lr_text = ""
    if lr is not None and base_lr is not None and size != BASE_BATCH:
        lr_text = f"; lr {lr:.2g} (the recipe's {base_lr:.2g} at {BASE_BATCH}, scaled by √({size}/{BASE_BATCH}))"
    global_text = f" ({size} in all)" if world > 1 else ""
    why = _why(chosen, trials, world)
    return f"batch {chosen.batch}{global_text} chosen by measuring on {where}: {rates}; {why}{lr_text}"


def _rate(trial: Trial) -> str:
    if trial.tokens_per_s is None:
        return f"{trial.batch}: out of memory"
    rate = trial.tokens_per_s
    text = f"{rate / 1e6:.2f} M" if rate >= 1e6 else f"{rate / 1e3:.0f} k" if rate >= 1e3 else f"{rate:.0f}"
    return f"{trial.batch}: {text} tokens/s"


def _why(chosen: Trial, trials: list[Trial], world: int = 1) -> str:
    """The rule that decided, in words: what the next bigger batch would have given and cost."""
    bigger = [t for t in trials if t.batch > chosen.batch]
    if not bigger:
        return "the largest tried" if chosen.batch == CANDIDATES[-1] else "the largest the corpus and memory allow"
    after = bigger[0]
    if after.tokens_per_s is None:
        return f"{after.batch} ran out of memory"
    gain = after.tokens_per_s / (chosen.tokens_per_s or 1.0)
    cost = token_cost(after.batch * world) / token_cost(chosen.batch * world)
    return f"{after.batch} ran {gain:.2f}× as fast but needs {cost:.2f}× the tokens to learn as much (bench_batch.py)"


def default_choice(base_lr: float | None, why: str) -> Choice:
    """BASE_BATCH without measuring (a CPU run), with the reason shown."""
    return Choice(BASE_BATCH, base_lr or 0.0, f"batch {BASE_BATCH}: {why}")
