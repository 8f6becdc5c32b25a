"""Masked-LM corruption, the same in distribution as transformers' ``DataCollatorForLanguageModeling``.

15% of the non-special positions are chosen; of those, 80% become ``<mask>``, 10% a
random token and 10% stay as they are; labels are -100 everywhere else. Unlike the
collator, every draw comes from a ``torch.Generator`` the caller owns, so its state can be
checkpointed and a resumed run masks exactly as the uninterrupted one would have.

Both run where the ids are: on CUDA the trainer masks on the device with a CUDA generator, and nothing
here reads a value back to the host (``torch.where``, not boolean-mask assignment, which would sync to
count the chosen positions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

IGNORE_INDEX = -100
FIRST_REGULAR_ID = 5  # ids 0-4 are <s> <pad> </s> <unk> <mask>


def mask_tokens(
    input_ids: torch.Tensor,
    *,
    mask_id: int,
    vocab_size: int,
    generator: torch.Generator,
    probability: float = 0.15,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (corrupted inputs, labels) for a batch of token ids [B, T]; specials and padding are never chosen."""
    import torch

    shape, device = input_ids.shape, input_ids.device
    special = input_ids < FIRST_REGULAR_ID  # <s> <pad> </s> <unk> <mask>
    chance = torch.full(shape, probability, device=device).masked_fill_(special, 0.0)
    chosen = torch.bernoulli(chance, generator=generator).bool()
    labels = torch.where(chosen, input_ids, IGNORE_INDEX)
    to_mask = torch.bernoulli(torch.full(shape, 0.8, device=device), generator=generator).bool() & chosen
    inputs = torch.where(to_mask, mask_id, input_ids)
    to_random = torch.bernoulli(torch.full(shape, 0.5, device=device), generator=generator).bool() & chosen & ~to_mask
    random_ids = torch.randint(vocab_size, shape, generator=generator, dtype=input_ids.dtype, device=device)
    return torch.where(to_random, random_ids, inputs), labels


def slot_count(block_size: int, probability: float = 0.15) -> int:
    """Masked positions per packed block: ``probability`` of its block_size - 2 body tokens, at least 1."""
    return max(1, round(probability * (block_size - 2)))


def mask_slots(
    input_ids: torch.Tensor,
    *,
    mask_id: int,
    vocab_size: int,
    generator: torch.Generator,
    probability: float = 0.15,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return (corrupted inputs [B, T], positions [B, K], labels [B, K]) with exactly K masked slots per row.

    Why: a fixed K = slot_count(T) keeps every shape static, so the LM head runs on B·K gathered
    rows with no data-dependent indexing (no host sync on CUDA, one graph for torch.compile). The
    K positions of a row are a uniform draw among its non-special tokens, then 80/10/10 as in
    mask_tokens; a row with fewer than K regular tokens labels the extra slots IGNORE_INDEX.
    """
    import torch

    count, device = slot_count(input_ids.shape[1], probability), input_ids.device
    special = input_ids < FIRST_REGULAR_ID
    score = torch.rand(input_ids.shape, generator=generator, device=device).masked_fill_(special, 2.0)  # specials last
    positions = score.topk(count, dim=1, largest=False, sorted=False).indices  # [B, K]
    labels = input_ids.gather(1, positions)
    labels = labels.masked_fill(special.gather(1, positions), IGNORE_INDEX)
    draw = torch.rand(positions.shape, generator=generator, device=device)
    random_ids = torch.randint(vocab_size, positions.shape, generator=generator, dtype=input_ids.dtype, device=device)
    keep = labels.clamp(min=0)  # the original token (ignored slots keep theirs: they are special)
    replaced = torch.where(draw < 0.8, torch.full_like(keep, mask_id), torch.where(draw < 0.9, random_ids, keep))
    replaced = torch.where(labels == IGNORE_INDEX, input_ids.gather(1, positions), replaced)
    return input_ids.clone().scatter_(1, positions, replaced), positions, labels
