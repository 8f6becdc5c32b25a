"""The tutorial's byte-level BPE: same vocabulary as the bare tokenizers call, loads in transformers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kantai_tui.core.errors import CorpusError, OutputError, TokenizerError
from kantai_tui.core.tokenizer.bpe import (
    MIN_VOCAB_SIZE,
    SPECIAL_TOKENS,
    encode,
    load_tokenizer,
    read_meta,
    token_stats,
    train_tokenizer,
)


def test_seed_sentence_encodes_as_in_the_tutorial(kant_tokenizer: Path) -> None:
    encoded = encode(load_tokenizer(kant_tokenizer), "The Critique of Pure Reason.")
    assert " ".join(encoded.tokens) == "<s> The ĠCritique Ġof ĠPure ĠReason . </s>"
    assert encoded.offsets[1:-1] == ((0, 3), (4, 12), (13, 15), (16, 20), (21, 27), (27, 28))
    assert encoded.ids[0] == 0 and encoded.ids[-1] == 2


def test_special_tokens_and_files(kant_tokenizer: Path) -> None:
    vocab = json.loads((kant_tokenizer / "vocab.json").read_text(encoding="utf-8"))
    assert [vocab[t] for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    for name in ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "kantai.json"):
        assert (kant_tokenizer / name).is_file(), name
    assert not list(kant_tokenizer.glob(".staging-*"))
    meta = read_meta(kant_tokenizer)
    assert meta is not None and meta["requested_vocab_size"] == 52_000 and meta["min_frequency"] == 2


def test_token_counts_are_counted_once_and_cached(small_corpus: Path, tmp_path: Path) -> None:
    from kantai_tui.core.tokenizer.bpe import ensure_token_counts

    out = tmp_path / "tok"
    train_tokenizer(small_corpus, out, vocab_size=600)
    assert "token_counts" not in read_meta(out)  # counted on first browse, not during training
    counts = ensure_token_counts(out)
    meta = read_meta(out)
    assert counts is not None and meta is not None and meta["token_counts"] == counts
    whole = load_tokenizer(out)
    whole.no_truncation()
    assert (
        sum(counts) == meta["corpus_tokens"] == len(encode(whole, small_corpus.read_text(encoding="utf-8"), False).ids)
    )
    small_corpus.rename(tmp_path / "moved.txt")  # cached counts survive the corpus moving away
    try:
        assert ensure_token_counts(out) == counts
    finally:
        (tmp_path / "moved.txt").rename(small_corpus)


def test_same_vocabulary_as_the_bare_tokenizers_call(sample_dir: Path, kant_tokenizer: Path) -> None:
    """The tutorial's own call, on files, must learn exactly our vocabulary and merges."""
    from tokenizers import ByteLevelBPETokenizer

    bare = ByteLevelBPETokenizer()
    files = [str(p) for p in sorted(sample_dir.glob("*.txt"))]
    bare.train(
        files=files, vocab_size=52_000, min_frequency=2, special_tokens=list(SPECIAL_TOKENS), show_progress=False
    )
    ours = json.loads((kant_tokenizer / "vocab.json").read_text(encoding="utf-8"))
    assert bare.get_vocab() == ours


def test_transformers_loads_the_folder(kant_tokenizer: Path) -> None:
    from transformers import AutoTokenizer, RobertaTokenizerFast

    tok = RobertaTokenizerFast.from_pretrained(str(kant_tokenizer))
    assert len(tok) == load_tokenizer(kant_tokenizer).get_vocab_size() > 5
    assert tok.model_max_length == 512
    assert (tok.mask_token_id, tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (4, 1, 0, 2)
    ids = tok("The Critique of Pure Reason.")["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["<s>", "The", "ĠCritique", "Ġof", "ĠPure", "ĠReason", ".", "</s>"]
    assert tok("x " * 2000, truncation=True)["input_ids"].__len__() == 512
    assert len(AutoTokenizer.from_pretrained(str(kant_tokenizer))) == len(tok)


def test_mask_absorbs_the_space_before_it(kant_tokenizer: Path) -> None:
    """As in RoBERTa: "human <mask>." is human, <mask>, . — no stray Ġ token (fill-mask depends on it)."""
    from transformers import RobertaTokenizerFast

    assert encode(load_tokenizer(kant_tokenizer), "human <mask>.").tokens == ("<s>", "human", "<mask>", ".", "</s>")
    tok = RobertaTokenizerFast.from_pretrained(str(kant_tokenizer))
    ids = tok("Human thinking involves human <mask>.")["input_ids"]
    assert tok.convert_ids_to_tokens(ids)[-4:] == ["Ġhuman", "<mask>", ".", "</s>"]


def test_truncation_at_512(kant_tokenizer: Path) -> None:
    assert len(encode(load_tokenizer(kant_tokenizer), "reason " * 1000).ids) == 512


def test_token_stats(small_tokenizer: Path, small_corpus: Path) -> None:
    stats = token_stats(small_tokenizer, small_corpus, block_size=16)
    assert stats.lines > 2000
    assert stats.per_line.min >= 3  # <s> + at least one token + </s>
    assert 0 < stats.truncated_lines < stats.lines
    assert stats.truncated_share == round(stats.truncated_lines / stats.lines, 6)
    assert stats.tokens_lost > 0
    assert token_stats(small_tokenizer, small_corpus, block_size=512).truncated_lines == 0


def test_progress_is_reported(small_corpus: Path, tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    out = tmp_path / "tok"
    train_tokenizer(small_corpus, out, vocab_size=500, progress=lambda p, d, t: seen.append((p, d, t)))
    phases = [p for p, _, _ in seen]
    size = small_corpus.stat().st_size
    assert seen[0] == ("reading corpus", 0, size)
    assert seen[phases.index("learning merges") - 1] == ("reading corpus", size, size)
    assert phases[-1] == "saving"


def test_vocab_size_too_small(small_corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(
        TokenizerError, match=f"--vocab-size 100 is too small: a byte-level BPE needs at least {MIN_VOCAB_SIZE}"
    ):
        train_tokenizer(small_corpus, tmp_path / "tok", vocab_size=100)
    assert not (tmp_path / "tok").exists()  # rejected before anything was written


def test_output_folder_that_cannot_be_written(small_corpus: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"a-file/tok: cannot write the tokenizer there \(Not a directory\)"):
        train_tokenizer(small_corpus, blocker / "tok")
    with pytest.raises(OutputError, match="a-file: exists and is not a folder"):
        train_tokenizer(small_corpus, blocker)


def test_training_on_bad_corpus_names_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\xff\n")
    with pytest.raises(CorpusError, match=r"bad\.txt: not valid UTF-8 at byte offset 3"):
        train_tokenizer(bad, tmp_path / "tok")
    assert not (tmp_path / "tok" / "tokenizer.json").exists()


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="no such folder"):
        load_tokenizer(tmp_path / "missing")
    with pytest.raises(TokenizerError, match=r"not a tokenizer folder \(no tokenizer.json\)"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(TokenizerError, match="cannot be loaded as a tokenizer"):
        load_tokenizer(tmp_path)


def test_long_lines_train_in_pieces_with_the_same_vocabulary(
    sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line longer than LONG_LINE is fed in pieces cut before a word's space: same merges, bounded memory."""
    from tokenizers import ByteLevelBPETokenizer

    from kantai_tui.core.corpus import lines

    text = (sample_dir / "fundamental_principles_of_the_metaphysic_of_morals.txt").read_text(encoding="utf-8")
    path = tmp_path / "long.txt"
    path.write_text(text[:60_000].replace("\n", "  ") + "\n" + text[60_000:], encoding="utf-8")  # one 60k-char line
    monkeypatch.setattr(lines, "LONG_LINE", 2_000)
    train_tokenizer(path, tmp_path / "tok", vocab_size=3_000)
    bare = ByteLevelBPETokenizer()
    bare.train(
        files=[str(path)], vocab_size=3_000, min_frequency=2, special_tokens=list(SPECIAL_TOKENS), show_progress=False
    )
    assert json.loads((tmp_path / "tok" / "vocab.json").read_text(encoding="utf-8")) == bare.get_vocab()
    stats = token_stats(tmp_path / "tok", path, block_size=128)
    whole = load_tokenizer(tmp_path / "tok")
    whole.no_truncation()
    assert stats.per_line.max == len(
        whole.encode(text[:60_000].replace("\n", "  ")).ids
    )  # one line, summed over pieces
