"""Training a tokenizer on a corpus of any size: a seeded sample, the memory it will take, its coverage.

Hugging Face's BPE trainer holds every distinct pre-tokenized word with its count and every pair
of symbols in memory, tens of times the text on varied corpora (tokenizers issues #1345: 150 GB for
a 2 GB file; #1681), and its maintainers advise training on about 1 GB. So a corpus above
``--sample`` (1 GiB by default) is trained on a seeded sample of its documents, whole documents
chosen with the probability that gives about that many bytes; the memory is estimated from the
distinct words in a prescan of the text before starting (and refused, with the --sample that
fits, when the machine has less); and afterwards, when there was a sample, the vocabulary's coverage is measured on
documents it left out: tokens per word, bytes per token and the share of words that are one token.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from kantai_tui.core.errors import BadInputError
from kantai_tui.core.files import human_bytes

if TYPE_CHECKING:
    from tokenizers import Tokenizer

DEFAULT_SAMPLE_BYTES = 1 << 30
SAMPLE_SEED = 20_261_201
COVERAGE_BYTES = 4 << 20  # text encoded to measure coverage: enough for stable shares, about a second
# The trainer's memory grows with the distinct words it counts, not with the bytes: measured here, 1.15-1.45 KB
# per distinct word (random words, 200 k and 1 M of them) on top of kantai's own ~300 MB. Distinct words are
# counted in the first PRESCAN_BYTES and extrapolated by Heaps' law with a steep exponent (real text: 0.4-0.7),
# so the estimate errs high on text that repeats itself (bench_scale.py checks it never falls short).
MEMORY_BASE = 300 << 20
MEMORY_PER_WORD = 1600
HEAPS_EXPONENT = 0.75
PRESCAN_BYTES = 16 << 20
WHOLE_UP_TO = 1.25  # a corpus up to 1.25 times the sample is trained whole: leaving out a few documents helps nobody
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int | None:
    """'1GB', '500M', '1.5GiB', '200000' as bytes (K/M/G are powers of 1024); 'all' or '0' as None (no sample)."""
    value = text.strip().lower()
    if value in ("all", "0", "none"):
        return None
    found = _SIZE.fullmatch(value)
    if not found:
        raise BadInputError(f"--sample {text!r} is not a size; write it like 500MB, 1GB or all")
    size = int(float(found.group(1)) * _UNITS[found.group(2)])
    if size < 1 << 20:
        raise BadInputError(f"--sample {text!r} is under 1 MB; a tokenizer needs more text (or write all)")
    return size


@dataclass(frozen=True)
class Plan:
    """What a tokenizer is trained on: the share of documents kept, and the memory that should take."""

    corpus_bytes: int
    sample_bytes: int | None  # the --sample limit, None = no limit
    share: float  # of the documents (1.0 = all)
    memory_bytes: int
    distinct_words: int  # estimated in the text trained on (Heaps' law from a prescan)
    prescan: tuple[int, int] = (0, 0)  # (bytes read, distinct words in them)

    @property
    def sampled(self) -> bool:
        return self.share < 1.0

    def to_dict(self) -> dict:
        """JSON-ready (kept in the tokenizer's kantai.json)."""
        return asdict(self)


def distinct_words(prescan: tuple[int, int], trained: float) -> int:
    """Distinct words in ``trained`` bytes, from (bytes, distinct words) counted in a prescan of the same text."""
    scanned, words = prescan
    if scanned <= 0:
        return 0
    return int(words * max(1.0, trained / scanned) ** HEAPS_EXPONENT)


def memory_for(words: int) -> int:
    """Peak memory of training on text with ``words`` distinct words (an upper estimate, see MEMORY_PER_WORD)."""
    return MEMORY_BASE + MEMORY_PER_WORD * words


def plan(corpus_bytes: int, sample_bytes: int | None, prescan: tuple[int, int] = (0, 0)) -> Plan:
    """The share to keep so that about ``sample_bytes`` are trained on, and the memory estimate for that."""
    whole = sample_bytes is None or corpus_bytes <= sample_bytes * WHOLE_UP_TO
    share = 1.0 if whole else sample_bytes / corpus_bytes  # type: ignore[operator]  # not None when not whole
    words = distinct_words(prescan, corpus_bytes * share)
    return Plan(corpus_bytes, sample_bytes, share, memory_for(words), words, prescan)


def check_memory(chosen: Plan, available: int) -> None:
    """Refuse, before anything starts, a training that would not fit: with the --sample that would."""
    if chosen.memory_bytes <= available:
        return
    scanned, words = chosen.prescan
    room = max(available * 0.8 - MEMORY_BASE, 0) / MEMORY_PER_WORD  # distinct words that fit
    fits = int(scanned * (room / words) ** (1 / HEAPS_EXPONENT)) if words and room else 1 << 20
    raise BadInputError(
        f"training the tokenizer on {human_bytes(chosen.corpus_bytes * chosen.share)} of text needs about "
        f"{human_bytes(chosen.memory_bytes)} of memory (about {chosen.distinct_words:,} distinct words), and "
        f"{human_bytes(available)} is available; pass --sample {max(fits >> 20, 1)}MB to train on a seeded sample that fits"
    )


def prescan(documents: Iterator[str], limit: int = PRESCAN_BYTES) -> tuple[int, int]:
    """(bytes, distinct whitespace words) of the first ``limit`` bytes of text: what the memory estimate
    extrapolates from."""
    seen: set[str] = set()
    size = 0
    for text in documents:
        seen.update(text.split())
        size += len(text.encode("utf-8"))
        if size >= limit:
            break
    return size, len(seen)


def keep_documents(share: float, seed: int = SAMPLE_SEED) -> Iterator[bool]:
    """For each document in corpus order, whether the sample keeps it (the same sequence for the same seed,
    so the documents left out can be found again to measure coverage)."""
    draw = random.Random(seed).random
    while True:
        yield share >= 1.0 or draw() < share


@dataclass(frozen=True)
class Coverage:
    """How the vocabulary encodes text: measured on documents it was not trained on when it had a sample."""

    on: str  # what it was measured on ("left-out documents")
    bytes: int
    words: int
    tokens: int
    single_token_words: int

    @property
    def tokens_per_word(self) -> float:
        return self.tokens / self.words if self.words else 0.0

    @property
    def bytes_per_token(self) -> float:
        return self.bytes / self.tokens if self.tokens else 0.0

    @property
    def whole_words(self) -> float:
        """Share of words that are a single token."""
        return self.single_token_words / self.words if self.words else 0.0

    def to_dict(self) -> dict:
        """JSON-ready, with the derived shares."""
        return asdict(self) | {
            "tokens_per_word": round(self.tokens_per_word, 4),
            "bytes_per_token": round(self.bytes_per_token, 4),
            "whole_words": round(self.whole_words, 4),
        }


def coverage(tokenizer: Tokenizer, documents: Iterator[str], on: str, limit: int = COVERAGE_BYTES) -> Coverage:
    """Encode up to ``limit`` bytes of ``documents``: tokens per whitespace word, bytes per token, and the
    share of words (with their leading space, as they stand in text) that are one token."""
    size = single = 0
    batch: list[str] = []
    for text in documents:
        batch.append(text)
        size += len(text.encode("utf-8"))
        if size >= limit:
            break
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    tokens = sum(len(e.ids) for e in encode(batch, add_special_tokens=False))
    counted = Counter(word for text in batch for word in text.split())
    distinct = list(counted)  # each distinct word encoded once, with the space it has in running text
    for first in range(0, len(distinct), 50_000):
        chunk = distinct[first : first + 50_000]
        encodings = encode([" " + word for word in chunk], add_special_tokens=False)
        single += sum(counted[word] for word, e in zip(chunk, encodings, strict=True) if len(e.ids) == 1)
    words = sum(counted.values())
    return Coverage(on, size, words, tokens, single)
