"""The vocabulary as a table to browse: readable forms, byte lengths, corpus frequency, merge rank.

Byte-level BPE stores every byte as a printable stand-in character (GPT-2's
``bytes_to_unicode``): a leading space is ``Ġ``, a newline ``Ċ``. People read
``ĠCritique`` badly, so each entry also carries a readable form in which a
leading space is shown as ``␣`` and bytes that are not whole UTF-8 characters
are shown as ``<0xE2>``. Searches use smart case (case-insensitive unless the
query has a capital letter), like ripgrep and vim.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from kantai_tui.core.corpus.sample import BUNDLED_NAME
from kantai_tui.core.errors import BadInputError, TokenizerError
from kantai_tui.core.paths import kantai_command
from kantai_tui.core.tokenizer.bpe import SPECIAL_TOKENS, ensure_token_counts

SEARCH_MODES = ("substring", "prefix", "regex")
SORT_KEYS = ("id", "frequency", "bytes")
_VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


@lru_cache(maxsize=1)
def byte_decoder() -> dict[str, int]:
    """GPT-2's printable stand-in character -> byte value (the inverse of ``bytes_to_unicode``)."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {chr(code): byte for byte, code in zip(printable, codes, strict=True)}


def token_bytes(token: str) -> bytes:
    """The bytes a byte-level token stands for (special tokens stand for their own text)."""
    table = byte_decoder()
    if token in SPECIAL_TOKENS or any(ch not in table for ch in token):
        return token.encode("utf-8")
    return bytes(table[ch] for ch in token)


def readable(raw: bytes) -> str:
    """Text of a token with whitespace made visible and broken UTF-8 shown as <0xNN>."""
    text = raw.decode("utf-8", errors="backslashreplace")
    text = re.sub(r"\\x([0-9a-f]{2})", lambda m: f"<0x{m.group(1).upper()}>", text)
    return "".join(_VISIBLE.get(ch, ch) for ch in text)


@dataclass(frozen=True)
class VocabEntry:
    """One row of the vocabulary browser."""

    id: int
    token: str
    readable: str
    text: str
    byte_length: int
    frequency: int | None
    merge_rank: int | None
    special: bool

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)


class Vocabulary:
    """All entries of a tokenizer folder, searchable; built once, searched many times."""

    def __init__(self, entries: list[VocabEntry], has_frequencies: bool) -> None:
        self.entries = entries
        self.has_frequencies = has_frequencies
        self._folded = [e.text.casefold() for e in entries]

    def __len__(self) -> int:
        return len(self.entries)

    @classmethod
    def load(cls, tokenizer_dir: str | Path) -> Vocabulary:
        """Read vocab.json and merges.txt; corpus frequencies come from (or are first counted into) kantai.json."""
        folder = Path(tokenizer_dir).expanduser()
        vocab = _read_vocab(folder)
        ranks = _read_merge_ranks(folder)
        counts = ensure_token_counts(folder)
        has_counts = isinstance(counts, list) and len(counts) == len(vocab)
        entries = [
            _entry(i, tok, ranks, counts if has_counts else None)
            for tok, i in sorted(vocab.items(), key=lambda kv: kv[1])
        ]
        return cls(entries, has_counts)

    def search(self, query: str, mode: str = "substring", sort: str = "id") -> list[VocabEntry]:
        """Entries whose text (or raw token) matches; ``␣`` in a query stands for a space."""
        if mode not in SEARCH_MODES:
            raise BadInputError(f"search mode must be one of {', '.join(SEARCH_MODES)}, not {mode!r}")
        if sort not in SORT_KEYS:
            raise BadInputError(f"sort must be one of {', '.join(SORT_KEYS)}, not {sort!r}")
        matches = self.entries if not query else [self.entries[i] for i in self._matching(query, mode)]
        return _sorted(matches, sort)

    def _matching(self, query: str, mode: str) -> list[int]:
        query = query.replace("␣", " ")
        fold = query == query.casefold()
        texts = self._folded if fold else [e.text for e in self.entries]
        if mode == "regex":
            try:
                pattern = re.compile(query, re.IGNORECASE if fold else 0)
            except re.error as err:
                raise BadInputError(f"invalid regular expression {query!r}: {err}") from None
            return [i for i, e in enumerate(self.entries) if pattern.search(e.text) or pattern.search(e.token)]
        if mode == "prefix":
            return [i for i, t in enumerate(texts) if t.startswith(query) or self.entries[i].token.startswith(query)]
        return [i for i, t in enumerate(texts) if query in t or query in self.entries[i].token]


def _sorted(entries: list[VocabEntry], sort: str) -> list[VocabEntry]:
    if sort == "frequency":
        return sorted(entries, key=lambda e: -(e.frequency or 0))
    if sort == "bytes":
        return sorted(entries, key=lambda e: (-e.byte_length, e.id))
    return list(entries)


def _entry(token_id: int, token: str, ranks: dict[str, int], counts: list[int] | None) -> VocabEntry:
    raw = token_bytes(token)
    special = token in SPECIAL_TOKENS
    return VocabEntry(
        id=token_id,
        token=token,
        readable=token if special else readable(raw),
        text=raw.decode("utf-8", errors="replace"),
        byte_length=len(raw),
        frequency=counts[token_id] if counts is not None else None,
        merge_rank=ranks.get(token),
        special=special,
    )


def _read_vocab(folder: Path) -> dict[str, int]:
    path = folder / "vocab.json"
    if not path.is_file():
        raise TokenizerError(
            f"{folder}: not a tokenizer folder (no vocab.json); train one with '{kantai_command('tokenizer', 'train', BUNDLED_NAME, '--out', folder)}' (or your corpus for kant)"
        )
    try:
        vocab = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise TokenizerError(f"{path}: unreadable ({err})") from err
    if not isinstance(vocab, dict):
        raise TokenizerError(f"{path}: expected a JSON object of token -> id")
    return vocab


def _read_merge_ranks(folder: Path) -> dict[str, int]:
    """Merged token -> its line in merges.txt (0 = the first, most frequent pair)."""
    path = folder / "merges.txt"
    if not path.is_file():
        return {}
    ranks: dict[str, int] = {}
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#version")]
    for rank, line in enumerate(lines):
        left, _, right = line.partition(" ")
        ranks.setdefault(left + right, rank)
    return ranks
