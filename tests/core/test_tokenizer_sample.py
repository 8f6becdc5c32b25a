"""A tokenizer on a big corpus: --sample, the memory said before training (and refused when it cannot fit),
and the coverage measured on the documents the sample left out."""

from __future__ import annotations

import json
import re
from itertools import islice
from pathlib import Path

import pytest

from kantai_tui.cli import main
from kantai_tui.core.errors import BadInputError
from kantai_tui.core.tokenizer import bpe
from kantai_tui.core.tokenizer.sample import (
    HEAPS_EXPONENT,
    MEMORY_BASE,
    check_memory,
    distinct_words,
    keep_documents,
    memory_for,
    parse_size,
    plan,
    prescan,
)


@pytest.mark.parametrize(
    ("text", "size"),
    [("1GB", 1 << 30), ("500MB", 500 << 20), ("1.5GiB", int(1.5 * (1 << 30))), ("200m", 200 << 20), ("all", None)],
)
def test_sizes_are_read_in_powers_of_1024(text: str, size: int | None) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5q", "--sample '5q' is not a size; write it like 500MB, 1GB or all"),
        ("10KB", "--sample '10KB' is under 1 MB; a tokenizer needs more text (or write all)"),
    ],
)
def test_a_bad_size_is_one_line(text: str, message: str) -> None:
    with pytest.raises(BadInputError, match=re.escape(message)):
        parse_size(text)


def test_a_corpus_over_the_sample_keeps_that_share_of_its_documents() -> None:
    chosen = plan(10 << 30, 1 << 30)
    assert chosen.sampled and chosen.share == pytest.approx(0.1)
    kept = sum(islice(keep_documents(chosen.share), 100_000))
    assert 9_500 < kept < 10_500
    assert list(islice(keep_documents(0.3), 50)) == list(islice(keep_documents(0.3), 50))  # seeded
    assert not plan(1 << 20, 1 << 30).sampled and not plan(5 << 30, None).sampled


def test_a_training_that_cannot_fit_is_refused_with_the_sample_that_would() -> None:
    chosen = plan(4 << 30, None, prescan=(16 << 20, 200_000))  # 200 k distinct words in the first 16 MiB
    assert chosen.distinct_words == int(200_000 * 256**HEAPS_EXPONENT)
    with pytest.raises(BadInputError) as caught:
        check_memory(chosen, 2 << 30)
    message = str(caught.value)
    assert message.startswith("training the tokenizer on 4.0 GiB of text needs about ")
    assert "distinct words), and 2.0 GiB is available; pass --sample " in message
    suggested = parse_size(message.rsplit("--sample ", 1)[1].split()[0])
    assert suggested is not None
    assert plan(4 << 30, suggested, prescan=(16 << 20, 200_000)).memory_bytes <= 0.8 * (2 << 30)
    check_memory(plan(4 << 30, suggested, prescan=(16 << 20, 200_000)), 2 << 30)  # and that one is taken


def test_the_memory_estimate_grows_with_distinct_words_not_bytes() -> None:
    assert memory_for(0) == MEMORY_BASE
    small, big = distinct_words((1 << 20, 10_000), 1 << 20), distinct_words((1 << 20, 10_000), 1 << 30)
    assert small == 10_000 and big == int(10_000 * 1024**HEAPS_EXPONENT)
    assert prescan(iter(["a b a", "c a"])) == (8, 3)


def test_tokenizer_train_says_what_it_trains_on_and_measures_coverage_on_the_rest(
    small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tok"
    assert main(["tokenizer", "train", str(small_corpus), "--out", str(out), "--sample", "1MB", "--json"]) == 0
    captured = capsys.readouterr()
    assert "kantai: training the tokenizer on all " in captured.err  # 168 KB: under the sample, all of it
    meta = json.loads((out / "kantai.json").read_text())
    assert meta["sample"]["share"] == 1.0 and meta["coverage"] is None  # it saw all the text


def test_a_sampled_tokenizer_is_measured_on_left_out_documents(
    small_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes: list[str] = []
    result = bpe.train_tokenizer(small_corpus, tmp_path / "tok", vocab_size=800, sample=None, note=notes.append)
    assert result.sample is not None and result.sample["share"] == 1.0
    monkeypatch.setattr(bpe, "plan", lambda total, sample, scanned: plan(total, total // 2, scanned))  # "twice" it
    half = bpe.train_tokenizer(small_corpus, tmp_path / "half", vocab_size=800, note=notes.append)
    assert half.sample is not None and half.sample["share"] == pytest.approx(0.5, abs=0.01)
    assert half.coverage is not None and half.coverage["on"] == "left-out documents"
    assert 1.0 <= half.coverage["tokens_per_word"] < 3.0 and 0.0 < half.coverage["whole_words"] <= 1.0
    assert "seeded sample of 50% of the documents" in notes[-1]
