"""Masked-LM corruption, the same in distribution as transformers' ``DataCollatorForLanguageModeling``.

15% of the non-special positions are chosen; of those, 80% become ``<mask>``, 10% a
random token and 10% stay as they are; labels are -100 everywhere else. Unlike the
collator, every draw comes from a ``torch.Generator`` the caller owns, so its state can be
checkpointed and a resumed run masks exactly as the uninterrupted one would have.
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

    labels = input_ids.clone()
    special = input_ids < FIRST_REGULAR_ID  # <s> <pad> </s> <unk> <mask>
    chance = torch.full(input_ids.shape, probability, device=input_ids.device).masked_fill_(special, 0.0)
    chosen = torch.bernoulli(chance, generator=generator).bool()
    labels[~chosen] = IGNORE_INDEX
    inputs = input_ids.clone()
    to_mask = torch.bernoulli(torch.full(input_ids.shape, 0.8), generator=generator).bool() & chosen
    inputs[to_mask] = mask_id
    to_random = torch.bernoulli(torch.full(input_ids.shape, 0.5), generator=generator).bool() & chosen & ~to_mask
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator, dtype=input_ids.dtype)
    inputs[to_random] = random_ids[to_random]
    return inputs, labels
