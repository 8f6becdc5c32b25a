"""Preset sizes against real models; masking against DataCollatorForLanguageModeling's distribution."""

from __future__ import annotations

import pytest
import torch

from kantai_tui.core.errors import BadInputError
from kantai_tui.core.training.masking import IGNORE_INDEX, mask_tokens
from kantai_tui.core.training.presets import PRESETS, get_preset, model_size, roberta_config


def test_kantai_preset_is_the_tutorials_model() -> None:
    size = model_size(PRESETS["kantai"], tokenizer_vocab=11_600)
    assert size.total == 83_504_416
    assert size.vocab_size == 52_000 and size.unused_rows == 52_000 - 11_600
    assert size.embeddings + size.encoder + size.lm_head == size.total


@pytest.mark.parametrize("name", ["tiny", "small", "kantai"])
def test_analytic_counts_match_real_models(name: str) -> None:
    from transformers import RobertaForMaskedLM

    preset = PRESETS[name]
    model = RobertaForMaskedLM(roberta_config(preset, 11_600))
    size = model_size(preset, 11_600)
    assert sum(p.numel() for p in model.parameters()) == size.total
    assert sum(p.numel() for p in model.roberta.embeddings.parameters()) == size.embeddings
    assert model.config.vocab_size == size.vocab_size


def test_vocab_rounds_up_to_64_except_kantai() -> None:
    assert model_size(PRESETS["tiny"], 11_600).vocab_size == 11_648
    assert model_size(PRESETS["tiny"], 11_648).unused_rows == 0
    with pytest.raises(BadInputError, match="has only 52,000 embedding rows"):
        model_size(PRESETS["kantai"], 60_000)
    with pytest.raises(BadInputError, match="--preset 'huge' is not one of tiny, small, kantai"):
        get_preset("huge")


def test_masking_distribution_and_specials() -> None:
    ids = torch.randint(5, 1000, (256, 128))
    ids[:, 0], ids[:, -1], ids[:, 100:] = 0, 2, 1  # <s>, </s>, padding
    inputs, labels = mask_tokens(ids, mask_id=4, vocab_size=1000, generator=torch.Generator().manual_seed(0))
    chosen = labels != IGNORE_INDEX
    regular = (ids >= 5).sum().item()
    assert abs(chosen.sum().item() / regular - 0.15) < 0.01
    assert not chosen[ids < 5].any()  # never a special token or padding
    assert torch.equal(labels[chosen], ids[chosen])
    masked = (inputs == 4) & chosen
    unchanged = (inputs == ids) & chosen
    n = chosen.sum().item()
    assert abs(masked.sum().item() / n - 0.8) < 0.02
    assert abs(unchanged.sum().item() / n - 0.1) < 0.02  # plus ~0.1% random draws of the same token
    assert torch.equal(inputs[~chosen], ids[~chosen])


def test_masking_is_reproducible_from_generator_state() -> None:
    ids = torch.randint(5, 1000, (8, 64))
    generator = torch.Generator().manual_seed(7)
    mask_tokens(ids, mask_id=4, vocab_size=1000, generator=generator)
    saved = generator.get_state()
    first = mask_tokens(ids, mask_id=4, vocab_size=1000, generator=generator)
    generator.set_state(saved)
    again = mask_tokens(ids, mask_id=4, vocab_size=1000, generator=generator)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
