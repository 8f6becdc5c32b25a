"""Several processes through torchrun: DDP with torch.distributed, nothing home-made.

``torchrun --nproc_per_node=N -m kantai_tui train …`` starts N copies of the CLI; torchrun
tells each its RANK, WORLD_SIZE and LOCAL_RANK. The contract (docs/ARCHITECTURE.md):

- ``--batch-size`` is the global batch: rank r trains on rows r·B/N … (r+1)·B/N of every global
  batch, so the data order, the masks (drawn for the whole global batch from the same generator
  on every rank) and the gradient (DDP's all-reduce of losses scaled to the global mask count)
  do not depend on N. That is what lets a checkpoint resume at another world size.
- Only rank 0 creates the run folder, holds the lock, writes metrics, status, checkpoints,
  probes and final/; the other ranks only read (run.json, the checkpoint to resume from).
- A stop (SIGTERM/SIGINT on any rank) is agreed at log steps, so every rank stops after the
  same step and rank 0 checkpoints it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kantai_tui.core.errors import BadInputError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Dist:
    """This process's place in a torchrun job."""

    rank: int
    world: int
    local_rank: int

    @property
    def main(self) -> bool:
        """Rank 0: the only writer of the run folder."""
        return self.rank == 0


def from_env() -> Dist | None:
    """The torchrun job this process belongs to, or None when it runs alone."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return None
        return Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    except (KeyError, ValueError) as err:
        raise BadInputError(
            f"WORLD_SIZE is set but RANK/LOCAL_RANK are missing or not numbers ({err}); "
            "start several processes with torchrun"
        ) from None


def check_global_batch(size: int, world: int) -> None:
    """The global batch must split evenly across the ranks (BadInputError naming both)."""
    if size % world:
        raise BadInputError(
            f"--batch-size {size} is the global batch and must divide among {world} processes; "
            f"use a multiple of {world}"
        )


def init(dist: Dist, device: str) -> None:
    """Join the process group: NCCL for CUDA, gloo for CPU (``device`` as given on the command line)."""
    import torch
    import torch.distributed as td

    if td.is_initialized():
        return
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(dist.local_rank)
    td.init_process_group("nccl" if cuda else "gloo")


def device_for(dist: Dist | None, device: str) -> str:
    """Each rank its own GPU (cuda:LOCAL_RANK); CPU ranks share the CPU."""
    if dist is None or not device.startswith("cuda"):
        return device
    return f"cuda:{dist.local_rank}"


def share_text(dist: Dist, text: str | None) -> str:
    """Rank 0's ``text`` on every rank (JSON bytes in a tensor, not a pickled object)."""
    import torch
    import torch.distributed as td

    device = "cuda" if td.get_backend() == "nccl" else "cpu"
    payload = json.dumps(text if dist.main else None).encode()
    size = torch.tensor([len(payload)], dtype=torch.long, device=device)
    td.broadcast(size, 0)
    buffer = torch.zeros(int(size.item()), dtype=torch.uint8, device=device)
    if dist.main:
        buffer.copy_(torch.frombuffer(bytearray(payload), dtype=torch.uint8))
    td.broadcast(buffer, 0)
    shared = json.loads(bytes(buffer.cpu().tolist()).decode())
    return shared if isinstance(shared, str) else ""


def any_rank(flag: bool, device: str) -> bool:
    """True on every rank when ``flag`` is true on any of them."""
    import torch
    import torch.distributed as td

    value = torch.tensor([1 if flag else 0], device=device)
    td.all_reduce(value, op=td.ReduceOp.MAX)
    return bool(value.item())


def max_across(value: float, device: str) -> float:
    """The largest of every rank's ``value``, on every rank (the clock a --time run agrees on)."""
    import torch
    import torch.distributed as td

    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    td.all_reduce(tensor, op=td.ReduceOp.MAX)
    return float(tensor.item())


def sum_across(value: torch.Tensor) -> torch.Tensor:
    """In place: the sum of ``value`` over all ranks."""
    import torch.distributed as td

    td.all_reduce(value)
    return value


def barrier() -> None:
    """Wait until every rank gets here (rank 0 has trained the tokenizer, say)."""
    import torch.distributed as td

    td.barrier()


def shutdown() -> None:
    """Leave the process group together: rank 0 may still be writing a checkpoint or final/, and a
    rank that tears down its side of the group first aborts (gloo: "terminate called without an
    active exception")."""
    import torch.distributed as td

    if td.is_initialized():
        td.barrier()
        td.destroy_process_group()
