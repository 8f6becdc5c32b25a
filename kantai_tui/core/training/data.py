"""Training data: tokenize once into a memory-mapped cache, split off held-out documents, build batches.

The cache holds every non-empty document's token ids (no special tokens) back to back, and where
each starts; a document is a line of a text file or a record of a JSON-lines or parquet file
(``corpus/lines.py``). It is keyed by the corpus fingerprint, a hash of ``tokenizer.json`` and the
text field, so a second run on the same corpus with the same tokenizer opens it in milliseconds; it
is appended to disk as it is encoded (memory holds one batch), under a temporary name, and renamed,
so a crash never leaves half a cache.

Two ways to turn documents into examples (``recipe``):
- ``packed`` (default): train documents joined with ``</s>`` into one stream, cut into blocks of
  ``<s>`` + block_size-2 tokens + ``</s>``: every position is a real token, no padding.
- ``seed``: the tutorial's ``LineByLineTextDataset``: one example per line, ``<s> … </s>``
  truncated at block_size, padded per batch.

Held-out documents (a seeded 1% by default, at most ``MAX_HELDOUT``) never reach training, and are
evaluated the same way in both recipes: one per example, truncated at 128, with masks drawn from a
fixed seed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import chain
from pathlib import Path

import numpy as np

from kantai_tui.core.corpus.files import find_corpus_files, sources
from kantai_tui.core.corpus.formats import DEFAULT_TEXT_FIELD, TEXT
from kantai_tui.core.corpus.lines import iter_whole_documents
from kantai_tui.core.corpus.stats import fingerprint_files
from kantai_tui.core.errors import BadInputError
from kantai_tui.core.paths import data_home
from kantai_tui.core.progress import ENCODING, PACKING, Report, silent
from kantai_tui.core.tokenizer.bpe import load_tokenizer

BOS, PAD, EOS = 0, 1, 2
EVAL_BLOCK = 128
EVAL_MASK_SEED = 20_251_125
# held-out documents at most: evaluation costs the same on 5 GB as on 50 MB (1% of the Kant books is 275)
MAX_HELDOUT = 2_000
# up to this many documents the split is a seeded permutation (as every run so far was split); above it, the
# held-out ones are drawn alone and the training ones are a uint32 range less them (a third of the memory)
EXACT_SPLIT_MAX = 10_000_000


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
        """Document ``index``'s ids, read from the files (``read_slice``): a fault through the mapping reads
        ahead and keeps 100+ KB resident, so 2,000 held-out documents would hold 200 MB of a big cache."""
        low, high = (int(n) for n in read_slice(self.starts, index, index + 2))
        return read_slice(self.ids, low, high)


def token_counts(cache: TokenCache, vocab: int, chunk: int = 1 << 24) -> np.ndarray:
    """[vocab] occurrences of each id: counted as the cache was built (counts.npy), else here a chunk at a
    time (a cache from before), so neither way holds all the ids in memory."""
    saved = cache.path / "counts.npy"
    if saved.is_file():
        counts = np.load(saved, allow_pickle=False)
        if counts.shape == (vocab,):
            return counts
    counts = np.zeros(vocab, dtype=np.int64)
    for first in range(0, len(cache.ids), chunk):
        counts += np.bincount(np.asarray(cache.ids[first : first + chunk]), minlength=vocab)[:vocab]
    return counts


def tokenizer_hash(tokenizer_dir: Path) -> str:
    """sha256 of tokenizer.json: any change to the vocabulary or merges changes the cache key."""
    return hashlib.sha256((tokenizer_dir / "tokenizer.json").read_bytes()).hexdigest()


CACHE_VERSION = 2  # 2: documents of every format, appended to disk as encoded (1: text lines, built in memory)
ENCODE_BATCH_BYTES = 2 << 20  # characters per call of the Rust batch encoder (its threads share them): about
# half a second of work on 2 cores, so a stop (a report that raises) lands within a second


def cache_key(files: list[Path], root: Path, tok_dir: Path, text_field: str) -> str:
    """What a token cache depends on: the files' bytes and names, the tokenizer, the reader's version and,
    where a file has records, the field their text is read from."""
    records = any(source.format != TEXT for source in sources(files))
    parts = (str(CACHE_VERSION), fingerprint_files(files, root), tokenizer_hash(tok_dir), text_field if records else "")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def open_token_cache(
    corpus: str | Path,
    tokenizer_dir: str | Path,
    errors: str = "strict",
    text_field: str = DEFAULT_TEXT_FIELD,
    progress: Report = silent,
) -> TokenCache:
    """The cache for (corpus, tokenizer), built with the Rust batch encoder on first use; ``progress`` hears
    the bytes encoded (a batch at a time, about a second apart) and may stop the build by raising."""
    files = find_corpus_files(corpus)
    tok_dir = Path(tokenizer_dir).expanduser()
    folder = data_home() / "cache" / "tokens" / cache_key(files, Path(corpus).expanduser(), tok_dir, text_field)
    build = partial(_build_cache, files, tok_dir, folder, errors, text_field, progress)
    if not (folder / "meta.json").is_file():
        build()
    try:
        return _open(folder)
    except (OSError, ValueError, EOFError):  # damaged since it was built (disk, a person): it is only a cache
        shutil.rmtree(folder, ignore_errors=True)
        build()
        return _open(folder)


def _open(folder: Path) -> TokenCache:
    ids = np.load(folder / "ids.npy", mmap_mode="r", allow_pickle=False)
    starts = np.load(folder / "starts.npy", mmap_mode="r", allow_pickle=False)
    if starts.ndim != 1 or len(starts) == 0 or int(starts[-1]) != len(ids):
        raise ValueError(f"{folder}: document starts do not match the token ids")
    return TokenCache(folder, ids, starts)


class _Appender:
    """A ``.npy`` file written as its rows arrive: a header-sized gap first, the header last, so memory holds
    one chunk whatever the corpus (numpy's header for a 1-D or 2-D array of any length is 128 bytes)."""

    HEADER = 128

    def __init__(self, path: Path, dtype: type, row: tuple[int, ...] = ()) -> None:
        self.dtype = np.dtype(dtype)
        self.row = row  # the shape of one item: () for 1-D, (block_size,) for packed blocks
        self.count = 0
        self.handle = path.open("wb")
        self.handle.write(b"\0" * self.HEADER)

    def append(self, values: np.ndarray) -> None:
        self.handle.write(np.ascontiguousarray(values, dtype=self.dtype).tobytes())
        self.count += len(values)

    def close(self) -> None:
        """Write the header for the final length, flush and fsync."""
        header = io.BytesIO()
        descr = np.lib.format.dtype_to_descr(self.dtype)
        shape = (self.count, *self.row)
        np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
        assert len(header.getvalue()) == self.HEADER
        self.handle.seek(0)
        self.handle.write(header.getvalue())
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()


def _build_cache(
    files: list[Path], tokenizer_dir: Path, folder: Path, errors: str, text_field: str, progress: Report
) -> None:
    """Encode every document into ``ids.npy`` and ``starts.npy`` in a staging folder, a batch at a time, then
    rename it in whole; an interrupt or error removes the staging folder, so a cache is whole or absent."""
    tokenizer = load_tokenizer(tokenizer_dir)
    tokenizer.no_truncation()
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)  # no offsets: faster (tokenizers 0.21+)
    dtype = np.uint16 if tokenizer.get_vocab_size() <= 65_536 else np.uint32
    total, done = max(1, sum(f.stat().st_size for f in files)), 0

    def on_bytes(n: int) -> None:
        nonlocal done
        done += n

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".staging-"))
    try:
        ids, starts = _Appender(staging / "ids.npy", dtype), _Appender(staging / "starts.npy", np.int64)
        starts.append(np.zeros(1, dtype=np.int64))
        counts = np.zeros(tokenizer.get_vocab_size(), dtype=np.int64)
        for batch in _nonempty_documents(files, errors, text_field, on_bytes):
            token_lists = [encoding.ids for encoding in encode(batch, add_special_tokens=False)]
            lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
            flat = np.fromiter(chain.from_iterable(token_lists), dtype=dtype, count=int(lengths.sum()))
            counts += np.bincount(flat, minlength=len(counts))
            ids.append(flat)
            starts.append(ids.count - int(lengths.sum()) + np.cumsum(lengths))
            progress(ENCODING, min(done, total), total)
        ids.close()
        starts.close()
        np.save(staging / "counts.npy", counts)
        (staging / "meta.json").write_text(
            json.dumps({"version": CACHE_VERSION, "documents": starts.count - 1, "tokens": ids.count})
        )
        try:
            os.rename(staging, folder)
        except OSError:  # another process built the same cache first: theirs is as good as ours
            shutil.rmtree(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _nonempty_documents(
    files: list[Path], errors: str, text_field: str, on_bytes: Callable[[int], None]
) -> Iterator[list[str]]:
    """Non-empty documents (a text file's lines without their newline: the tutorial's rule), batched by
    size; long ones are kept whole."""
    out: list[str] = []
    size = 0
    for whole in iter_whole_documents(files, on_bytes, errors, text_field):
        document = whole.rstrip("\n")
        if document.strip():
            out.append(document)
            size += len(document)
        if size >= ENCODE_BATCH_BYTES:
            yield out
            out, size = [], 0
    if out:
        yield out


def split_lines(lines: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and held-out documents (``holdout`` of them, at most MAX_HELDOUT); the same seed
    gives the same split."""
    if not 0 <= holdout < 0.5:
        raise BadInputError(f"--holdout {holdout} must be at least 0 and below 0.5")
    held = min(round(lines * holdout), MAX_HELDOUT)
    if holdout > 0 and lines >= 2:
        held = max(1, held)
    if lines > EXACT_SPLIT_MAX:  # a permutation would take 16 bytes a document (1.2 GB for 80 M lines)
        chosen = np.sort(np.random.default_rng(seed).choice(lines, held, replace=False))
        return np.delete(np.arange(lines, dtype=np.uint32 if lines < 2**32 else np.int64), chosen), chosen
    order = np.random.default_rng(seed).permutation(lines)
    return np.sort(order[held:]), np.sort(order[:held])


def packed_blocks(cache: TokenCache, train_lines: np.ndarray, block_size: int, progress: Report = silent) -> np.ndarray:
    """Memory-mapped [N, block_size]: the train lines joined by ``</s>``, cut into full ``<s> … </s>`` blocks.

    Why a file: the blocks of a large corpus never have to fit in memory (a batch copies only its
    rows), and a second run with the same split and block size opens them at once. Kept in the
    token cache's folder, keyed by the block size and a hash of the training line indices;
    written under a temporary name and renamed, so a crash never leaves half a file.
    """
    digest = hashlib.sha256()  # of the indices as int64, a chunk at a time (not a copy of them all)
    for first in range(0, len(train_lines), 1 << 20):
        digest.update(np.ascontiguousarray(train_lines[first : first + (1 << 20)], dtype=np.int64).tobytes())
    key = digest.hexdigest()[:16]
    path = cache.path / f"packed-{block_size}-{key}.npy"
    if path.is_file():
        try:
            return _open_packed(path, block_size)
        except (OSError, ValueError, EOFError):  # damaged: it is only a cache
            path.unlink(missing_ok=True)
    _write_packed(cache, train_lines, block_size, path, progress)
    return _open_packed(path, block_size)


def _open_packed(path: Path, block_size: int) -> np.ndarray:
    blocks = np.load(path, mmap_mode="r", allow_pickle=False)
    if blocks.ndim != 2 or blocks.shape[1] != block_size:
        raise ValueError(f"{path}: shape {blocks.shape} is not [N, {block_size}]")
    return blocks


def _write_packed(
    cache: TokenCache,
    train_lines: np.ndarray,
    block_size: int,
    path: Path,
    progress: Report = silent,
    chunk_lines: int = 65_536,
) -> None:
    """Fill the block file a chunk of lines at a time (vectorised: ``</s>`` after every line, held-out
    lines dropped by a mask), so memory stays bounded by the chunk, not the corpus."""
    body = block_size - 2
    keep = np.zeros(cache.lines, dtype=bool)
    keep[train_lines] = True
    chunks = range(0, cache.lines, chunk_lines)
    staging = path.with_name(f".staging-{os.getpid()}-{path.name}")
    try:
        out = _Appender(staging, cache.ids.dtype.type, row=(block_size,))
        count = sum(
            int(_lengths(cache, first, chunk_lines)[keep[first : first + chunk_lines]].sum()) for first in chunks
        )
        count //= body
        carry = np.zeros(0, dtype=cache.ids.dtype)
        for first in chunks:
            last = min(first + chunk_lines, cache.lines)
            starts = read_slice(cache.starts, first, last + 1)
            low = int(starts[0])
            joined = np.insert(read_slice(cache.ids, low, int(starts[-1])), starts[1:] - low, EOS)
            stream = np.concatenate([carry, joined[np.repeat(keep[first:last], np.diff(starts) + 1)]])
            full = min(len(stream) // body, count - out.count)
            rows = np.empty((full, block_size), dtype=cache.ids.dtype)
            rows[:, 0], rows[:, -1] = BOS, EOS
            rows[:, 1:-1] = stream[: full * body].reshape(full, body)
            out.append(rows)
            carry = stream[full * body :]
            progress(PACKING, out.count, count)
        out.close()
        os.replace(staging, path)
    except BaseException:  # an interrupt (Ctrl-C, kantai stop) or an error: no half-written block file stays
        staging.unlink(missing_ok=True)
        raise


def read_slice(array: np.ndarray, low: int, high: int) -> np.ndarray:
    """``array[low:high]`` of a memory-mapped .npy, read from its file rather than through the mapping: a pass
    over a cache of gigabytes then leaves no mapped pages behind in this process (its RSS stays flat)."""
    if not isinstance(array, np.memmap) or array.filename is None or array.ndim != 1:
        return np.asarray(array[low:high])
    high = min(high, len(array))
    size = array.dtype.itemsize
    return np.fromfile(array.filename, dtype=array.dtype, count=max(high - low, 0), offset=array.offset + low * size)


def read_rows(blocks: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``blocks[rows]`` of a memory-mapped [N, T] .npy, each row read with one ``pread`` rather than through the
    mapping, so an epoch over gigabytes of blocks leaves no mapped pages behind in the trainer (flat RSS)."""
    if not isinstance(blocks, np.memmap) or blocks.filename is None:
        return np.asarray(blocks[rows])
    width = blocks.shape[1] * blocks.dtype.itemsize
    out = np.empty((len(rows), blocks.shape[1]), dtype=blocks.dtype)
    fd = os.open(blocks.filename, os.O_RDONLY)
    try:
        for i, row in enumerate(rows):
            out[i] = np.frombuffer(os.pread(fd, width, blocks.offset + int(row) * width), dtype=blocks.dtype)
    finally:
        os.close(fd)
    return out


def _lengths(cache: TokenCache, first: int, count: int) -> np.ndarray:
    """Token counts of documents [first, first + count), each with its ``</s>``."""
    return np.diff(read_slice(cache.starts, first, first + count + 1)) + 1


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
