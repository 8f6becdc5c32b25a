"""Corpus formats: JSON lines, JSON arrays, parquet, compressed text, folders mixing them, and each bad record.

Every file here is made by the test itself; the expected documents are written down beside it, so a
reader that loses, splits or merges a document fails.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
from pathlib import Path

import pytest

from kantai_tui.core.corpus.files import find_corpus_files, require_text
from kantai_tui.core.corpus.formats import JSONL, PARQUET, TEXT, sniff
from kantai_tui.core.corpus.lines import iter_document_pieces
from kantai_tui.core.corpus.stats import corpus_stats
from kantai_tui.core.errors import CorpusError

DOCS = ["Reason is the faculty of principles.\nIt judges.", "Experience teaches us what is.", "Human thinking."]


def documents(path: Path, text_field: str = "text") -> list[str]:
    """The whole documents the reader gives (pieces joined)."""
    out, carry = [], ""
    for piece, ends in iter_document_pieces(find_corpus_files(path), lambda n: None, text_field=text_field):
        carry += piece
        if ends:
            out.append(carry)
            carry = ""
    return out


def jsonl(docs: list[str] = DOCS, field: str = "text") -> bytes:
    return "".join(json.dumps({"id": i, field: d}) + "\n" for i, d in enumerate(docs)).encode()


def zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(write_checksum=True).compress(data)  # as the zstd command writes it


def parquet(path: Path, docs: list[str | None] = DOCS, field: str = "text") -> Path:  # type: ignore[assignment]
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"id": list(range(len(docs))), field: docs}), path)
    return path


COMPRESSORS = {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress, "zstd": zstd}
SUFFIX = {"gzip": ".gz", "bzip2": ".bz2", "xz": ".xz", "zstd": ".zst"}


def test_a_json_line_is_one_document_with_its_newlines(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_bytes(jsonl() + b"\n\n")  # blank lines between or after records are not records
    assert documents(path) == DOCS
    assert sniff(path).format == JSONL


@pytest.mark.parametrize("kind", list(COMPRESSORS))
def test_compression_is_told_by_content_whatever_the_name(tmp_path: Path, kind: str) -> None:
    named = tmp_path / f"docs.jsonl{SUFFIX[kind]}"
    named.write_bytes(COMPRESSORS[kind](jsonl()))
    assert documents(named) == DOCS
    unnamed = tmp_path / "lines.txt"  # a compressed file with a plain name is still decompressed
    unnamed.write_bytes(COMPRESSORS[kind](b"first line\n\nsecond line\n"))
    assert documents(unnamed) == ["first line\n", "\n", "second line\n"]
    assert sniff(unnamed) == type(sniff(unnamed))(unnamed, TEXT, kind)


def test_concatenated_gzip_members_are_one_stream(tmp_path: Path) -> None:
    path = tmp_path / "two.txt.gz"
    path.write_bytes(gzip.compress(b"one\n") + gzip.compress(b"two\n"))  # what `cat a.gz b.gz` makes
    assert documents(path) == ["one\n", "two\n"]


def test_a_json_array_of_records_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "docs.json"
    path.write_text(json.dumps([{"text": d} for d in DOCS], indent=2))
    assert documents(path) == DOCS


def test_another_text_field(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_bytes(jsonl(field="body"))
    assert documents(path, text_field="body") == DOCS


def test_parquet_rows_are_documents(tmp_path: Path) -> None:
    path = parquet(tmp_path / "shard.parquet")
    assert documents(path) == DOCS
    renamed = tmp_path / "shard.bin"  # told by its first bytes, PAR1
    renamed.write_bytes(path.read_bytes())
    assert sniff(renamed).format == PARQUET


def test_a_folder_mixing_formats_counts_documents_and_lines(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(jsonl())
    (tmp_path / "b.txt.gz").write_bytes(gzip.compress(b"a line\n\nanother line\n"))
    (tmp_path / "c.md").write_text("# Title\n")
    (tmp_path / "notes.csv").write_text("not,a,corpus,file\n")
    stats = corpus_stats(tmp_path)
    assert [Path(f.path).name for f in stats.files] == ["a.jsonl", "b.txt.gz", "c.md"]
    assert [f.documents for f in stats.files] == [3, 2, 1]
    assert [f.lines for f in stats.files] == [4, 3, 1]  # the first record holds two lines
    assert [f.format for f in stats.files] == ["JSON lines", "text · gzip", "text"]
    assert stats.documents == 6 and stats.bytes == sum(
        (tmp_path / n).stat().st_size for n in ("a.jsonl", "b.txt.gz", "c.md")
    )


def test_kantai_folders_and_hidden_files_inside_a_corpus_are_not_read(tmp_path: Path) -> None:
    (tmp_path / "book.txt").write_text("text\n")
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "tokenizer.json").write_text("{}")
    (tmp_path / "tok" / "vocab.json").write_text("{}")
    (tmp_path / "runs" / "r1").mkdir(parents=True)
    (tmp_path / "runs" / "r1" / "run.json").write_text("{}")
    (tmp_path / "runs" / "r1" / "metrics.jsonl").write_text('{"kind": "step"}\n')
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "notes.txt").write_text("hidden\n")
    assert [p.name for p in find_corpus_files(tmp_path)] == ["book.txt"]


def test_a_blank_record_corpus_is_only_whitespace(tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_bytes(jsonl(["  ", "\n"]))
    with pytest.raises(CorpusError, match="holds only whitespace"):
        require_text(path)


BAD_RECORDS = [
    ("a.jsonl", b'{"text": "fine"}\n{"text": "cut\n', r"a\.jsonl: line 2: not valid JSON \(Unterminated string"),
    (
        "b.jsonl",
        b'{"text": "fine"}\n\n{"body": "x", "id": 3}\n',
        r"b\.jsonl: line 3: no 'text' field \(the record has: body, id\); pass --text-field with one of them",
    ),
    ("c.jsonl", b'["a list"]\n', r"c\.jsonl: line 1: a JSON array, not an object with a 'text' field"),
    ("d.jsonl", b'{"text": null}\n', r"d\.jsonl: line 1: the 'text' field is a JSON null, not a string"),
    ("e.jsonl", b'{"text": "caf\xe9"}\n', r"e\.jsonl: line 1: not valid UTF-8 at byte 13 of the line \(byte 0xe9\)"),
    ("g.json", b'[{"text": "ok"}, {"txt": "no"}]', r"g\.json: record 2: no 'text' field \(the record has: txt\)"),
]


@pytest.mark.parametrize(("name", "data", "message"), BAD_RECORDS, ids=[r[0] for r in BAD_RECORDS])
def test_each_bad_record_names_the_file_and_the_line(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(CorpusError, match=message):
        documents(path)
    with pytest.raises(CorpusError, match=message):
        corpus_stats(path)


def test_a_json_file_that_is_one_object_is_one_record(tmp_path: Path) -> None:
    """A .json file starting with '{' is read as JSON lines: one record on one line is a document."""
    path = tmp_path / "one.json"
    path.write_bytes(b'{"text": "one object"}')
    assert documents(path) == ["one object"]


@pytest.mark.parametrize("kind", list(COMPRESSORS))
def test_a_cut_short_stream_says_so_with_its_offsets(tmp_path: Path, kind: str) -> None:
    whole = COMPRESSORS[kind](b"Reason is the faculty of principles.\n" * 2000)
    path = tmp_path / f"books.txt{SUFFIX[kind]}"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(
        CorpusError,
        match=rf"books\.txt{SUFFIX[kind]}: the {kind} stream is cut short: it ends at byte {len(whole) // 2:,} of the file, after [\d,]+ bytes of content, before its end marker; the file is incomplete",
    ):
        corpus_stats(path)


@pytest.mark.parametrize("kind", list(COMPRESSORS))
def test_a_damaged_stream_is_one_line(tmp_path: Path, kind: str) -> None:
    whole = bytearray(COMPRESSORS[kind](b"Reason is the faculty of principles.\n" * 2000))
    middle = len(whole) // 2
    whole[middle : middle + 16] = b"\xff" * 16
    path = tmp_path / f"books.jsonl{SUFFIX[kind]}"
    path.write_bytes(bytes(whole))
    with pytest.raises(
        CorpusError,
        match=rf"books\.jsonl{SUFFIX[kind]}: (not a valid {kind} stream near byte [\d,]+ of the file|line 1: not valid JSON)",
    ):
        documents(path)


def test_parquet_without_the_column_lists_the_columns(tmp_path: Path) -> None:
    path = parquet(tmp_path / "shard.parquet", field="content")
    with pytest.raises(
        CorpusError,
        match=r"shard\.parquet: no column 'text' \(the file has: id, content\); pass --text-field with one of them",
    ):
        documents(path)
    assert documents(path, text_field="content") == DOCS
    with pytest.raises(CorpusError, match=r"shard\.parquet: column 'id' holds int64, not text"):
        documents(path, text_field="id")


def test_a_null_parquet_text_names_its_row(tmp_path: Path) -> None:
    path = parquet(tmp_path / "shard.parquet", docs=["fine", None, "fine"])
    with pytest.raises(CorpusError, match=r"shard\.parquet: row 2: the 'text' column is null, not text"):
        documents(path)


def test_a_damaged_parquet_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "shard.parquet"
    path.write_bytes(b"PAR1" + b"\0" * 100)
    with pytest.raises(CorpusError, match=r"shard\.parquet: not a readable parquet file"):
        documents(path)


def test_parquet_without_pyarrow_names_the_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    path = parquet(tmp_path / "shard.parquet")
    real_import = builtins.__import__

    def no_pyarrow(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("pyarrow"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(
        CorpusError, match=r"shard\.parquet: a parquet file; reading parquet needs pyarrow: pip install pyarrow$"
    ):
        documents(path)


def test_a_zip_archive_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "books.txt"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 20)
    with pytest.raises(
        CorpusError, match=r"books\.txt: a zip archive, not text; extract its files and pass their folder"
    ):
        corpus_stats(path)
