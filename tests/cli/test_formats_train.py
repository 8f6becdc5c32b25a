"""Every corpus format trains end to end: a folder mixing all of them, `kantai train` on it, a model that
transformers' fill-mask pipeline loads; and a run keeps its --text-field for stats, resume and forks."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
from pathlib import Path

import pytest

from kantai_tui.cli import main
from kantai_tui.core.corpus.stats import corpus_stats

LINES = [
    line.strip()
    for line in (Path(__file__).resolve().parents[2] / "sample_data" / "critique_of_pure_reason.txt")
    .read_text(encoding="utf-8")
    .splitlines()[2000:2600]
    if line.strip()
]


def _docs(part: int, of: int = 8) -> list[str]:
    """Every ``of``-th pair of lines from ``part``, two lines to a document (so documents hold newlines)."""
    mine = LINES[part::of]
    return ["\n".join(mine[i : i + 2]) for i in range(0, len(mine), 2)]


def _jsonl(docs: list[str], field: str = "text") -> bytes:
    return "".join(json.dumps({field: d, "n": i}) + "\n" for i, d in enumerate(docs)).encode()


def mixed_corpus(folder: Path, field: str = "text") -> dict[str, int]:
    """One file per format and compression; returns each file's document count."""
    import zstandard

    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    folder.mkdir()
    files = {
        "a.jsonl": _jsonl(_docs(0), field),
        "b.json": json.dumps([{field: d} for d in _docs(1)]).encode(),
        "c.jsonl.gz": gzip.compress(_jsonl(_docs(2), field)),
        "d.ndjson.bz2": bz2.compress(_jsonl(_docs(3), field)),
        "e.jsonl.zst": zstandard.ZstdCompressor(write_checksum=True).compress(_jsonl(_docs(4), field)),
        "f.txt.xz": lzma.compress("\n".join(LINES[5::8]).encode()),
        "g.md": "\n".join(LINES[6::8]).encode(),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    pq.write_table(pa.table({field: _docs(7), "n": list(range(len(_docs(7))))}), folder / "h.parquet")
    counts = {
        name: len(_docs(i)) for i, name in enumerate(["a.jsonl", "b.json", "c.jsonl.gz", "d.ndjson.bz2", "e.jsonl.zst"])
    }
    return counts | {"f.txt.xz": len(LINES[5::8]), "g.md": len(LINES[6::8]), "h.parquet": len(_docs(7))}


def test_a_folder_of_every_format_trains_to_a_model_fill_mask_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus"
    counts = mixed_corpus(corpus)
    stats = corpus_stats(corpus)
    assert {Path(f.path).name: f.documents for f in stats.files} == counts
    runs = tmp_path / "runs"
    argv = ["train", str(corpus), "--runs-dir", str(runs), "--run", "mixed", "--max-steps", "3"]
    code = main([*argv, "--batch-size", "4", "--block-size", "32", "--eval-every", "3", "--json"])
    assert code == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[-1]["kind"] == "finished"
    from transformers import pipeline

    final = runs / "mixed" / "final"
    fill = pipeline("fill-mask", model=str(final), tokenizer=str(final))
    assert len(fill("Reason is the <mask> of principles.")) == 5


def test_a_run_keeps_its_text_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_bytes(_jsonl(_docs(0, of=1), field="body"))
    runs = tmp_path / "runs"
    argv = ["train", str(corpus), "--runs-dir", str(runs), "--run", "body", "--text-field", "body"]
    assert main([*argv, "--max-steps", "2", "--batch-size", "4", "--block-size", "32", "--json"]) == 0
    config = json.loads((runs / "body" / "run.json").read_text())
    assert config["config"]["text_field"] == "body"
    meta = json.loads((runs / "body" / "tokenizer" / "kantai.json").read_text())
    assert meta["text_field"] == "body"
    capsys.readouterr()
    code = main(["train", "--resume", "body", "--runs-dir", str(runs), "--max-steps", "4", "--json"])
    assert code == 0, capsys.readouterr().err
    code = main(["train", "--resume", "body", "--runs-dir", str(runs), "--text-field", "title"])
    assert code == 2
    assert "--text-field: a run resumes with the settings it was created with" in capsys.readouterr().err
