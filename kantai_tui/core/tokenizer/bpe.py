"""Byte-level BPE tokenizer: train it as the KantaiBERT tutorial does, save it, load it, encode.

The tutorial calls ``ByteLevelBPETokenizer().train(files, vocab_size=52_000,
min_frequency=2, special_tokens=[...])`` and later loads the folder with
``RobertaTokenizer.from_pretrained``. We keep that recipe exactly, but feed the
trainer lines from our own reader (same ``\\n`` splitting as the Rust file
reader, so the vocabulary is identical) because that gives progress, the same
clear UTF-8/binary errors as ``kantai stats``, and no extra pass.

``tokenizers`` is imported inside functions: it is light, but the CLI's
``--help`` and the TUI's first frame must not wait for anything.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from kantai_tui.core.corpus.files import ERROR_MODES, find_corpus_files, require_text
from kantai_tui.core.corpus.formats import DEFAULT_TEXT_FIELD
from kantai_tui.core.corpus.lines import iter_document_pieces, iter_documents_kept, iter_piece_batches
from kantai_tui.core.corpus.sample import BUNDLED_NAME
from kantai_tui.core.corpus.stats import Distribution, fingerprint_files
from kantai_tui.core.errors import OutputError, TokenizerError
from kantai_tui.core.files import (
    commit_folder,
    fsync_dir,
    fsync_file,
    human_bytes,
    make_writable_dir,
    staging_path,
    sweep_stale,
    write_json_atomic,
)
from kantai_tui.core.paths import kantai_command
from kantai_tui.core.progress import MEASURING, MERGING, READING, SAVING, Report, silent
from kantai_tui.core.tokenizer.sample import (
    DEFAULT_SAMPLE_BYTES,
    Coverage,
    Plan,
    check_memory,
    coverage,
    keep_documents,
    plan,
    prescan,
)

if TYPE_CHECKING:
    from tokenizers import ByteLevelBPETokenizer, Tokenizer

SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
BYTE_ALPHABET = 256
MIN_VOCAB_SIZE = BYTE_ALPHABET + len(SPECIAL_TOKENS)
DEFAULT_VOCAB_SIZE = 52_000
DEFAULT_MIN_FREQUENCY = 2
MAX_LENGTH = 512
META_FILE = "kantai.json"
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", META_FILE)
EXPORTED_FILES = TOKENIZER_FILES[:-1]  # what final/ carries beside the model: what transformers reads


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced; also stored in ``kantai.json`` beside the tokenizer."""

    out_dir: str
    vocab_size: int
    requested_vocab_size: int
    min_frequency: int
    corpus: str
    corpus_fingerprint: str
    files: tuple[str, ...]
    seconds: float
    errors: str = "strict"
    text_field: str = DEFAULT_TEXT_FIELD
    sample: dict | None = None  # sample.Plan: the share of documents trained on, the memory estimate
    coverage: dict | None = None  # sample.Coverage of the vocabulary, measured after training


@dataclass(frozen=True)
class Encoded:
    """A text split into tokens: raw tokens, ids and character offsets into the text."""

    text: str
    tokens: tuple[str, ...]
    ids: tuple[int, ...]
    offsets: tuple[tuple[int, int], ...]

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)


def check_training_args(vocab_size: int, min_frequency: int) -> None:
    """Reject sizes the trainer would accept silently but that cannot make a working tokenizer."""
    if vocab_size < MIN_VOCAB_SIZE:
        raise TokenizerError(
            f"--vocab-size {vocab_size} is too small: a byte-level BPE needs at least {MIN_VOCAB_SIZE} "
            f"({BYTE_ALPHABET} byte symbols + {len(SPECIAL_TOKENS)} special tokens)"
        )
    if min_frequency < 1:
        raise TokenizerError(f"--min-frequency {min_frequency} must be at least 1")


def prepare_output_dir(out_dir: str | Path) -> Path:
    """Prove the tokenizer can be written before any long work starts, creating nothing that stays.

    A folder that does not exist yet is not made here: it appears whole when the tokenizer is saved
    (``_save``), so an interrupted training leaves no empty or half-filled folder behind.
    """
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    probe = out if out.is_dir() else out.parent
    if probe.exists() and not probe.is_dir():  # mkdir would say "File exists" of the file in the way
        raise OutputError(f"{out}: cannot write the tokenizer there ({os.strerror(errno.ENOTDIR)})")
    try:
        make_writable_dir(probe)
    except OSError as err:
        raise OutputError(f"{out}: cannot write the tokenizer there ({err.strerror or err})") from err
    return out


def missing_files(folder: Path) -> list[str]:
    """The files a run needs (to train, then to export ``final/``) that ``folder`` lacks."""
    return [name for name in EXPORTED_FILES if not (folder / name).is_file()]


def train_tokenizer(
    corpus: str | Path,
    out_dir: str | Path,
    *,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    min_frequency: int = DEFAULT_MIN_FREQUENCY,
    errors: str = "strict",
    progress: Report = silent,
    text_field: str = DEFAULT_TEXT_FIELD,
    sample: int | None = DEFAULT_SAMPLE_BYTES,
    note: Callable[[str], None] = lambda message: None,
) -> TrainResult:
    """Train the tutorial's byte-level BPE on a corpus and save it where transformers can load it.

    A corpus over ``sample`` bytes (None: no limit) is trained on a seeded sample of its documents;
    ``note`` hears, before training starts, what it is trained on and the memory that takes, and a
    training that cannot fit in the memory available is refused first (``sample.check_memory``)."""
    from tokenizers import ByteLevelBPETokenizer

    check_training_args(vocab_size, min_frequency)
    files = require_text(corpus, errors, text_field)  # a blank corpus is refused before the output folder is made
    out = prepare_output_dir(out_dir)
    total = max(1, sum(f.stat().st_size for f in files))
    scanned = prescan(iter_documents_kept(files, keep_documents(1.0), True, errors, text_field))
    chosen = plan(total, sample, scanned)
    check_memory(chosen, available_memory())
    note(plan_text(chosen))
    relay = _Relay(progress)
    read = [0]

    def on_bytes(n: int) -> None:
        read[0] += n
        relay(READING, min(read[0], total), total)

    def then_merges(batches: Iterator[list[str]]) -> Iterator[list[str]]:
        yield from batches
        relay(MERGING, 0, 0)  # the Rust trainer learns its merges once it has read everything

    relay(READING, 0, total)
    started = time.perf_counter()
    bpe = ByteLevelBPETokenizer()
    keep = keep_documents(chosen.share) if chosen.sampled else None
    lines = then_merges(iter_piece_batches(files, on_bytes, errors, text_field=text_field, keep=keep))
    interruptible(
        partial(
            bpe.train_from_iterator,
            lines,
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(SPECIAL_TOKENS),
            show_progress=False,
        ),
        tick=relay.forward,
    )
    if read[0] == 0:
        raise TokenizerError(f"{corpus}: is empty; there is nothing to train on")
    tokenizer = _finish_roberta(bpe._tokenizer)
    seconds = time.perf_counter() - started
    measured = None
    if chosen.sampled:  # how well the sample's vocabulary covers the rest (unsampled: it saw everything)
        progress(MEASURING, 0, 0)
        measured = _coverage(tokenizer, files, chosen, errors, text_field)
    result = TrainResult(
        out_dir=str(out),
        vocab_size=tokenizer.get_vocab_size(),
        requested_vocab_size=vocab_size,
        min_frequency=min_frequency,
        corpus=str(corpus),
        corpus_fingerprint=fingerprint_files(files, Path(corpus)),
        files=tuple(str(f) for f in files),
        seconds=round(seconds, 3),
        errors=errors,
        text_field=text_field,
        sample=chosen.to_dict(),
        coverage=measured.to_dict() if measured else None,
    )
    progress(SAVING, 0, 0)
    _save(tokenizer, bpe, out, result)
    return result


def plan_text(chosen: Plan) -> str:
    """The one line said before a tokenizer trains: on what, and about how much memory."""
    size = human_bytes(chosen.corpus_bytes)
    memory = human_bytes(chosen.memory_bytes)
    if not chosen.sampled:
        return f"training the tokenizer on all {size} of the corpus (about {memory} of memory)"
    return (
        f"training the tokenizer on a seeded sample of {chosen.share:.0%} of the documents (about "
        f"{human_bytes(chosen.corpus_bytes * chosen.share)} of {size}; --sample SIZE or --sample all to change), "
        f"about {memory} of memory"
    )


def available_memory() -> int:
    """Bytes of memory this process can still take (psutil's "available": free plus reclaimable cache)."""
    import psutil

    return int(psutil.virtual_memory().available)


def _coverage(tokenizer: Tokenizer, files: list[Path], chosen: Plan, errors: str, text_field: str) -> Coverage:
    """Coverage on the documents the sample left out."""
    tokenizer.no_truncation()
    try:
        left_out = iter_documents_kept(files, keep_documents(chosen.share), False, errors, text_field)
        return coverage(tokenizer, left_out, "left-out documents")
    finally:
        tokenizer.enable_truncation(MAX_LENGTH)


def _finish_roberta(tokenizer: Tokenizer) -> Tokenizer:
    """Add the tutorial's post-processing (``<s> … </s>``) and truncation at 512.

    ``<mask>`` is re-declared with ``lstrip`` as in RoBERTa's own tokenizer, so the space in
    "human <mask>." belongs to the mask instead of becoming a stray ``Ġ`` token before it
    (transformers 5 reads this from tokenizer.json, not from tokenizer_config.json).
    """
    from tokenizers import AddedToken
    from tokenizers.processors import RobertaProcessing

    tokenizer.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True)])
    cls_id, sep_id = special_id(tokenizer, "<s>"), special_id(tokenizer, "</s>")
    tokenizer.post_processor = RobertaProcessing(("</s>", sep_id), ("<s>", cls_id), trim_offsets=True)
    tokenizer.enable_truncation(MAX_LENGTH)
    return tokenizer


def ensure_token_counts(tokenizer_dir: str | Path) -> list[int] | None:
    """Per-token corpus frequencies, counted once on first use and cached in ``kantai.json``.

    Counting means encoding the whole corpus, which costs about as much as
    training, so ``train_tokenizer`` leaves it to the first browse instead of
    making every training run twice as long. None when the training corpus is gone.
    """
    folder = Path(tokenizer_dir).expanduser()
    meta = read_meta(folder) or {}
    tokenizer = load_tokenizer(folder)
    counts = meta.get("token_counts")
    if isinstance(counts, list) and len(counts) == tokenizer.get_vocab_size():
        return counts
    files = [Path(f) for f in meta.get("files", [])]
    if not files or not all(f.is_file() for f in files):
        return None
    counts, total = count_tokens(
        tokenizer, files, meta.get("errors", "strict"), meta.get("text_field", DEFAULT_TEXT_FIELD)
    )
    try:
        write_json_atomic(folder / META_FILE, {**meta, "token_counts": counts, "corpus_tokens": total})
    except OSError:
        return counts  # a read-only tokenizer folder: use the counts, just do not cache them
    return counts


def count_tokens(
    tokenizer: Tokenizer, files: list[Path], errors: str = "strict", text_field: str = DEFAULT_TEXT_FIELD
) -> tuple[list[int], int]:
    """How often each token id occurs when the corpus is encoded document by document (no special tokens)."""
    counts: Counter[int] = Counter()
    tokenizer.no_truncation()
    try:
        for batch in iter_piece_batches(files, lambda n: None, errors, text_field=text_field):
            for encoding in tokenizer.encode_batch(batch, add_special_tokens=False):
                counts.update(encoding.ids)
    finally:
        tokenizer.enable_truncation(MAX_LENGTH)
    table = [0] * tokenizer.get_vocab_size()
    for token_id, n in counts.items():
        table[token_id] = n
    return table, sum(table)


class _Relay:
    """Progress from the thread the Rust trainer reads in, handed to the main thread.

    On the main thread (``interruptible``) a report may raise to stop the work, and that must happen there,
    not inside the Rust call: reports made in the reading thread are queued, and ``forward`` (called by the
    waiting main thread every 0.1 s) passes on the last of each phase in order, or repeats the latest (so a
    phase that cannot count still shows its time, and a stop lands). Off the main thread they pass at once.
    """

    def __init__(self, progress: Report) -> None:
        self.progress = progress
        self.queue: deque[tuple[str, int, int]] = deque()
        self.latest: tuple[str, int, int] | None = None
        self.direct = threading.current_thread() is not threading.main_thread()

    def __call__(self, phase: str, done: int, total: int) -> None:
        if self.direct or threading.current_thread() is threading.main_thread():
            self.latest = (phase, done, total)
            self.progress(phase, done, total)
        else:
            self.queue.append((phase, done, total))

    def forward(self) -> None:
        drained = [self.queue.popleft() for _ in range(len(self.queue))]
        for i, report in enumerate(drained):
            if i + 1 == len(drained) or drained[i + 1][0] != report[0]:
                self.latest = report
                self.progress(*report)
        if not drained and self.latest is not None:
            self.progress(*self.latest)


def interruptible(work: Callable[[], object], tick: Callable[[], None] = lambda: None) -> None:
    """Run ``work`` so that Ctrl-C stops the command within a moment.

    The Rust BPE trainer learns its merges without running Python, so a KeyboardInterrupt waited
    seconds for it. On the main thread the work runs in a daemon thread and the main thread waits in
    short slices, calling ``tick`` in each (a progress report, which may raise to stop), where the
    interrupt is raised at once (the process then exits; the thread dies with it). Elsewhere (a TUI
    worker) it simply runs.
    """
    if threading.current_thread() is not threading.main_thread():
        work()
        return
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as err:  # handed to the waiting thread, which raises it
            failure.append(err)

    thread = threading.Thread(target=run, name="bpe-trainer", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
        tick()
    if failure:
        raise failure[0]


def _save(tokenizer: Tokenizer, bpe: ByteLevelBPETokenizer, out: Path, result: TrainResult) -> None:
    """Write every file into a folder beside ``out``, then commit it whole: a kill at any moment leaves
    the old tokenizer (or none) or the new one, never part of one (``files.commit_folder``).

    A folder that also holds other things (the user's own files, or the working directory itself) is not
    replaced as a folder: its files are renamed in one by one with ``kantai.json`` removed first and
    put back last, so a folder without it is an unfinished one (``missing_files``).
    """
    sweep_stale(out.parent)
    staging = staging_path(out)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        bpe.save_model(str(staging))  # vocab.json, merges.txt
        tokenizer.save(str(staging / "tokenizer.json"))
        _write_json(staging / "tokenizer_config.json", _transformers_config())
        _write_json(staging / META_FILE, asdict(result))
        if _replaceable(out):
            commit_folder(staging, out)
            return
        for path in staging.iterdir():
            fsync_file(path)
        (out / META_FILE).unlink(missing_ok=True)
        for name in TOKENIZER_FILES:
            os.replace(staging / name, out / name)
        fsync_dir(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replaceable(out: Path) -> bool:
    """Whether ``out`` may be replaced as a whole: absent, or holding nothing but an earlier tokenizer."""
    if not out.exists():
        return True
    if out.resolve() == Path.cwd().resolve():
        return False
    # ".staging-*": what a kill left inside the folder before tokenizers were committed whole
    return all(p.name in TOKENIZER_FILES or p.name.startswith(".staging-") for p in out.iterdir())


def _transformers_config() -> dict:
    """What ``RobertaTokenizerFast.from_pretrained`` needs to rebuild the tutorial's tokenizer.

    ``<mask>`` strips the space before it, as RoBERTa's does, so "human <mask>." works in fill-mask.
    """
    mask = {
        "content": "<mask>",
        "lstrip": True,
        "rstrip": False,
        "normalized": False,
        "single_word": False,
        "special": True,
        "__type": "AddedToken",
    }
    return {
        "tokenizer_class": "RobertaTokenizer",
        "model_max_length": MAX_LENGTH,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "sep_token": "</s>",
        "cls_token": "<s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "mask_token": mask,
        "add_prefix_space": False,
        "trim_offsets": True,
    }


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def load_tokenizer(tokenizer_dir: str | Path) -> Tokenizer:
    """Load ``tokenizer.json`` from a folder, or say clearly why the folder is not a tokenizer."""
    from tokenizers import Tokenizer

    folder = Path(tokenizer_dir).expanduser()
    path = folder / "tokenizer.json"
    if not folder.is_dir():
        raise TokenizerError(f"{folder}: no such folder")
    if not path.is_file():
        raise TokenizerError(
            f"{folder}: not a tokenizer folder (no tokenizer.json); train one with '{kantai_command('tokenizer', 'train', BUNDLED_NAME, '--out', folder)}' (or your corpus for kant)"
        )
    try:
        return Tokenizer.from_file(str(path))
    except Exception as err:  # the Rust loader raises a bare Exception for any malformed file
        raise TokenizerError(f"{path}: cannot be loaded as a tokenizer ({err})") from err


def special_id(tokenizer: Tokenizer, token: str) -> int:
    """The id of a special token (``<mask>``, ``<s>``...); a tokenizer without it is not one kantai trained."""
    found = tokenizer.token_to_id(token)
    if found is None:
        raise TokenizerError(
            f"the tokenizer has no {token} token; train one with "
            f"'{kantai_command('tokenizer', 'train', BUNDLED_NAME, '--out', 'tokenizer')}' (or your corpus for kant)"
        )
    return found


def encode(tokenizer: Tokenizer, text: str, add_special_tokens: bool = True) -> Encoded:
    """Encode a text; ``<s> … </s>`` are added as in training unless asked not to."""
    encoding = tokenizer.encode(text, add_special_tokens=add_special_tokens)
    tokens = tuple(str(tokenizer.id_to_token(i)) for i in encoding.ids)  # vocabulary entries: "<mask>" not " <mask>"
    return Encoded(text, tokens, tuple(encoding.ids), tuple((start, end) for start, end in encoding.offsets))


def read_meta(tokenizer_dir: str | Path) -> dict | None:
    """kantai's own notes on a tokenizer (training settings, token counts), if it has them."""
    path = Path(tokenizer_dir).expanduser() / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise TokenizerError(f"{path}: unreadable ({err})") from err
    if not isinstance(meta, dict):
        raise TokenizerError(f"{path}: not kantai's notes (a JSON object); delete it, the tokenizer works without it")
    return {k: v for k, v in meta.items() if k not in _META_TYPES or _meta_ok(k, v)}


# kantai.json fields readers rely on, and what each must be; a hand-edited value of another kind is dropped
_META_TYPES: dict[str, type | tuple[type, ...]] = {
    "files": list,
    "token_counts": list,
    "errors": str,
    "text_field": str,
    "seconds": (int, float),
    "requested_vocab_size": int,
    "corpus_tokens": int,
    "min_frequency": int,
}


def _meta_ok(key: str, value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, _META_TYPES[key]):
        return False
    if key == "files":
        return isinstance(value, list) and all(isinstance(f, str) for f in value)
    if key == "token_counts":
        return isinstance(value, list) and all(isinstance(c, int) and not isinstance(c, bool) for c in value)
    return key != "errors" or value in ERROR_MODES


@dataclass(frozen=True)
class TokenStats:
    """Tokens per non-empty line (with ``<s>``/``</s>``), and what a block size would cut off."""

    block_size: int
    lines: int
    tokens: int
    per_line: Distribution
    truncated_lines: int
    truncated_share: float
    tokens_lost: int

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)


def token_stats(
    tokenizer_dir: str | Path,
    corpus: str | Path,
    block_size: int = 128,
    errors: str = "strict",
    text_field: str = DEFAULT_TEXT_FIELD,
) -> TokenStats:
    """Encode each non-empty document (a text file's line) as the tutorial's line-by-line dataset does, and
    measure truncation."""
    if block_size < 3:
        raise TokenizerError(f"--block-size {block_size} must be at least 3 (room for <s>, one token, </s>)")
    tokenizer = load_tokenizer(tokenizer_dir)
    tokenizer.no_truncation()
    lengths: Counter[int] = Counter()
    batch: list[str] = []
    carried = 0  # tokens of the pieces of a long line seen so far
    files = find_corpus_files(corpus)
    for piece, ends_line in iter_document_pieces(files, lambda n: None, errors, text_field=text_field):
        if not ends_line:
            carried += len(tokenizer.encode(piece, add_special_tokens=False).ids)
        elif carried:
            lengths[carried + len(tokenizer.encode(piece.rstrip("\n")).ids)] += 1
            carried = 0
        elif piece.strip():
            batch.append(piece.rstrip("\n"))
            if len(batch) >= 1000:
                lengths.update(len(e.ids) for e in tokenizer.encode_batch(batch))
                batch = []
    lengths.update(len(e.ids) for e in tokenizer.encode_batch(batch))
    lines_total = sum(lengths.values())
    cut = {n: c for n, c in lengths.items() if n > block_size}
    return TokenStats(
        block_size=block_size,
        lines=lines_total,
        tokens=sum(n * c for n, c in lengths.items()),
        per_line=Distribution.from_counter(lengths),
        truncated_lines=sum(cut.values()),
        truncated_share=round(sum(cut.values()) / lines_total, 6) if lines_total else 0.0,
        tokens_lost=sum((n - block_size) * c for n, c in cut.items()),
    )
