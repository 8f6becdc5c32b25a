"""Foundation benchmarks: corpus statistics throughput, tokenizer training, ``kantai --help`` start-up.

Each figure is printed beside a baseline measured in the same run:
- corpus statistics: MB/s on the bundled corpus repeated to ~90 MB, with ``wc -l -w -c``
  on the same file as the baseline (it counts far less, so it is a floor, not a rival);
- tokenizer training: ``kantai``'s trainer against the bare ``ByteLevelBPETokenizer().train(files)``
  call of the tutorial on the same file (target: within 10%), with the vocabularies compared;
- ``kantai --help``: wall time against ``python -c pass`` (target < 0.5 s).

Run: ``python benchmarks/bench_foundation.py [--copies 50] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kantai_tui.core.corpus.sample import bundled_corpus
from kantai_tui.core.corpus.stats import corpus_stats
from kantai_tui.core.tokenizer.bpe import SPECIAL_TOKENS, train_tokenizer


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, list[float]]:
    """Median wall time of ``repeat`` calls (and all the times)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def make_corpus(folder: Path, copies: int) -> Path:
    """The bundled books concatenated ``copies`` times into one file."""
    text = b"".join(p.read_bytes() for p in sorted(bundled_corpus().glob("*.txt")))
    path = folder / f"kant-x{copies}.txt"
    with path.open("wb") as handle:
        for _ in range(copies):
            handle.write(text)
    return path


def bench_stats(path: Path, repeat: int) -> dict:
    size = path.stat().st_size
    wc = shutil.which("wc")
    base, _ = best_of(
        repeat, lambda: subprocess.run([wc, "-l", "-w", "-c", str(path)], check=True, capture_output=True)
    )
    one, _ = best_of(repeat, lambda: corpus_stats(path, workers=1))
    auto, _ = best_of(repeat, lambda: corpus_stats(path))
    return {
        "bytes": size,
        "wc_mb_s": round(size / base / 1e6, 1),
        "kantai_1_process_mb_s": round(size / one / 1e6, 1),
        "kantai_default_mb_s": round(size / auto / 1e6, 1),
        "default_vs_wc": round(base / auto, 2),
        "target_mb_s": 50,
    }


def bench_tokenizer(path: Path, repeat: int, out: Path) -> dict:
    from tokenizers import ByteLevelBPETokenizer

    def bare() -> ByteLevelBPETokenizer:
        tok = ByteLevelBPETokenizer()
        tok.train(
            files=[str(path)],
            vocab_size=52_000,
            min_frequency=2,
            special_tokens=list(SPECIAL_TOKENS),
            show_progress=False,
        )
        return tok

    bare_s, _ = best_of(repeat, bare)
    results = []
    ours_s, _ = best_of(repeat, lambda: results.append(train_tokenizer(path, out)))
    train_only = statistics.median(r.seconds for r in results)
    same = bare().get_vocab() == json.loads((out / "vocab.json").read_text(encoding="utf-8"))
    return {
        "corpus_bytes": path.stat().st_size,
        "bare_tokenizers_s": round(bare_s, 3),
        "kantai_training_s": round(train_only, 3),
        "kantai_total_s": round(ours_s, 3),
        "training_ratio": round(train_only / bare_s, 3),
        "total_ratio": round(ours_s / bare_s, 3),
        "same_vocabulary": same,
        "target_ratio": 1.10,
    }


def bench_help(repeat: int) -> dict:
    exe = shutil.which("kantai") or str(Path(sys.executable).parent / "kantai")
    base, _ = best_of(repeat, lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))
    help_s, times = best_of(repeat, lambda: subprocess.run([exe, "--help"], check=True, capture_output=True))
    return {
        "python_startup_s": round(base, 3),
        "kantai_help_s": round(help_s, 3),
        "max_s": round(max(times), 3),
        "ratio_to_python": round(help_s / base, 2),
        "target_s": 0.5,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--copies", type=int, default=50, help="times the bundled corpus is repeated (default 50 ≈ 91 MB)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(
        f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        big = make_corpus(folder, args.copies)
        kant = make_corpus(folder, 1)
        kant10 = make_corpus(folder, 10)
        report = {
            "stats": bench_stats(big, args.repeat),
            "stats_bundled_corpus": bench_stats(kant, args.repeat),
            "tokenizer_bundled_corpus": bench_tokenizer(kant, args.repeat, folder / "tok"),
            "tokenizer_bundled_x10": bench_tokenizer(kant10, args.repeat, folder / "tok10"),
            "help": bench_help(max(5, args.repeat)),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
