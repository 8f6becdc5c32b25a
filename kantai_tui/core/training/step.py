"""The pieces of one training step: batches in a resumable order, the masked-LM loss, evaluation, lr.

The loop that drives them, one readable generator of typed events, is ``Trainer.events`` in
trainer.py.

Shapes: B = batch size, T = block size, H = hidden size, V = vocabulary rows, N = masked
positions in the batch (about 15% of B·T).

What makes it exact to resume: the data order of epoch e is a permutation seeded by
seed + e, so (epoch, position) is all the data state there is; masking draws from its own
generator and dropout from torch's global one, and both states are checkpointed with the
weights, the optimizer and the running loss. The learning rate is a pure function of the
step. So a run stopped after step k and resumed logs the same losses as one that never stopped.

What makes it fast (see docs/BENCHMARKS.md): packed blocks instead of padded lines, the LM head
only at masked positions (N×H×V instead of B·T×H×V), SDPA attention, and no host sync except
at log steps; on CUDA also bf16 autocast, TF32 and fused AdamW.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from kantai_tui.core.errors import BadInputError
from kantai_tui.core.progress import Report, silent
from kantai_tui.core.training.config import WSD_DECAY, TrainConfig
from kantai_tui.core.training.data import (
    EOS,
    EVAL_BLOCK,
    EVAL_MASK_SEED,
    PAD,
    TokenCache,
    line_example,
    packed_blocks,
    pad_batch,
    read_rows,
)
from kantai_tui.core.training.masking import IGNORE_INDEX, mask_tokens
from kantai_tui.core.training.quality import ClozePrompt, cloze_batches, cloze_hits

if TYPE_CHECKING:
    import torch
    from transformers import RobertaForMaskedLM


@dataclass
class LoopState:
    """Everything about the loop's progress that a checkpoint must carry (saved as JSON)."""

    step: int = 0
    epoch: int = 0
    position: int = 0  # batches of the current epoch already consumed
    tokens: int = 0  # real (non-padding) tokens trained on
    samples: int = 0
    elapsed_s: float = 0.0
    loss_sum: float = 0.0  # since the last log step
    loss_steps: int = 0
    split: int = 1  # each batch runs as this many chunks (raised by --auto-batch-size after out-of-memory)
    lr: float = 0.0  # the lr of the last step: where an extension's or a fork's new schedule segment starts


class Batches:
    """Training examples in a reproducible order: epoch e is shuffled by a generator seeded with seed + e."""

    def __init__(
        self,
        cfg: TrainConfig,
        cache: TokenCache,
        train_lines: np.ndarray,
        progress: Report = silent,
        examples: np.ndarray | None = None,
    ) -> None:
        """``examples``: what ``training_examples`` gave, when the caller needed them before the batch was known."""
        self.cfg, self.cache = cfg, cache
        self.packed = cfg.recipe == "packed"
        self.examples = training_examples(cfg, cache, train_lines, progress) if examples is None else examples
        self._order: tuple[int, np.ndarray] | None = None
        if len(self.examples) < cfg.batch:
            unit = f"blocks of {cfg.block_size} tokens" if self.packed else "non-empty lines"
            raise BadInputError(
                f"the corpus is too small for one batch: {len(self.examples)} {unit} for "
                f"--batch-size {cfg.batch}; use a bigger corpus or a smaller batch"
            )

    def per_epoch(self) -> int:
        """Batches per epoch. Packed: whole batches only (a short last one would change the shapes, and with
        them the compiled graph, for a few blocks); the dropped blocks come back in later epochs' orders."""
        if self.packed:
            return len(self.examples) // self.cfg.batch
        return math.ceil(len(self.examples) / self.cfg.batch)

    def get(self, epoch: int, position: int) -> np.ndarray:
        """Batch ``position`` of ``epoch`` as [B, T] int64 (the last batch of an epoch may be smaller)."""
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng(self.cfg.seed + epoch).permutation(len(self.examples)))
        size = self.cfg.batch
        picked = self._order[1][position * size : (position + 1) * size]
        if self.packed:  # rows copied out of the memory-mapped blocks
            return read_rows(self.examples, picked).astype(np.int64)
        return pad_batch([line_example(self.cache, int(i), self.cfg.block_size) for i in picked])


def training_examples(
    cfg: TrainConfig, cache: TokenCache, train_lines: np.ndarray, progress: Report = silent
) -> np.ndarray:
    """What one epoch draws from: packed blocks [N, T] (memory-mapped), or the training line indices (seed)."""
    if cfg.recipe == "packed":
        return packed_blocks(cache, train_lines, cfg.block_size, progress)
    return train_lines


def to_device(batch: np.ndarray, device: str) -> torch.Tensor:
    """A host batch as a tensor on ``device``, without a host sync on CUDA.

    Why pinned: a copy from pageable memory makes CUDA wait for the stream before it starts, a sync on
    every step that keeps the host from queueing the next one (a launch-bound small batch then idles the
    GPU). The batch is copied into page-locked memory and sent non-blocking; torch's caching host
    allocator reuses that memory only once the copy that read it has finished."""
    import torch

    host = torch.from_numpy(batch)
    if not device.startswith("cuda"):
        return host
    staged = torch.empty(host.shape, dtype=host.dtype, pin_memory=True)
    staged.copy_(host)
    return staged.to(device, non_blocking=True)


def pick_device(name: str) -> str:
    """'auto' means CUDA when torch sees a GPU, else CPU."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built with CUDA {torch.version.cuda}"
        raise BadInputError(f"--device {name}: torch sees no CUDA device (torch {torch.__version__}, {build})")
    if name != "cpu" and not name.startswith("cuda"):
        raise BadInputError(f"--device {name!r}: use auto, cpu, cuda or cuda:N")
    return name


NVIDIA_SIGNS = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg", "/proc/driver/nvidia/version")  # dxg: WSL2


def may_use_cuda(device: str) -> bool:
    """Whether a run on ``device`` trains on a GPU: cuda by name, or auto where torch sees one.

    torch is asked only on a machine with signs of an NVIDIA driver (its device files, WSL's /dev/dxg, or
    nvidia-smi): importing it costs seconds, which ``kantai train --detach`` and the TUI's start key would
    otherwise pay on every CPU machine before the trainer (which imports it anyway) starts."""
    import os
    import shutil

    if device.startswith("cuda"):
        return True
    if device != "auto":
        return False
    if not any(os.path.exists(sign) for sign in NVIDIA_SIGNS) and shutil.which("nvidia-smi") is None:
        return False
    import torch

    return torch.cuda.is_available()


def cpu_has_bf16() -> bool:
    """Native bf16 matmuls on this CPU (AVX512-BF16 or AMX): where bf16 autocast measurably helps (BENCHMARKS.md)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            flags = handle.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(precision: str, device: str) -> bool:
    """Whether to train under bf16 autocast: 'auto' means on CUDA, and on CPUs with native bf16."""
    if precision != "auto":
        return precision == "bf16"
    return device.startswith("cuda") or (device == "cpu" and cpu_has_bf16())


COMPILE_ON_CPU_FROM_S = 120.0  # compiling costs 3-35 s on a CPU and then runs 1.4-1.8x faster (BENCHMARKS.md)


def compile_mode(setting: str, device: str, whole_steps: bool) -> str | None:
    """torch.compile's mode for a compiled run (``use_compile`` said yes): CUDA graphs (reduce-overhead) on
    CUDA when ``whole_steps`` (one process, each step one forward and backward of one static shape: a graph
    replayed per step with no launch overhead, which is what keeps a small batch from being launch-bound);
    the default mode elsewhere (a CPU has no CUDA graphs; gradient accumulation, --auto-batch-size chunks
    and DDP's hooks run several passes, or collectives, per step; padded lines change shape). A mode given
    by name is used as given."""
    if setting in ("reduce-overhead", "max-autotune"):
        return setting
    if setting == "auto" and device.startswith("cuda") and whole_steps:
        return "reduce-overhead"
    return "default"


def use_compile(setting: str, device: str, time_s: float | None = None, static_shapes: bool = True) -> bool:
    """'auto' compiles on CUDA, and on a CPU for a time budget of at least COMPILE_ON_CPU_FROM_S when a C++
    compiler is on PATH (inductor needs one) and the batches have static shapes (packed): there the compile
    pays for itself within the budget. Runs bounded by steps or epochs alone stay eager on a CPU, as do
    short ones and padded lines (each new batch width recompiles: 1k tokens/s measured with the tiny preset)."""
    import shutil

    if setting != "auto":
        return setting != "off"
    if device.startswith("cuda"):
        return True
    long_enough = time_s is not None and time_s >= COMPILE_ON_CPU_FROM_S and static_shapes
    return device == "cpu" and long_enough and any(shutil.which(cc) for cc in ("g++", "c++", "clang++"))


def loss_module(model: RobertaForMaskedLM, sparse: bool, per_line: bool = False) -> torch.nn.Module:
    """mlm_loss as a module over ``model``: what DDP wraps (its gradient hooks need a forward call) and
    what torch.compile compiles; ``model`` itself stays plain for checkpoints, eval and probes."""
    import torch

    class MaskedLMLoss(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self,
            inputs: torch.Tensor,
            labels: torch.Tensor,
            attention: torch.Tensor | None,
            positions: torch.Tensor | None,
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            if per_line:
                attention, line_positions = line_attention(inputs)
                return mlm_loss(self.model, inputs, labels, attention, sparse, positions, line_positions)
            return mlm_loss(self.model, inputs, labels, attention, sparse, positions)

    return MaskedLMLoss()


def line_attention(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For packed blocks (lines joined by ``</s>``): an additive [B, 1, T, T] mask that keeps attention inside
    each line, and position ids that restart at every line (RoBERTa counts from padding_idx + 1 = 2).

    Why: a packed block then trains like separate lines (--attention-span line) at packed speed; the
    exported model is still a plain RobertaForMaskedLM, which sees one text at a time. ``</s>`` is never
    masked (specials are never chosen), so the boundaries read from the corrupted inputs are the true ones.
    """
    import torch

    ends = inputs == EOS  # [B, T]
    line = torch.cumsum(ends, dim=1) - ends.long()  # a line's </s> belongs to it
    same = line.unsqueeze(2) == line.unsqueeze(1)  # [B, T, T]
    mask = torch.zeros(same.shape, dtype=torch.float32, device=inputs.device)
    mask = mask.masked_fill_(~same, torch.finfo(torch.float32).min).unsqueeze(1)
    index = torch.arange(inputs.shape[1], device=inputs.device).expand_as(inputs)
    begins = torch.ones_like(ends)
    begins[:, 1:] = ends[:, :-1]
    first = torch.where(begins, index, torch.zeros_like(index)).cummax(dim=1).values
    # the block's first line starts with <s> at 2; every later line is placed as if after one (its first
    # token at 3), as a text is at inference: position 2 always holds <s>
    return mask, index - first + 2 + (first > 0).long()


def mlm_loss(
    model: RobertaForMaskedLM,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    attention: torch.Tensor | None,
    sparse: bool,
    positions: torch.Tensor | None = None,
    position_ids: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(summed cross-entropy, correct predictions, masked positions) for one batch.

    ``positions`` [B, K] (fixed masked slots, labels [B, K]): the head runs on the gathered B·K rows,
    static shapes. Else labels are [B, T] with IGNORE_INDEX off the masks: ``sparse`` runs the head
    on the masked rows only (a data-dependent count), otherwise on every position as the tutorial did.
    """
    import torch.nn.functional as F

    hidden = model.roberta(input_ids=inputs, attention_mask=attention, position_ids=position_ids).last_hidden_state
    if positions is not None:  # hidden: [B, T, H]
        index = positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])  # [B, K, H]
        logits, target = model.lm_head(hidden.gather(1, index).flatten(0, 1)), labels.flatten()  # [B·K, V], [B·K]
    elif sparse:
        chosen = labels != IGNORE_INDEX  # [B, T]
        logits, target = model.lm_head(hidden[chosen]), labels[chosen]  # [N, V], [N]
    else:
        logits = model.lm_head(hidden).flatten(0, 1)  # [B·T, V]
        target = labels.flatten()
    loss = F.cross_entropy(logits.float(), target, ignore_index=IGNORE_INDEX, reduction="sum")
    counted = target != IGNORE_INDEX
    correct = ((logits.argmax(-1) == target) & counted).sum()
    return loss, correct, counted.sum()


class Evaluator:
    """Held-out lines, one per example, truncated at 128, with masks from a fixed seed: comparable across runs.

    Besides loss and masked-token accuracy it reports what the model knows (quality.py): accuracy on
    content tokens (``content`` [vocab] bool) and cloze hits on ``cloze`` prompts, when given.
    """

    def __init__(
        self,
        cache: TokenCache,
        lines: np.ndarray,
        mask_id: int,
        vocab: int,
        batch_size: int = 64,
        content: np.ndarray | None = None,
        cloze: list[ClozePrompt] | None = None,
    ) -> None:
        import torch

        generator = torch.Generator().manual_seed(EVAL_MASK_SEED)
        self.batches = []
        for start in range(0, len(lines), batch_size):
            ids = torch.from_numpy(
                pad_batch([line_example(cache, int(i), EVAL_BLOCK) for i in lines[start : start + batch_size]])
            )
            inputs, labels = mask_tokens(ids, mask_id=mask_id, vocab_size=vocab, generator=generator)
            self.batches.append((inputs, labels, (ids != PAD).long()))
        self.content = None if content is None else torch.from_numpy(content)
        self.cloze = cloze_batches(cloze or [], mask_id, batch_size)
        self.cloze_count = len(cloze or [])

    def __call__(self, model: RobertaForMaskedLM, device: str, autocast: Callable) -> dict[str, float | None] | None:
        """The fields of EvalLogged after ``step``: eval_loss, perplexity, mask_acc, content_acc, cloze_hits1/5."""
        import torch

        if not self.batches:
            return None
        total = correct = count = content_right = content_count = 0.0
        model.eval()
        with torch.no_grad(), autocast():
            for inputs, labels, attention in self.batches:
                summed, right, targets = self._batch(model, inputs.to(device), labels.to(device), attention.to(device))
                total, correct, count = total + summed, correct + int(right.sum()), count + len(targets)
                if self.content is not None:
                    chosen = self.content[targets]
                    content_right += int((right & chosen).sum())
                    content_count += int(chosen.sum())
            hits = cloze_hits(model, self.cloze, device) if self.cloze else None
        model.train()
        loss = total / max(count, 1)
        return {
            "eval_loss": loss,
            "perplexity": math.exp(min(loss, 50.0)),
            "mask_acc": correct / max(count, 1),
            "content_acc": content_right / content_count if content_count else None,
            "cloze_hits1": None if hits is None else hits[0],
            "cloze_hits5": None if hits is None else hits[1],
        }

    @staticmethod
    def _batch(
        model: RobertaForMaskedLM, inputs: torch.Tensor, labels: torch.Tensor, attention: torch.Tensor
    ) -> tuple[float, torch.Tensor, torch.Tensor]:
        """(summed cross-entropy, per-position correct [N] on the CPU, targets [N] on the CPU) at the masks."""
        import torch.nn.functional as F

        hidden = model.roberta(input_ids=inputs, attention_mask=attention).last_hidden_state
        chosen = labels != IGNORE_INDEX
        logits, targets = model.lm_head(hidden[chosen]).float(), labels[chosen]
        summed = F.cross_entropy(logits, targets, reduction="sum").item()
        return summed, (logits.argmax(-1) == targets).cpu(), targets.cpu()


def progress(step: int, elapsed_s: float, cfg: TrainConfig, total: int | None) -> float:
    """How far the run is, 0 to 1: by steps, by the clock (``--time``), whichever is further.

    Why one number: the end of the run and the ETA follow it, and (within the schedule's segment,
    ``segment_progress``) the lr, so a time budget bends the schedule to the wall clock the same way a
    step count does to steps.
    """
    by_steps = step / total if total else 0.0
    by_time = elapsed_s / cfg.time_s if cfg.time_s else 0.0
    return min(1.0, max(by_steps, by_time))


def segment_progress(step: int, elapsed_s: float, cfg: TrainConfig, total: int | None) -> float:
    """How far the run is through its current schedule segment, 0 to 1.

    A run's length can grow (``--resume RUN --epochs N``) or be set anew by a fork (``--from RUN``):
    the lr schedule then starts a new segment at that step (``segment_step``, ``segment_s``), which
    runs to the run's new end. Without one, the segment is the whole run. A pure function of the step,
    the training clock and run.json, so a resume inside a segment stays exact.
    """
    start_step, start_s = cfg.segment_step, cfg.segment_s
    if start_step is None:
        return progress(step, elapsed_s, cfg, total)
    by_steps = (step - start_step) / (total - start_step) if total and total > start_step else 0.0
    start = start_s or 0.0
    by_time = (elapsed_s - start) / (cfg.time_s - start) if cfg.time_s and cfg.time_s > start else 0.0
    if not total and not cfg.time_s:
        return 0.0
    return min(1.0, max(0.0, by_steps, by_time))


def lr_at(done: float, cfg: TrainConfig) -> float:
    """The lr at progress ``done`` through the schedule's segment: linear warm-up over the first
    warmup_ratio of it, then ``linear`` decay to 0 (the Trainer's schedule), ``wsd`` (hold the peak,
    decay over the last WSD_DECAY) or ``cosine`` (half a cosine to 0).

    The first segment warms up from 0. A later one (an extension or a fork that set a new length) warms
    up from the lr the run had when it began (``segment_lr``: 0 after a finished run, whose lr had
    decayed) back to the peak, then decays to 0 at the new end: re-warming, as continued pretraining
    does, instead of training on at a decayed lr or jumping back to the peak in one step.
    """
    warmup = cfg.warmup
    start = cfg.segment_lr or 0.0
    if done < warmup:
        return start + (cfg.peak_lr - start) * done / warmup
    after = (done - warmup) / max(1e-12, 1.0 - warmup)  # 0 → 1 over the rest of the segment
    if cfg.schedule == "wsd":
        factor = min(1.0, (1.0 - after) / WSD_DECAY)
    elif cfg.schedule == "cosine":
        factor = 0.5 * (1.0 + math.cos(math.pi * after))
    else:
        factor = 1.0 - after
    return cfg.peak_lr * max(0.0, factor)


def _optimizer(model: torch.nn.Module, cfg: TrainConfig, device: str) -> torch.optim.Optimizer:
    """AdamW with no weight decay on biases and LayerNorm weights, as transformers' Trainer does."""
    import torch

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.peak_lr, betas=(0.9, 0.999), eps=1e-8, fused=device.startswith("cuda"))
