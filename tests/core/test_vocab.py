"""The vocabulary browser model: readable forms, frequencies, merge ranks, search."""

from __future__ import annotations

from pathlib import Path

import pytest

from kantai_tui.core.errors import BadInputError, TokenizerError
from kantai_tui.core.tokenizer.vocab import Vocabulary, readable, token_bytes


def test_readable_forms() -> None:
    assert token_bytes("ĠCritique") == b" Critique"
    assert readable(token_bytes("ĠCritique")) == "␣Critique"
    assert readable(token_bytes("Ċ")) == "↵"
    assert readable(bytes([0xE2, 0x80])) == "<0xE2><0x80>"  # half of an em dash
    assert token_bytes("<mask>") == b"<mask>"


def test_entries(kant_tokenizer: Path) -> None:
    vocab = Vocabulary.load(kant_tokenizer)
    assert vocab.has_frequencies
    assert [e.token for e in vocab.entries[:5]] == ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    assert all(e.special for e in vocab.entries[:5]) and not vocab.entries[5].special
    reason = next(e for e in vocab.entries if e.token == "ĠReason")
    assert (reason.readable, reason.text, reason.byte_length) == ("␣Reason", " Reason", 7)
    assert reason.frequency is not None and reason.frequency > 50
    assert reason.merge_rank is not None and reason.merge_rank >= 0
    assert vocab.entries[100].merge_rank is None  # a base byte symbol
    assert vocab.entries[-1].merge_rank == len(vocab) - 262  # last merge: 256 bytes + 5 specials before it


def test_search_modes(kant_tokenizer: Path) -> None:
    vocab = Vocabulary.load(kant_tokenizer)
    sub = vocab.search("critiq")
    assert {e.readable for e in sub} >= {"␣Critique", "␣critique"}  # smart case: lower query ignores case
    assert {e.readable for e in vocab.search("Critiq")} == {e.readable for e in sub if "Critiq" in e.text}
    prefix = vocab.search("␣Reas", "prefix")
    assert prefix and all(e.text.startswith(" Reas") for e in prefix)
    regex = vocab.search(r"^ [A-Z]{5}$", "regex")
    assert regex and all(len(e.text) == 6 and e.text[1:].isupper() for e in regex)
    by_freq = vocab.search("", sort="frequency")
    assert by_freq[0].frequency == max(e.frequency or 0 for e in vocab.entries)
    assert len(vocab.search("")) == len(vocab)


def test_search_errors(kant_tokenizer: Path) -> None:
    vocab = Vocabulary.load(kant_tokenizer)
    with pytest.raises(BadInputError, match=r"invalid regular expression '\(unclosed'"):
        vocab.search("(unclosed", "regex")
    with pytest.raises(BadInputError, match="search mode must be one of substring, prefix, regex"):
        vocab.search("x", "fuzzy")


def test_not_a_tokenizer_folder(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match=r"not a tokenizer folder \(no vocab.json\)"):
        Vocabulary.load(tmp_path)
