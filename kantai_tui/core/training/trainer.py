"""One training run: set up model, data and optimizer, resume if there is a checkpoint, loop.

``Trainer(cfg, run_dir).events(should_stop)`` is the generator the CLI drives; the run
folder's writer records each event. Checkpoints are written by checkpoint.commit, so a kill
at any moment leaves the previous one intact.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kantai_tui.core.errors import CorruptCheckpointError, NonFiniteLossError, OutOfMemoryError
from kantai_tui.core.files import commit_folder, staging_path, sweep_stale
from kantai_tui.core.progress import Report, silent
from kantai_tui.core.tokenizer.bpe import EXPORTED_FILES, load_tokenizer, special_id
from kantai_tui.core.training import batching, checkpoint, distributed
from kantai_tui.core.training.clock import PauseAwareClock
from kantai_tui.core.training.config import PACKED_LR, TrainConfig
from kantai_tui.core.training.data import PAD, open_token_cache, read_rows, split_lines
from kantai_tui.core.training.events import (
    BatchSplit,
    CheckpointSaved,
    EvalLogged,
    Event,
    ProbesEvaluated,
    RunFinished,
    RunStarted,
    StepLogged,
)
from kantai_tui.core.training.masking import IGNORE_INDEX, mask_slots, mask_tokens
from kantai_tui.core.training.presets import get_preset, roberta_config
from kantai_tui.core.training.quality import cloze_prompts, content_table
from kantai_tui.core.training.speed import RunSpeed, run_speed
from kantai_tui.core.training.step import (
    Batches,
    Evaluator,
    LoopState,
    _optimizer,
    compile_mode,
    loss_module,
    lr_at,
    pick_device,
    progress,
    segment_progress,
    to_device,
    training_examples,
    use_bf16,
    use_compile,
)

if TYPE_CHECKING:
    import torch
    from transformers import RobertaForMaskedLM

Probe = Callable[["RobertaForMaskedLM", int, np.ndarray], list[dict]]


class Trainer:
    """Owns the model, optimizer, data and loop state of one run folder."""

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: Path,
        on_skip: Callable[[Path, str], None] | None = None,
        dist: distributed.Dist | None = None,
        probe: Probe | None = None,
        clock: Callable[[], float] = time.perf_counter,
        progress: Report = silent,
    ) -> None:
        """``probe(model, step, content)`` gives the probe rows after each checkpoint (the runner passes one that
        runs fill-mask on the run's probe sentences; without it no probes are evaluated). ``clock`` is
        the seconds counter the time budget and rates follow (a test drives it by hand). ``progress`` hears the
        token cache being encoded and the blocks packed (the first run on a corpus), and may stop them by
        raising."""
        import torch
        from transformers import RobertaForMaskedLM

        self.cfg, self.run_dir, self.dist = cfg, run_dir, dist
        self.clock = PauseAwareClock(clock)  # process.execute tells it of a SIGCONT
        self._now = self.clock
        self.world = dist.world if dist else 1
        self.main = dist is None or dist.main  # the one process that writes the run folder
        self.device = distributed.device_for(dist, pick_device(cfg.device))
        self.cuda = self.device.startswith("cuda")
        self.bf16 = use_bf16(cfg.precision, self.device)
        self.notes: list[str] = []  # one-line notes for the runner to print (a mask stream started afresh)
        tokenizer = load_tokenizer(cfg.tokenizer_dir)
        self.vocab = tokenizer.get_vocab_size()
        self.mask_id = special_id(tokenizer, "<mask>")
        cache = open_token_cache(cfg.corpus, cfg.tokenizer_dir, cfg.errors, cfg.text_field, progress)
        train_lines, eval_lines = split_lines(cache.lines, cfg.holdout, cfg.seed)
        examples = training_examples(cfg, cache, train_lines, progress)
        self.content = content_table(cache, tokenizer)
        cloze = cloze_prompts(cache, eval_lines, tokenizer, self.content)
        self.evaluate = Evaluator(cache, eval_lines, self.mask_id, self.vocab, content=self.content, cloze=cloze)
        torch.manual_seed(cfg.seed)
        dropout = 0.1 if cfg.dropout is None else cfg.dropout  # a run.json from before the option: the old default
        # on a CPU, plain matmul-softmax attention beats the SDPA kernel, whose bf16 backward is slow there:
        # tiny preset, same process, A/B twice: 24-29k vs 23-24k tokens/s, compiled 43k vs 28-30k
        # (inductor fuses the softmax). On CUDA, SDPA (flash/memory-efficient kernels).
        attention = "sdpa" if self.cuda else "eager"
        config = roberta_config(get_preset(cfg.preset), self.vocab, dropout, attention)
        self.model = RobertaForMaskedLM(config)
        self.model.to(self.device)  # type: ignore[arg-type]  # transformers types its @wraps(Module.to) with the wrong self
        self.model.train()
        if self.cuda:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.per_line = cfg.attention_span == "line" and cfg.recipe == "packed"
        self.batch_choice = self._settle_batch(cfg, examples)  # a batch left to the trainer: measured now
        cfg = self.cfg = (
            cfg if self.batch_choice is None else cfg.with_batch(self.batch_choice.batch, self.batch_choice.lr)
        )
        distributed.check_global_batch(cfg.batch, self.world)  # again here: a run.json edited since
        self.batches = Batches(cfg, cache, train_lines, examples=examples)
        self.total = self._step_limit()
        # fixed masked slots where every row is a full packed block: static shapes (see mask_slots)
        self.slots = self.batches.packed and cfg.sparse_head
        self._ddp = self._wrap_ddp(loss_module(self.model, cfg.sparse_head, self.per_line))
        # gradients all-reduce on the step's last backward only: the others run under DDP's no_sync
        self._no_sync = getattr(self._ddp, "no_sync", contextlib.nullcontext)
        self.compiled = use_compile(cfg.compile, self.device, cfg.time_s, cfg.recipe == "packed")
        # CUDA graphs replay one recorded step: one process, one pass per step, and the static shapes of packed
        # blocks (padded lines would record a graph per batch width)
        whole_steps = dist is None and cfg.grad_accum == 1 and not cfg.auto_batch_size and cfg.recipe == "packed"
        self.compile_mode = compile_mode(cfg.compile, self.device, whole_steps) if self.compiled else None
        self.graphs = self.compile_mode == "reduce-overhead" and self.cuda
        self.step_fn = torch.compile(self._ddp, mode=self.compile_mode) if self.compiled else self._ddp
        self.optimizer = _optimizer(self.model, cfg, self.device)
        # masks drawn where the batch is: on CUDA a CUDA generator, so masking never waits for the host
        self.mask_generator = torch.Generator(device=self.device).manual_seed(cfg.seed + 1)
        self.probe = probe
        self.state = LoopState()
        self._splits: list[BatchSplit] = []
        resume = checkpoint.newest_verified(run_dir / "checkpoints", on_skip)
        if resume is not None:
            self._load(resume.path)
        elif checkpoint.list_checkpoints(run_dir / "checkpoints"):
            raise CorruptCheckpointError(
                f"run {run_dir.name}: none of its checkpoints verifies (see the notes above); refusing to start "
                f"over silently; move {run_dir / 'checkpoints'} aside to train from scratch"
            )

    # --- the loop ----------------------------------------------------------------------------

    def events(self, should_stop: Callable[[], bool] = lambda: False) -> Iterator[Event]:
        """Train until the last step or until ``should_stop()``; yield what happens."""
        import torch

        cfg, state = self.cfg, self.state
        yield RunStarted(
            self.run_dir.name,
            self.total,
            state.step,
            sum(p.numel() for p in self.model.parameters()),
            len(self.batches.examples),
            sum(len(b[0]) for b in self.evaluate.batches),
            cfg.batch * cfg.block_size * cfg.grad_accum,
            f"{self.device} ({'bf16 autocast' if self.bf16 else 'fp32'}"
            f"{self._compiled_text()}"
            f"{f', {self.world} processes (DDP)' if self.dist else ''})",
            cfg.time_s,
            self.speed.flops_per_token,
            self.speed.peak.tflops if self.speed.peak else None,
            self.speed.peak.source if self.speed.peak else None,
            self.speed.flop_model,
            self.speed.matmul.tflops if self.speed.matmul else None,
            self.speed.matmul.source if self.speed.matmul else None,
            self.batch_choice.reason if self.batch_choice else None,
        )
        loss_sum = torch.zeros((), device=self.device)  # summed on the device: no host sync per step
        self._window = (self._now(), state.tokens, state.samples)
        self._data_s = 0.0  # host seconds fetching and masking batches in this window
        self._agreed_s = state.elapsed_s
        done = self._progress() >= 1.0
        stopping = not done and self._agree_stop(should_stop, True)
        while not done and not stopping:
            loss_sum += self._guarded_step()
            yield from self._splits
            self._splits.clear()
            state.loss_steps += 1
            done = self._ends_now()
            log_step = state.step % cfg.log_every == 0 or done
            if log_step:
                yield self._log(loss_sum)
                loss_sum.zero_()
                self._window = (self._now(), state.tokens, state.samples)
                self._data_s = 0.0
            stopping = self._agree_stop(should_stop, log_step)
            if state.step % cfg.eval_every == 0 or done:
                yield from self._eval()
            if state.step % cfg.checkpoint_every == 0 or done or stopping:
                yield self._checkpoint(loss_sum)
                yield from self._probe()
        final = self._export() if done and self.main else None
        yield RunFinished(state.step, str(final) if final else None, stopped=not done)

    def _compiled_text(self) -> str:
        if not self.compiled:
            return ""
        if self.graphs:
            return ", compiled with CUDA graphs"
        return ", compiled" if self.compile_mode in (None, "default") else f", compiled {self.compile_mode}"

    # --- the batch ---------------------------------------------------------------------------

    def _settle_batch(self, cfg: TrainConfig, examples: np.ndarray) -> batching.Choice | None:
        """The batch when run.json leaves it to the trainer (batching.py): BASE_BATCH on a CPU unless asked
        to measure, else measured on this device. Under torchrun rank 0 measures and every rank takes its
        figures (one choice, or the ranks would not agree on the data order). None: the batch is given."""
        if cfg.batch_size is not None:
            return None
        base_lr = cfg.lr if cfg.lr is not None else PACKED_LR.get(cfg.preset)
        if not self.cuda and not cfg.measure_batch:
            why = "the CPU default (a CPU's tokens/s hardly grows with the batch; --batch-size auto measures)"
            return batching.default_choice(base_lr, why)
        if self.dist is None:
            return self._measure_batch(cfg, examples, base_lr)
        shared = distributed.share_text(
            self.dist, json.dumps(asdict(self._measure_batch(cfg, examples, base_lr))) if self.main else None
        )
        figures = json.loads(shared)
        return batching.Choice(figures["batch"], figures["lr"], figures["reason"])

    def _measure_batch(self, cfg: TrainConfig, examples: np.ndarray, base_lr: float | None) -> batching.Choice:
        """Time one forward and backward pass per candidate (eager, on this process's device) and pick
        (batching.measure, batching.pick). The global RNG is forked, so the run's dropout stream is as if
        nothing had been measured, and the gradients are cleared after."""
        import torch

        world = self.world
        module = loss_module(self.model, cfg.sparse_head, self.per_line)  # plain, never DDP: the other ranks wait
        limit = None
        if self.cuda:
            total = torch.cuda.get_device_properties(self.device).total_memory
            optimizer_bytes = 2 * 4 * sum(p.numel() for p in self.model.parameters())  # AdamW's moments, fp32
            limit = int(batching.MEMORY_SHARE * total) - optimizer_bytes
        with torch.random.fork_rng(devices=[self.device] if self.cuda else []):
            trials = batching.measure(
                lambda rows: self._time_batch(module, examples, rows, cfg.mask_rate),
                batching.candidates(len(examples), world),
                cfg.block_size,
                limit,
                lambda err: "out of memory" in str(err),
                world,
            )
        self.model.zero_grad(set_to_none=True)
        if self.cuda:
            torch.cuda.empty_cache()
        chosen = batching.pick(trials, limit, world)
        lr = batching.lr_for(chosen.batch * world, base_lr) if base_lr is not None and cfg.lr is None else cfg.lr
        where = torch.cuda.get_device_name(self.device) if self.cuda else "this CPU"
        if world > 1:
            where = f"{where} (per process, {world} processes)"
        reason = batching.reason(chosen, trials, where, lr if cfg.lr is None else None, base_lr, world)
        return batching.Choice(chosen.batch * world, lr or 0.0, reason, tuple(trials))

    def _time_batch(
        self, module: torch.nn.Module, examples: np.ndarray, rows: int, mask_rate: float
    ) -> tuple[float, int | None]:
        """Seconds per forward and backward pass over ``rows`` training blocks (after one warm-up pass), and
        the peak memory allocated on CUDA."""
        import torch

        picked = np.arange(rows) % len(examples)
        ids = to_device(read_rows(examples, picked).astype(np.int64), self.device)
        inputs, labels, positions = self._mask(ids, torch.Generator(device=self.device).manual_seed(0), mask_rate)
        sync = (lambda: torch.cuda.synchronize(self.device)) if self.cuda else (lambda: None)
        if self.cuda:
            sync()
            torch.cuda.reset_peak_memory_stats(self.device)
        began = 0.0
        for repeat in range(1 + batching.TIMED_STEPS):
            if repeat == 1:
                sync()
                began = time.perf_counter()
            with self._autocast():
                loss = module(inputs, labels, None, positions)[0]
            loss.backward()
        sync()
        seconds = (time.perf_counter() - began) / batching.TIMED_STEPS
        memory = torch.cuda.max_memory_allocated(self.device) if self.cuda else None
        self.model.zero_grad(set_to_none=True)
        return seconds, memory

    def _step_limit(self) -> int | None:
        """Steps the run may take: --max-steps, else its epochs; None when only --time bounds it."""
        cfg = self.cfg
        if cfg.max_steps is not None:
            return cfg.max_steps
        if cfg.epochs is None:
            return None
        return math.ceil(self.batches.per_epoch() * cfg.epochs / cfg.grad_accum)

    def _clock(self) -> float:
        """Training seconds so far (kept in checkpoints, so a resumed --time run keeps what is left of its
        budget). Under torchrun, the figure all ranks agreed on at the last log step: every rank must
        compute the same lr and end after the same step (so the budget ends at a log step there)."""
        return self._agreed_s if self.dist is not None else self._clock_local()

    def _progress(self) -> float:
        return progress(self.state.step, self._clock(), self.cfg, self.total)

    def _ends_now(self) -> bool:
        """After a step: is the run complete (its last step, or its time budget spent)?"""
        cfg = self.cfg
        if self.dist is not None and cfg.time_s is not None and self.state.step % cfg.log_every == 0:
            # every rank takes the slowest clock, at log steps only (a collective, and on CUDA a sync)
            self._agreed_s = distributed.max_across(self._clock_local(), self.device)
        return self._progress() >= 1.0

    def _lr(self, step: int, elapsed_s: float) -> float:
        """The lr at ``step``: the schedule over its current segment (step.segment_progress, step.lr_at)."""
        return lr_at(segment_progress(step, elapsed_s, self.cfg, self.total), self.cfg)

    def _clock_local(self) -> float:
        return self.state.elapsed_s + self._now() - self._window[0]

    def _agree_stop(self, should_stop: Callable[[], bool], log_step: bool) -> bool:
        """Alone: ``should_stop()`` after every step. Under torchrun: agreed by all ranks at log steps (a
        collective, and on CUDA a sync), so every rank stops after the same step."""
        if self.dist is None:
            return should_stop()
        return log_step and distributed.any_rank(should_stop(), self.device)

    def _wrap_ddp(self, module: torch.nn.Module) -> torch.nn.Module:
        """DistributedDataParallel under torchrun (it also makes every rank start from rank 0's weights)."""
        if self.dist is None:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device] if self.device.startswith("cuda") else None
        return DistributedDataParallel(module, device_ids=ids)

    def _guarded_step(self) -> torch.Tensor:
        """A step; out of memory becomes a message naming the batch size, or with --auto-batch-size a retry
        of the same step with each batch split in two (same batches, same masks, same effective batch)."""
        saved = self._rewind_point() if self.cfg.auto_batch_size else None
        while True:
            try:
                return self._step()
            except RuntimeError as err:  # torch.cuda.OutOfMemoryError is a RuntimeError too
                if "out of memory" not in str(err) and "can't allocate memory" not in str(err):
                    raise
                micro = self._micro_batch()
                if saved is None or micro <= 1 or self.dist is not None:  # ranks cannot retry alone
                    raise self._out_of_memory(micro) from err
                self._rewind(saved)
                self.state.split *= 2
                self._splits.append(
                    BatchSplit(
                        self.state.step + 1,
                        self._micro_batch(),
                        self.state.split,
                        f"out of memory at micro-batch {micro}: retrying step "
                        f"{self.state.step + 1} as {self.state.split} chunks of "
                        f"{self._micro_batch()}",
                    )
                )

    def _micro_batch(self) -> int:
        """Rows per forward pass: this rank's share of the batch, split by --auto-batch-size."""
        return max(1, math.ceil(self.cfg.batch // self.world / self.state.split))

    def _out_of_memory(self, micro: int) -> OutOfMemoryError:
        size = self.cfg.batch
        if self.cfg.auto_batch_size:
            return OutOfMemoryError(
                f"out of memory on {self.device} even at micro-batch {micro} (block size "
                f"{self.cfg.block_size}); try a smaller --block-size or preset"
            )
        return OutOfMemoryError(
            f"out of memory on {self.device} at --batch-size {size} (block size "
            f"{self.cfg.block_size}); try --batch-size {max(1, size // 2)} with --grad-accum "
            f"{self.cfg.grad_accum * 2} for the same effective batch, or --auto-batch-size"
        )

    def _rewind_point(self) -> tuple[LoopState, torch.Tensor, torch.Tensor]:
        from dataclasses import replace

        import torch

        return replace(self.state), self.mask_generator.get_state(), torch.get_rng_state()

    def _rewind(self, saved: tuple[LoopState, torch.Tensor, torch.Tensor]) -> None:
        """Back to the start of the failed step: data position, counters, masking and dropout generators."""
        from dataclasses import asdict

        import torch

        split = self.state.split
        for name, value in asdict(saved[0]).items():  # in place: the loop holds this object
            setattr(self.state, name, value)
        self.state.split = split
        self.mask_generator.set_state(saved[1])
        torch.set_rng_state(saved[2])
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()

    def _step(self) -> torch.Tensor:
        """One optimizer step over grad_accum batches; returns the mean loss, still on the device."""
        import torch

        cfg, state = self.cfg, self.state
        lr = state.lr = self._lr(state.step + 1, self._clock())
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        step_loss = torch.zeros((), device=self.device)
        for accum in range(cfg.grad_accum):
            ids, inputs, labels, positions, real = self._masked_batch()  # [B, T]: the global batch
            step_loss += self._batch_loss(ids, inputs, labels, positions, last=accum == cfg.grad_accum - 1)
            state.tokens += real
            state.samples += len(ids)
        self._grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        state.step += 1
        return step_loss

    def _batch_loss(
        self,
        ids: torch.Tensor,
        inputs: torch.Tensor,
        labels: torch.Tensor,
        positions: torch.Tensor | None = None,
        last: bool = True,
    ) -> torch.Tensor:
        """Forward and backward this rank's rows of one global batch, in ``state.split`` chunks, each loss
        divided by the whole global batch's mask count (a tensor where the labels are: never read back to the
        host), so the gradient is the global batch's however it is split across chunks and ranks. DDP averages
        gradients over ranks, hence the factor ``world``. Returns this rank's share of the mean loss / grad_accum."""
        import torch

        scale, world = self.cfg.grad_accum, self.world
        denominator = (labels != IGNORE_INDEX).sum().clamp(min=1)
        if self.dist is not None:
            rows = slice(self.dist.rank * len(ids) // world, (self.dist.rank + 1) * len(ids) // world)
            ids, inputs, labels = ids[rows], inputs[rows], labels[rows]
            positions = None if positions is None else positions[rows]
        total = torch.zeros((), device=self.device)
        size = self._micro_batch()
        starts = range(0, len(ids), size)
        for start in starts:
            part = slice(start, start + size)
            attention = None if self.batches.packed else (ids[part] != PAD).long().to(self.device)
            chunk_positions = None if positions is None else positions[part].to(self.device, non_blocking=True)
            args = (
                inputs[part].to(self.device, non_blocking=True),
                labels[part].to(self.device, non_blocking=True),
                attention,
                chunk_positions,
            )
            final = last and start == starts[-1]  # DDP all-reduces on the step's last backward only
            if self.graphs:  # a new step: the graph's outputs from the last one are no longer read
                torch.compiler.cudagraph_mark_step_begin()
            with self._autocast(), contextlib.nullcontext() if final else self._no_sync():
                loss = self.step_fn(*args)[0] / denominator
                (loss * world / scale).backward()
            total += loss.detach() / scale
        return total

    def _masked_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, int]:
        """The next global batch [B, T] on the device, masked there: (ids, inputs, labels, positions or None,
        real tokens, counted on the host). The host seconds this takes add to the window's data wait
        (``_speed_figures``)."""
        began = self._now()
        batch = self._next_batch()
        real = batch.size if self.batches.packed else int((batch != PAD).sum())
        ids = to_device(batch, self.device)
        inputs, labels, positions = self._mask(ids, self.mask_generator, self.cfg.mask_rate)
        self._data_s += self._now() - began
        return ids, inputs, labels, positions, real

    def _mask(
        self, ids: torch.Tensor, generator: torch.Generator, rate: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(inputs, labels, positions or None): fixed slots for full packed blocks with the sparse head, else
        the collator's masking."""
        if self.cfg.recipe == "packed" and self.cfg.sparse_head:
            inputs, positions, labels = mask_slots(
                ids, mask_id=self.mask_id, vocab_size=self.vocab, generator=generator, probability=rate
            )
            return inputs, labels, positions
        inputs, labels = mask_tokens(
            ids, mask_id=self.mask_id, vocab_size=self.vocab, generator=generator, probability=rate
        )
        return inputs, labels, None

    def _next_batch(self) -> np.ndarray:
        state = self.state
        if state.position >= self.batches.per_epoch():
            state.epoch, state.position = state.epoch + 1, 0
        batch = self.batches.get(state.epoch, state.position)
        state.position += 1
        return batch

    def _autocast(self) -> contextlib.AbstractContextManager:
        import torch

        if self.bf16:
            return torch.autocast(self.device.split(":")[0], dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _log(self, loss_sum: torch.Tensor) -> StepLogged:
        """The only host sync: read the loss, check it is finite, report rates since the last log."""
        state, window = self.state, self._window
        if self.dist is not None:
            distributed.sum_across(loss_sum)  # each rank holds its share of the global batch's mean
        total_loss = state.loss_sum + loss_sum.item()  # waits for the device: the window's work is done
        now = self._now()
        seconds = max(now - window[0], 1e-9)
        state.elapsed_s += seconds
        loss = total_loss / max(state.loss_steps, 1)
        state.loss_sum, state.loss_steps = 0.0, 0
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f"the loss became {loss} at step {state.step}; the run stopped and its last "
                f"checkpoint is kept; try a lower --lr (now {self.cfg.lr})"
            )
        epoch = state.epoch + state.position / self.batches.per_epoch()
        done = progress(state.step, state.elapsed_s, self.cfg, self.total)
        return StepLogged(
            state.step,
            round(epoch, 4),
            loss,
            self._lr(state.step, state.elapsed_s),
            state.tokens,
            (state.tokens - window[1]) / seconds,
            (state.samples - window[2]) / seconds,
            round(state.elapsed_s, 3),
            float(self._grad_norm),
            round(done, 6),
            *self._speed_figures((state.tokens - window[1]) / seconds, seconds),
        )

    def _speed_figures(self, tokens_per_s: float, seconds: float) -> tuple[float, float | None, float]:
        """(achieved TFLOP/s, MFU, data wait) of a log window. Data wait is the host's seconds in
        ``_masked_batch`` over the window's: exact on a CPU, where the host does the compute too; on CUDA
        an upper bound, since the host prepares the next batch while the device still runs queued kernels
        (telling the two apart would take a device sync per step, which the loop never makes)."""
        return (
            self.speed.tflops(tokens_per_s),
            self.speed.mfu(tokens_per_s),
            round(min(max(self._data_s / seconds, 0.0), 1.0), 4),
        )

    @cached_property
    def speed(self) -> RunSpeed:
        """FLOPs per token and the peak MFU is measured against, found once, when the loop starts (on a CPU
        the peak is the best matmul rate this machine measured, checked again for 0.1 s). Only the process
        that writes the run folder looks for a peak: under torchrun, ranks measuring at once would compete
        for the same cores."""
        return run_speed(self.cfg, self.vocab, self.device, self.bf16, self.world, with_peak=self.main)

    def _eval(self) -> Iterator[EvalLogged]:
        if not self.main:
            return
        result = self.evaluate(self.model, self.device, self._autocast)
        if result is not None:
            yield EvalLogged(self.state.step, **result)  # type: ignore[arg-type]  # eval_loss etc. are floats

    # --- checkpoints -------------------------------------------------------------------------

    def _checkpoint(self, loss_sum: torch.Tensor) -> CheckpointSaved:
        """Commit a checkpoint (pending loss carried over so resumed logging matches exactly)."""
        if self.dist is not None:
            distributed.sum_across(loss_sum)
        pending = loss_sum.item()
        if not math.isfinite(pending):
            raise NonFiniteLossError(
                f"the loss became {pending} before step {self.state.step}; no checkpoint "
                "was written and the last good one is kept"
            )
        self.state.loss_sum += pending
        loss_sum.zero_()
        if not self.main:  # rank 0 writes; the weights and optimizer are the same on every rank
            return CheckpointSaved(self.state.step, "")
        path = checkpoint.commit(self.run_dir / "checkpoints", self.state.step, self._write)
        checkpoint.apply_retention(self.run_dir / "checkpoints", self.cfg.keep_checkpoints)
        return CheckpointSaved(self.state.step, str(path))

    def _probe(self) -> Iterator[ProbesEvaluated]:
        """Fill-mask on the probe sentences with the weights just saved ("watch it learn"); the runner
        writes the rows. Eval mode: no dropout and no RNG draws, so resuming stays exact."""
        if self.probe is None or not self.main:
            return
        self.model.eval()
        try:
            rows = self.probe(self.model, self.state.step, self.content)
        finally:
            self.model.train()
        yield ProbesEvaluated(self.state.step, tuple(rows))

    def _write(self, folder: Path) -> None:
        import torch
        from safetensors.torch import save_file, save_model

        save_model(self.model, str(folder / "model.safetensors"))
        with (folder / "optimizer.pt").open("wb") as handle:  # our handle: a full disk surfaces as OSError
            torch.save(self.optimizer.state_dict(), handle)
        rng = {self._mask_key(): self.mask_generator.get_state(), "torch": torch.get_rng_state()}
        if self.cuda:
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        save_file(rng, str(folder / "rng.safetensors"))
        (folder / "state.json").write_text(json.dumps(asdict(self.state), indent=1))

    def _load(self, folder: Path) -> None:
        """Restore a verified checkpoint; one whose contents still cannot be used is a corrupt checkpoint.

        The manifest proves the files are the ones written, not that they are ours: a planted
        pickle in optimizer.pt is refused by ``weights_only=True`` and reported, never executed.
        """
        import pickle

        from safetensors import SafetensorError

        try:
            self._restore(folder)
        except (pickle.UnpicklingError, SafetensorError, RuntimeError, KeyError, TypeError, ValueError) as err:
            raise CorruptCheckpointError(
                f"checkpoint {folder} cannot be loaded: {str(err).splitlines()[0]}; "
                f"move it aside to resume from the one before"
            ) from err

    def _restore(self, folder: Path) -> None:
        import torch
        from safetensors.torch import load_file, load_model

        load_model(self.model, str(folder / "model.safetensors"), device=self.device)
        state = json.loads((folder / "state.json").read_text())
        if state.get("step") != self.cfg.fresh_optimizer_at:  # a fork's --reset-optimizer: fresh AdamW moments
            self.optimizer.load_state_dict(
                torch.load(folder / "optimizer.pt", weights_only=True, map_location=self.device)
            )
        rng = load_file(str(folder / "rng.safetensors"))
        self.state = LoopState(**state)
        self._restore_masks(rng)
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and self.cuda:
            torch.cuda.set_rng_state(rng["cuda"], self.device)

    def _mask_key(self) -> str:
        """The checkpoint's name for the mask generator's state: a CPU generator's and a CUDA one's differ in
        kind (Mersenne Twister, Philox) and cannot stand in for each other."""
        return "mask_cuda" if self.cuda else "mask"

    def _restore_masks(self, rng: dict[str, torch.Tensor]) -> None:
        """The mask stream where the checkpoint left it; a run moved between a CPU and a GPU (its checkpoint
        holds the other kind of generator) starts a fresh stream, seeded by the step, and says so: it
        resumes, no longer bit-exactly."""
        key = self._mask_key()
        if key in rng:
            self.mask_generator.set_state(rng[key])
            return
        self.mask_generator.manual_seed(self.cfg.seed + 1 + self.state.step)
        moved = "a GPU" if key == "mask" else "a CPU"
        self.notes.append(
            f"the checkpoint at step {self.state.step} was written on {moved}: masks go on from a fresh stream, "
            "so this resume is not bit-exact (the weights, optimizer and data order are)"
        )

    def _export(self) -> Path:
        """``final/``: save_pretrained (safetensors) and the tokenizer, so pipeline("fill-mask") loads it."""
        final = self.run_dir / "final"
        sweep_stale(self.run_dir)
        staging = staging_path(final)
        shutil.rmtree(staging, ignore_errors=True)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no progress bars in train.log or JSON output
        try:
            self.model.save_pretrained(staging, safe_serialization=True)
            for name in EXPORTED_FILES:
                shutil.copy2(Path(self.cfg.tokenizer_dir) / name, staging / name)
        except Exception:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        commit_folder(staging, final)  # fsynced and renamed whole, as durable as a checkpoint
        return final
