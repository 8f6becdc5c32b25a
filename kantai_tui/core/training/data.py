"""Training data: tokenize once into a memory-mapped cache, split off held-out lines, build batches.

The cache holds every non-empty line's token ids (no special tokens) back to back, and where
each line starts. It is keyed by the corpus fingerprint and a hash of ``tokenizer.json``, so a
second run on the same corpus with the same tokenizer opens it in milliseconds; it is written
under a temporary name and renamed, so a crash never leaves half a cache.

Two ways to turn lines into examples (``recipe``):
- ``packed`` (default): train lines joined with ``</s>`` into one stream, cut into blocks of
  ``<s>`` + block_size-2 tokens + ``</s>``: every position is a real token, no padding.
- ``seed``: the tutorial's ``LineByLineTextDataset``: one example per line, ``<s> … </s>``
  truncated at block_size, padded per batch.

Held-out lines (a seeded 1% by default) never reach training, and are evaluated the same way
in both recipes: one line per example, truncated at 128, with masks drawn from a fixed seed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kantai_tui.core.corpus.files import find_corpus_files
from kantai_tui.core.corpus.lines import iter_line_pieces
from kantai_tui.core.corpus.stats import fingerprint_files
from kantai_tui.core.errors import BadInputError
from kantai_tui.core.paths import data_home
from kantai_tui.core.tokenizer.bpe import load_tokenizer

BOS, PAD, EOS = 0, 1, 2
EVAL_BLOCK = 128
EVAL_MASK_SEED = 20_251_125


@dataclass(frozen=True)
class TokenCache:
    """Memory-mapped ids of every non-empty line: line i is ``ids[starts[i]:starts[i + 1]]``."""

    path: Path
    ids: np.ndarray
    starts: np.ndarray

    @property
    def lines(self) -> int:
        return len(self.starts) - 1

    def line(self, index: int) -> np.ndarray:
        return self.ids[self.starts[index] : self.starts[index + 1]]


def tokenizer_hash(tokenizer_dir: Path) -> str:
    """sha256 of tokenizer.json: any change to the vocabulary or merges changes the cache key."""
    return hashlib.sha256((tokenizer_dir / "tokenizer.json").read_bytes()).hexdigest()


def open_token_cache(corpus: str | Path, tokenizer_dir: str | Path, errors: str = "strict") -> TokenCache:
    """The cache for (corpus, tokenizer), built with the Rust batch encoder on first use."""
    files = find_corpus_files(corpus)
    tok_dir = Path(tokenizer_dir).expanduser()
    key = f"{fingerprint_files(files, Path(corpus).expanduser())[:16]}-{tokenizer_hash(tok_dir)[:16]}"
    folder = data_home() / "cache" / "tokens" / key
    if not (folder / "meta.json").is_file():
        _build_cache(files, tok_dir, folder, errors)
    try:
        return _open(folder)
    except (OSError, ValueError, EOFError):  # damaged since it was built (disk, a person): it is only a cache
        shutil.rmtree(folder, ignore_errors=True)
        _build_cache(files, tok_dir, folder, errors)
        return _open(folder)


def _open(folder: Path) -> TokenCache:
    ids = np.load(folder / "ids.npy", mmap_mode="r", allow_pickle=False)
    starts = np.load(folder / "starts.npy", allow_pickle=False)
    if starts.ndim != 1 or len(starts) == 0 or int(starts[-1]) != len(ids):
        raise ValueError(f"{folder}: line starts do not match the token ids")
    return TokenCache(folder, ids, starts)


def _build_cache(files: list[Path], tokenizer_dir: Path, folder: Path, errors: str) -> None:
    tokenizer = load_tokenizer(tokenizer_dir)
    tokenizer.no_truncation()
    dtype = np.uint16 if tokenizer.get_vocab_size() <= 65_536 else np.uint32
    chunks: list[np.ndarray] = []
    lengths: list[int] = []
    for batch in _nonempty_lines(files, errors):
        for encoding in tokenizer.encode_batch(batch, add_special_tokens=False):
            chunks.append(np.asarray(encoding.ids, dtype=dtype))
            lengths.append(len(encoding.ids))
    starts = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".staging-"))
    np.save(staging / "ids.npy", np.concatenate(chunks) if chunks else np.zeros(0, dtype=dtype))
    np.save(staging / "starts.npy", starts)
    (staging / "meta.json").write_text(json.dumps({"lines": len(lengths), "tokens": int(starts[-1])}))
    try:
        os.rename(staging, folder)
    except OSError:  # another process built the same cache first: theirs is as good as ours
        shutil.rmtree(staging)


def _nonempty_lines(files: list[Path], errors: str, batch: int = 2000) -> Iterator[list[str]]:
    """Non-empty lines without their newline (the tutorial's rule); long lines are kept whole."""
    out: list[str] = []
    carry = ""
    for piece, ends_line in iter_line_pieces(files, lambda n: None, errors):
        if not ends_line:
            carry += piece
            continue
        line, carry = (carry + piece).rstrip("\n"), ""
        if line.strip():
            out.append(line)
        if len(out) >= batch:
            yield out
            out = []
    if out:
        yield out


def split_lines(lines: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and held-out lines; the same seed gives the same split."""
    if not 0 <= holdout < 0.5:
        raise BadInputError(f"--holdout {holdout} must be at least 0 and below 0.5")
    order = np.random.default_rng(seed).permutation(lines)
    held = round(lines * holdout)
    if holdout > 0 and lines >= 2:
        held = max(1, held)
    return np.sort(order[held:]), np.sort(order[:held])


def packed_blocks(cache: TokenCache, train_lines: np.ndarray, block_size: int) -> np.ndarray:
    """Memory-mapped [N, block_size]: the train lines joined by ``</s>``, cut into full ``<s> … </s>`` blocks.

    Why a file: the blocks of a large corpus never have to fit in memory (a batch copies only its
    rows), and a second run with the same split and block size opens them at once. Kept in the
    token cache's folder, keyed by the block size and a hash of the training line indices;
    written under a temporary name and renamed, so a crash never leaves half a file.
    """
    key = hashlib.sha256(np.ascontiguousarray(train_lines, dtype=np.int64).tobytes()).hexdigest()[:16]
    path = cache.path / f"packed-{block_size}-{key}.npy"
    if path.is_file():
        try:
            return _open_packed(path, block_size)
        except (OSError, ValueError, EOFError):  # damaged: it is only a cache
            path.unlink(missing_ok=True)
    _write_packed(cache, train_lines, block_size, path)
    return _open_packed(path, block_size)


def _open_packed(path: Path, block_size: int) -> np.ndarray:
    blocks = np.load(path, mmap_mode="r", allow_pickle=False)
    if blocks.ndim != 2 or blocks.shape[1] != block_size:
        raise ValueError(f"{path}: shape {blocks.shape} is not [N, {block_size}]")
    return blocks


def _write_packed(
    cache: TokenCache, train_lines: np.ndarray, block_size: int, path: Path, chunk_lines: int = 65_536
) -> None:
    """Fill the block file a chunk of lines at a time (vectorised: ``</s>`` after every line, held-out
    lines dropped by a mask), so memory stays bounded by the chunk, not the corpus."""
    body = block_size - 2
    keep = np.zeros(cache.lines, dtype=bool)
    keep[train_lines] = True
    lengths = np.diff(cache.starts) + 1  # each line and its </s>
    count = int(lengths[keep].sum()) // body
    staging = path.with_name(f".staging-{os.getpid()}-{path.name}")
    out = np.lib.format.open_memmap(staging, mode="w+", dtype=cache.ids.dtype, shape=(count, block_size))
    row, carry = 0, np.zeros(0, dtype=cache.ids.dtype)
    for first in range(0, cache.lines, chunk_lines):
        last = min(first + chunk_lines, cache.lines)
        low = cache.starts[first]
        joined = np.insert(
            np.asarray(cache.ids[low : cache.starts[last]]), cache.starts[first + 1 : last + 1] - low, EOS
        )
        stream = np.concatenate([carry, joined[np.repeat(keep[first:last], lengths[first:last])]])
        full = min(len(stream) // body, count - row)
        out[row : row + full, 0], out[row : row + full, -1] = BOS, EOS
        out[row : row + full, 1:-1] = stream[: full * body].reshape(full, body)
        row, carry = row + full, stream[full * body :]
    out.flush()
    del out
    os.replace(staging, path)


def line_example(cache: TokenCache, index: int, block_size: int) -> np.ndarray:
    """One line as ``<s> … </s>``, truncated to block_size (the tutorial's per-line example)."""
    ids = cache.line(index)[: block_size - 2]
    return np.concatenate([[BOS], ids.astype(np.int64), [EOS]])


def pad_batch(examples: list[np.ndarray]) -> np.ndarray:
    """Pad to the longest example of the batch with ``<pad>`` (padding per batch, as the collator does)."""
    width = max(len(e) for e in examples)
    batch = np.full((len(examples), width), PAD, dtype=np.int64)
    for row, example in enumerate(examples):
        batch[row, : len(example)] = example
    return batch
