"""The fast path's pieces: fixed masked slots, memory-mapped packed blocks, whole batches, options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kantai_tui.cli import main
from kantai_tui.core.training.masking import FIRST_REGULAR_ID, IGNORE_INDEX, mask_slots, slot_count


def _ids(rows: int = 64, width: int = 128, seed: int = 0):
    import torch

    ids = torch.randint(FIRST_REGULAR_ID, 1000, (rows, width), generator=torch.Generator().manual_seed(seed))
    ids[:, 0], ids[:, -1] = 0, 2  # <s> … </s>
    ids[:, 40] = 2  # a line separator inside the block
    return ids


def test_mask_slots_picks_k_regular_positions_per_row_with_80_10_10() -> None:
    import torch

    ids = _ids()
    inputs, positions, labels = mask_slots(ids, mask_id=4, vocab_size=1000, generator=torch.Generator().manual_seed(1))
    k = slot_count(128)
    assert k == 19 and positions.shape == labels.shape == (64, k)
    for row in range(64):
        assert len(set(positions[row].tolist())) == k  # distinct positions
    assert not bool((ids.gather(1, positions) < FIRST_REGULAR_ID).any())  # never <s>, </s> or padding
    assert torch.equal(labels, ids.gather(1, positions))
    chosen = torch.zeros_like(ids, dtype=torch.bool).scatter_(1, positions, True)
    assert torch.equal(inputs[~chosen], ids[~chosen])  # everything else untouched
    at = inputs.gather(1, positions)
    masked = (at == 4).float().mean().item()
    kept = (at == labels).float().mean().item()
    assert 0.75 < masked < 0.85 and 0.07 < kept < 0.14


def test_mask_slots_ignores_slots_a_short_row_cannot_fill() -> None:
    import torch

    ids = torch.full((2, 32), 2)  # all separators but three regular tokens in row 0
    ids[0, 5:8] = torch.tensor([10, 11, 12])
    inputs, positions, labels = mask_slots(ids, mask_id=4, vocab_size=1000, generator=torch.Generator().manual_seed(0))
    assert positions.shape == (2, slot_count(32))
    assert sorted(labels[0][labels[0] != IGNORE_INDEX].tolist()) == [10, 11, 12]
    assert bool((labels[1] == IGNORE_INDEX).all())
    assert torch.equal(inputs[1], ids[1])  # no special token is ever replaced


def test_mask_slots_is_reproducible_from_the_generator_state() -> None:
    import torch

    generator = torch.Generator().manual_seed(3)
    state = generator.get_state()
    first = mask_slots(_ids(), mask_id=4, vocab_size=1000, generator=generator)
    generator.set_state(state)
    again = mask_slots(_ids(), mask_id=4, vocab_size=1000, generator=generator)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def test_packed_blocks_are_a_memory_mapped_file_equal_to_the_stream(small_corpus: Path, small_tokenizer: Path) -> None:
    from kantai_tui.core.training import data

    cache = data.open_token_cache(small_corpus, small_tokenizer)
    train, _ = data.split_lines(cache.lines, 0.1, 42)
    blocks = data.packed_blocks(cache, train, 32)
    assert isinstance(blocks, np.memmap)
    stream = np.concatenate([np.append(cache.line(int(i)), data.EOS) for i in train])
    assert len(blocks) == len(stream) // 30
    assert np.array_equal(blocks[:, 1:-1].reshape(-1), stream[: len(blocks) * 30])
    assert bool((blocks[:, 0] == data.BOS).all()) and bool((blocks[:, -1] == data.EOS).all())
    chunked = cache.path / "chunked.npy"  # filling a chunk of lines at a time gives the same file
    data._write_packed(cache, train, 32, chunked, chunk_lines=7)
    assert np.array_equal(np.load(chunked), blocks)
    assert data.packed_blocks(cache, train, 32).filename == blocks.filename  # reused, not rebuilt
    rows = np.array([5, 0, len(blocks) - 1, 5])
    assert np.array_equal(data.read_rows(blocks, rows), blocks[rows])  # read by pread, not through the mapping
    assert np.array_equal(data.read_slice(cache.ids, 3, 40), cache.ids[3:40])
    assert np.array_equal(
        data.read_slice(cache.starts, len(cache.starts) - 2, len(cache.starts) + 5), cache.starts[-2:]
    )


def test_a_large_corpus_is_split_without_a_permutation_of_all_its_documents() -> None:
    from kantai_tui.core.training import data

    train, held = data.split_lines(data.EXACT_SPLIT_MAX + 1_000, 0.01, 42)
    assert len(held) == data.MAX_HELDOUT and train.dtype == np.uint32
    assert len(train) + len(held) == data.EXACT_SPLIT_MAX + 1_000 and not np.isin(held, train).any()
    _, held_again = data.split_lines(data.EXACT_SPLIT_MAX + 1_000, 0.01, 42)
    assert np.array_equal(held, held_again)


def test_a_damaged_packed_file_is_rebuilt(small_corpus: Path, small_tokenizer: Path) -> None:
    from kantai_tui.core.training import data

    cache = data.open_token_cache(small_corpus, small_tokenizer)
    train, _ = data.split_lines(cache.lines, 0.1, 42)
    expected = np.array(data.packed_blocks(cache, train, 32))
    path = next(cache.path.glob("packed-32-*.npy"))
    path.write_bytes(path.read_bytes()[:100])
    assert np.array_equal(data.packed_blocks(cache, train, 32), expected)


def test_packed_epochs_have_whole_batches_only(small_corpus: Path, small_tokenizer: Path) -> None:
    from kantai_tui.core.training.config import TrainConfig
    from kantai_tui.core.training.data import open_token_cache, split_lines
    from kantai_tui.core.training.step import Batches

    cache = open_token_cache(small_corpus, small_tokenizer)
    train, _ = split_lines(cache.lines, 0.01, 42)
    cfg = TrainConfig(
        corpus=str(small_corpus), tokenizer_dir=str(small_tokenizer), block_size=32, batch_size=7
    ).resolved()
    batches = Batches(cfg, cache, train)
    assert len(batches.examples) % 7 != 0  # the case that matters
    assert batches.per_epoch() == len(batches.examples) // 7
    assert {len(batches.get(0, p)) for p in range(batches.per_epoch())} == {7}
    assert batches.get(0, 0).dtype == np.int64


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--compile", "sometimes"], "argument --compile: invalid choice: 'sometimes'"),
        (["--dropout", "1.5"], "--dropout 1.5 must be at least 0 and below 1"),
        (["--dropout", "-0.1"], "--dropout -0.1 must be at least 0 and below 1"),
    ],
)
def test_bad_speed_options_are_refused_with_a_message(
    small_corpus: Path,
    small_tokenizer: Path,
    tmp_path: Path,
    option: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    try:
        code = main(
            ["train", str(small_corpus), "--tokenizer", str(small_tokenizer), "--runs-dir", str(tmp_path), *option]
        )
    except SystemExit as exit_:  # argparse's own usage errors
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before any run folder


def test_dropout_defaults_by_recipe_and_reaches_the_model(
    small_corpus: Path, small_tokenizer: Path, tmp_path: Path
) -> None:
    from kantai_tui.core.training.config import TrainConfig
    from kantai_tui.core.training.trainer import Trainer

    base = TrainConfig(corpus=str(small_corpus), tokenizer_dir=str(small_tokenizer), block_size=32, batch_size=4)
    assert base.resolved().dropout == 0.0
    assert TrainConfig(**{**base.to_dict(), "recipe": "seed"}).resolved().dropout == 0.1
    trainer = Trainer(TrainConfig(**{**base.to_dict(), "dropout": 0.25}).resolved(), tmp_path / "r")
    assert (
        trainer.model.config.hidden_dropout_prob == 0.25 and trainer.model.config.attention_probs_dropout_prob == 0.25
    )
    assert trainer.slots and not trainer.compiled  # packed: fixed slots; compile is for CUDA unless asked
