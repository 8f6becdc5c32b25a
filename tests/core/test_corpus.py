"""Corpus statistics against hand-counted files, Unix tools, and the provenance table."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kantai_tui.core.corpus import files as textio_mod
from kantai_tui.core.corpus import scan as scan_mod
from kantai_tui.core.corpus import stats as corpus_mod
from kantai_tui.core.corpus.stats import Distribution, corpus_stats
from kantai_tui.core.errors import CorpusError, NotUtf8Error


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def test_hand_counted_file(tmp_path: Path) -> None:
    text = "The cat sat.\n\n   \nthe Cat sat!\nThe cat sat.\nunfinished line"
    stats = corpus_stats(write(tmp_path / "a.txt", text), top_n=3)
    assert stats.bytes == len(text.encode())
    assert stats.lines == 6  # five newlines plus an unterminated last line
    assert stats.nonempty_lines == 4
    assert stats.words == 11
    assert stats.characters == len(text)
    assert stats.top_words == (("the", 3), ("cat", 3), ("sat", 3))
    assert stats.unique_words == 5  # the cat sat unfinished line
    assert stats.duplicate_lines == 1
    assert stats.top_duplicates == (("The cat sat.", 2),)
    assert stats.fingerprint == hashlib.sha256(text.encode()).hexdigest()
    assert (stats.line_length.min, stats.line_length.max) == (12, 15)


def test_bundled_corpus_matches_provenance_and_unix_tools(sample_dir: Path) -> None:
    stats = corpus_stats(sample_dir)
    files = sorted(sample_dir.glob("*.txt"))
    grep = subprocess.run(["grep", "-c", "[^[:space:]]", *map(str, files)], capture_output=True, text=True, check=True)
    assert stats.nonempty_lines == sum(int(line.rsplit(":", 1)[1]) for line in grep.stdout.splitlines()) == 27_540
    wc = subprocess.run(["wc", "-l", "-w", "-c", *map(str, files)], capture_output=True, text=True, check=True)
    lines, words, size = (int(x) for x in wc.stdout.splitlines()[-1].split()[:3])
    assert (stats.lines, stats.words, stats.bytes) == (lines, words, size) == (30_253, 302_714, 1_820_953)
    by_name = {Path(f.path).name: f for f in stats.files}
    assert (
        by_name["critique_of_pure_reason.txt"].sha256
        == "36104674b8e00cd74a0ab0fd1416cf34f68faa2932fb00c23cc9cf9f93f63f32"
    )
    assert by_name["critique_of_pure_reason.txt"].nonempty_lines == 19_127
    assert stats.top_words[0] == ("the", 22_404)
    json.dumps(stats.to_dict())  # JSON-ready


def test_small_chunks_give_identical_results(sample_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunk and long-line boundaries must not change any figure (multi-byte characters included)."""
    path = sample_dir / "critique_of_pure_reason.txt"  # has em dashes and curly quotes
    expected = corpus_stats(path)
    monkeypatch.setattr(textio_mod, "CHUNK_BYTES", 997)
    monkeypatch.setattr(scan_mod, "LONG_LINE", 50)
    chunked = corpus_stats(path)
    for name in ("bytes", "lines", "nonempty_lines", "words", "characters", "unique_words", "fingerprint"):
        assert getattr(chunked, name) == getattr(expected, name), name
    assert chunked.line_length.median == expected.line_length.median
    assert chunked.top_words == expected.top_words


def test_folder_is_recursive_sorted_and_fingerprinted(tmp_path: Path) -> None:
    write(tmp_path / "b.txt", "second file\n")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "a.txt", "nested file\n")
    write(tmp_path / "notes.md", "a note\n")
    write(tmp_path / "README.md", "what the folder is, not its text\n")  # a dataset card, as sample_data has
    write(tmp_path / "data.csv", "a,b\n")
    stats = corpus_stats(tmp_path)
    assert [Path(f.path).name for f in stats.files] == ["b.txt", "notes.md", "a.txt"]
    assert stats.words == 6
    listing = "".join(f"{f.sha256}  {Path(f.path).relative_to(tmp_path).as_posix()}\n" for f in stats.files)
    assert stats.fingerprint == hashlib.sha256(listing.encode()).hexdigest()


def test_distribution_quantiles_and_histogram() -> None:
    from collections import Counter

    dist = Distribution.from_counter(Counter({1: 50, 10: 45, 100: 5}))
    assert (dist.min, dist.median, dist.p95, dist.max) == (1, 1, 10, 100)
    assert sum(b.count for b in dist.histogram) == 100
    assert dist.histogram[0].lo == 1 and dist.histogram[-1].hi == 100


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"nope\.txt: no such file or folder"):
        corpus_stats(tmp_path / "nope.txt")


def test_folder_without_txt(tmp_path: Path) -> None:
    write(tmp_path / "data.csv", "a,b\n")
    with pytest.raises(CorpusError, match=r"folder holds no corpus files \(\.txt, \.md, \.jsonl"):
        corpus_stats(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"empty\.txt: is empty \(0 bytes\)"):
        corpus_stats(write(tmp_path / "empty.txt", b""))


def test_binary_file(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"model\.txt: looks like a binary file \(NUL byte at byte offset 4\)"):
        corpus_stats(write(tmp_path / "model.txt", b"\x7fELF\x00\x00data"))
    with pytest.raises(CorpusError, match=r"weights\.txt: a zip archive, not text; extract its files"):
        corpus_stats(write(tmp_path / "weights.txt", b"PK\x03\x04\x00\x00data"))  # torch.save's format, say


def test_non_utf8_names_file_and_offset(tmp_path: Path) -> None:
    path = write(tmp_path / "latin1.txt", "caf\u00e9 ok\n".encode() + "na\u00efve\n".encode("latin-1"))
    with pytest.raises(NotUtf8Error) as info:
        corpus_stats(path)
    assert info.value.offset == len("caf\u00e9 ok\n".encode()) + 2
    assert "latin1.txt: not valid UTF-8 at byte offset 11 (byte 0xef" in str(info.value)
    assert "--errors replace" in str(info.value)


def test_non_utf8_offset_across_chunk_boundary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textio_mod, "CHUNK_BYTES", 8)
    path = write(tmp_path / "x.txt", "abcdefg\u00e9".encode() + b"\xff tail\n")  # é straddles the chunk edge
    with pytest.raises(NotUtf8Error, match="byte offset 9 "):
        corpus_stats(path)


def test_replace_mode_counts_replaced_bytes(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.txt", b"good line\nbad \xff\xfe line\n")
    stats = corpus_stats(path, errors="replace")
    assert stats.replaced_bytes == 2
    assert stats.nonempty_lines == 2


def test_fifty_megabyte_single_line_in_bounded_memory(tmp_path: Path) -> None:
    """A 50 MB file with no newline is streamed: peak RSS of a process scanning it in-process stays small.

    VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so a child of a big pytest process would
    report the parent's peak. Holding the line whole would take 50 MB for the text plus ~500 MB for its 8 million words.
    """
    path = tmp_path / "one-line.txt"
    piece = ("pure reason " * 10_000).encode()
    with path.open("wb") as handle:
        for _ in range(50_000_000 // len(piece) + 1):
            handle.write(piece)
    script = (
        "import json, sys; from kantai_tui.core.corpus.stats import corpus_stats; "
        "s = corpus_stats(sys.argv[1], workers=1); "
        "print(json.dumps([s.lines, s.nonempty_lines, s.words, s.characters, s.line_length.max, s.top_words, "
        "[int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0]]))"
    )
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True)
    lines, nonempty, words, chars, longest, top, rss_kib = json.loads(out.stdout)
    assert (lines, nonempty) == (1, 1)
    assert longest == chars > 50_000_000
    assert words == chars // len("pure reason ") * 2
    assert top == [["pure", words // 2], ["reason", words // 2]]
    assert rss_kib < 120 * 1024, f"peak RSS {rss_kib / 1024:.0f} MiB"


def test_parallel_scan_matches_sequential(sample_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes over 64 KiB ranges give the same figures as one thread over whole files."""
    monkeypatch.setattr(corpus_mod, "RANGE_BYTES", 64 * 1024)
    sequential = corpus_stats(sample_dir, workers=1)
    parallel = corpus_stats(sample_dir, workers=2)
    assert parallel.files == sequential.files
    for name in (
        "lines",
        "nonempty_lines",
        "words",
        "characters",
        "unique_words",
        "duplicate_lines",
        "fingerprint",
        "top_words",
        "line_length",
    ):
        assert getattr(parallel, name) == getattr(sequential, name), name
    assert parallel.top_duplicates[0] == sequential.top_duplicates[0] == ("PROOF.", 14)


def test_parallel_scan_reports_bad_utf8_from_a_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpus_mod, "RANGE_BYTES", 1000)
    path = tmp_path / "late.txt"
    path.write_bytes(b"fine text line\n" * 300 + b"bad \xff here\n")
    with pytest.raises(NotUtf8Error, match=f"late.txt: not valid UTF-8 at byte offset {15 * 300 + 4} "):
        corpus_stats(path, workers=2)


def test_a_compressed_text_file_is_read_as_its_text(tmp_path: Path) -> None:
    """Stats of a .txt.gz are those of its text, except the bytes and sha256, which are the file's own."""
    import gzip
    import hashlib

    text = "Reason is the faculty of principles.\n" * 20
    plain = corpus_stats(write(tmp_path / "books.txt", text.encode()))
    packed = gzip.compress(text.encode())
    squeezed = corpus_stats(write(tmp_path / "books.txt.gz", packed))
    assert (squeezed.lines, squeezed.words, squeezed.characters) == (plain.lines, plain.words, plain.characters)
    assert squeezed.bytes == len(packed) and squeezed.fingerprint == hashlib.sha256(packed).hexdigest()


def test_a_folder_of_txt_in_any_case_is_a_corpus(tmp_path: Path) -> None:
    (tmp_path / "BOOK.TXT").write_text("upper\n")
    (tmp_path / "notes.Txt").write_text("mixed\n")
    (tmp_path / "data.csv").write_text("a,b\n")
    assert [p.name for p in textio_mod.find_corpus_files(tmp_path)] == ["BOOK.TXT", "notes.Txt"]
