"""Corpora of gigabytes: kantai's stats, tokenizer, token cache and first step, each against its bare baseline.

For each size (default 1 GB) and form of corpus it generates (the bundled books, lines shuffled with a
fixed seed, repeated to the size):

- ``txt-files``: a folder of 64 MiB ``.txt`` files;
- ``txt-big``: four big ``.txt`` files;
- ``jsonl-gz``: gzipped JSON lines, ten lines to a document, eight files;

it measures, in fresh processes (peak RSS from ``wait4``):

- ``kantai stats`` MB/s against ``wc -lw`` (``zcat | wc -lw`` for gzip) over the same files;
- ``kantai tokenizer train``: seconds, peak RSS and the memory it announced, against the bare
  ``ByteLevelBPETokenizer().train(files)`` on the same bytes it trained on (the txt forms);
- the token-cache build (``open_token_cache``): MB/s and peak RSS, against a bare loop of
  ``encode_batch`` over the same lines in the same batches, keeping only the lengths;
- ``kantai train --max-steps 1``: seconds to the first step (blocks packed, model built) and peak RSS.

Peak RSS is each measured process's own high-water mark (``VmHWM`` in /proc/self/status: ``ru_maxrss``
would carry over the forking parent's RSS through exec); the stats scan's worker processes (one per
core, forked from a forkserver) are not in that figure.

Run: ``python benchmarks/bench_scale.py --sizes 1GB --json benchmarks/results/cpu-scale.json``
(``--dir`` keeps the generated corpora; ``--forms`` picks some; ``--sizes 50MB`` to try it quickly).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORMS = ("txt-files", "txt-big", "jsonl-gz")
FILE_BYTES = 64 << 20


def parse_size(text: str) -> int:
    units = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
    return int(float(text[:-2]) * units[text[-2:].upper()]) if text[-2:].upper() in units else int(text)


def shuffled_lines() -> list[str]:
    lines = [
        line
        for path in sorted((ROOT / "sample_data").glob("*.txt"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    random.Random(42).shuffle(lines)
    return lines


def generate(folder: Path, form: str, size: int) -> Path:
    """The corpus of ``form`` and about ``size`` bytes of text in ``folder`` (made once, then reused)."""
    done = folder / ".complete"
    if done.is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    lines = shuffled_lines()
    files = {"txt-files": max(1, size // FILE_BYTES), "txt-big": 4, "jsonl-gz": 8}[form]
    per_file, rng, at = size // files, random.Random(7), 0
    for index in range(files):
        written, parts = 0, []
        while written < per_file:
            if form == "jsonl-gz":
                doc = "\n".join(lines[(at + k) % len(lines)] for k in range(10))
                at += 10
                piece = json.dumps({"text": doc, "id": at}) + "\n"
            else:
                piece = lines[at % len(lines)] + "\n"
                at += 1
            parts.append(piece)
            written += len(piece.encode())
            if len(parts) >= 20_000:
                _write(folder, form, index, parts)
                parts = []
        _write(folder, form, index, parts)
        at += rng.randrange(len(lines))  # each file starts somewhere else
    done.write_text("")
    return folder


def _write(folder: Path, form: str, index: int, parts: list[str]) -> None:
    data = "".join(parts).encode()
    if form == "jsonl-gz":
        with gzip.open(folder / f"part-{index:03d}.jsonl.gz", "ab", compresslevel=3) as handle:
            handle.write(data)
    else:
        with (folder / f"part-{index:03d}.txt").open("ab") as handle:
            handle.write(data)


def timed(code: str, env: dict[str, str]) -> dict:
    """Run Python ``code`` in a fresh interpreter under a wrapper that reports its own peak RSS (VmHWM)."""
    wrapper = (
        "import sys, time, json\n"
        "_began = time.perf_counter()\n"
        f"exec(compile({code!r}, 'bench', 'exec'))\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
        "print(json.dumps({'seconds': time.perf_counter() - _began, 'peak_rss_mib': int(hwm) / 1024}), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", wrapper], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench code failed: {done.stderr[-3000:]}")
    figures = json.loads(done.stderr.strip().splitlines()[-1])
    return {
        "seconds": round(figures["seconds"], 2),
        "peak_rss_mib": round(figures["peak_rss_mib"], 1),
        "stdout": done.stdout,
    }


def kantai(args: list[str], env: dict[str, str]) -> dict:
    code = f"import sys; from kantai_tui.cli import main; rc = main({args!r}); assert rc == 0, rc"
    return timed(code, env)


def text_bytes(corpus: Path) -> int:
    total = 0
    for path in sorted(corpus.iterdir()):
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                while block := handle.read(1 << 24):
                    total += len(block)
        elif path.suffix in (".txt", ".jsonl"):
            total += path.stat().st_size
    return total


def _wc_baseline(row: dict, files: list[str], form: str, mb: float) -> None:
    reader = "zcat " if form == "jsonl-gz" else "cat "
    began = time.perf_counter()
    subprocess.run(f"{reader}{' '.join(files)} | wc -lw", shell=True, check=True, capture_output=True)
    wc_s = time.perf_counter() - began
    row["stats"]["baseline_wc"] = {"seconds": round(wc_s, 2), "mb_per_s": round(mb / wc_s, 1)}
    row["stats"]["ratio"] = round(wc_s / row["stats"]["seconds"], 3)


def run_form(corpus: Path, form: str, work: Path, env: dict[str, str], baselines: bool = True) -> dict:
    files = sorted(str(p) for p in corpus.iterdir() if not p.name.startswith("."))
    size = sum(Path(f).stat().st_size for f in files)
    text = text_bytes(corpus)
    row: dict = {"form": form, "files": len(files), "file_bytes": size, "text_bytes": text}
    mb = text / 1e6

    stats = kantai(["stats", str(corpus), "--json"], env)
    row["stats"] = {
        "seconds": stats["seconds"],
        "peak_rss_mib": stats["peak_rss_mib"],
        "mb_per_s": round(mb / stats["seconds"], 1),
    }
    if baselines:
        _wc_baseline(row, files, form, mb)
    print(f"{form}: stats {row['stats']}", flush=True)

    tok = work / "tok"
    shutil.rmtree(tok, ignore_errors=True)
    trained = kantai(["tokenizer", "train", str(corpus), "--out", str(tok), "--json"], env)
    meta = json.loads((tok / "kantai.json").read_text())
    row["tokenizer"] = {
        "seconds": trained["seconds"],
        "peak_rss_mib": trained["peak_rss_mib"],
        "announced_mib": round(meta["sample"]["memory_bytes"] / 2**20, 1),
        "share": meta["sample"]["share"],
        "coverage": meta["coverage"],
        "vocab": meta["vocab_size"],
    }
    if (
        baselines and form != "jsonl-gz"
    ):  # the bare trainer reads text files itself: the same bytes (the files it would sample)
        share = meta["sample"]["share"]
        chosen = files if share >= 1.0 else files[: max(1, round(len(files) * share))]
        bare = timed(
            "from tokenizers import ByteLevelBPETokenizer\n"
            f"ByteLevelBPETokenizer().train(files={chosen!r}, vocab_size=52000, min_frequency=2, "
            "special_tokens=['<s>','<pad>','</s>','<unk>','<mask>'], show_progress=False)",
            env,
        )
        row["tokenizer"]["baseline_bare"] = {k: bare[k] for k in ("seconds", "peak_rss_mib")} | {"files": len(chosen)}
        row["tokenizer"]["ratio"] = round(bare["seconds"] / trained["seconds"], 3)
    print(f"{form}: tokenizer {row['tokenizer']}", flush=True)

    cache = timed(
        f"from kantai_tui.core.training.data import open_token_cache\nc = open_token_cache({str(corpus)!r}, {str(tok)!r})\n"
        "print(c.lines, len(c.ids))",
        env,
    )
    documents, tokens = map(int, cache["stdout"].split())
    row["cache"] = {
        "seconds": cache["seconds"],
        "peak_rss_mib": cache["peak_rss_mib"],
        "mb_per_s": round(mb / cache["seconds"], 2),
        "documents": documents,
        "tokens": tokens,
    }
    if baselines:
        bare = timed(
            "from kantai_tui.core.tokenizer.bpe import load_tokenizer\n"
            "from kantai_tui.core.training.data import _nonempty_documents\n"
            "from kantai_tui.core.corpus.files import find_corpus_files\n"
            f"t = load_tokenizer({str(tok)!r}); t.no_truncation(); n = 0\n"
            f"for batch in _nonempty_documents(find_corpus_files({str(corpus)!r}), 'strict', 'text', lambda b: None):\n"
            "    n += sum(len(e.ids) for e in t.encode_batch(batch, add_special_tokens=False))\n"
            "print(n)",
            env,
        )
        row["cache"]["baseline_encode_batch"] = {k: bare[k] for k in ("seconds", "peak_rss_mib")} | {
            "mb_per_s": round(mb / bare["seconds"], 2)
        }
        row["cache"]["ratio"] = round(bare["seconds"] / cache["seconds"], 3)
    print(f"{form}: cache {row['cache']}", flush=True)

    runs = work / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    train_argv = ["train", str(corpus), "--tokenizer", str(tok), "--runs-dir", str(runs), "--max-steps", "1"]
    first = kantai([*train_argv, "--json", "--checkpoint-every", "1000"], env)
    row["first_step"] = {"seconds": first["seconds"], "peak_rss_mib": first["peak_rss_mib"]}
    print(f"{form}: first step {row['first_step']}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1GB", help="comma-separated (1GB, 5GB, 50MB)")
    parser.add_argument("--forms", default=",".join(FORMS))
    parser.add_argument("--dir", help="where the corpora are generated and kept (default: a temporary folder)")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--no-baselines", action="store_true", help="kantai's figures only (peak RSS at a size)")
    args = parser.parse_args()
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="kantai-scale-"))
    import torch

    results: dict = {
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs, {platform.processor() or 'CPU'}, torch {torch.__version__}",
        "command": " ".join(sys.argv),
        "date": time.strftime("%F"),
        "rows": [],
    }
    print(results["machine"], flush=True)
    for size_text in args.sizes.split(","):
        for form in args.forms.split(","):
            work = base / f"{size_text}-{form}"
            corpus = generate(work / "corpus", form, parse_size(size_text))
            env = {**os.environ, "XDG_DATA_HOME": str(work / "data"), "XDG_CACHE_HOME": str(work / "cache")}
            shutil.rmtree(work / "data", ignore_errors=True)  # a fresh token cache every time
            row = {"size": size_text, **run_form(corpus, form, work, env, not args.no_baselines)}
            results["rows"].append(row)
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=1))
    print(json.dumps(results["rows"], indent=1))


if __name__ == "__main__":
    main()
