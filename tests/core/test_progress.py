"""Progress of the phases before training: what is reported, the one text rule, and a stop from a report
that leaves nothing half-made (token cache, packed blocks, tokenizer)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from kantai_tui.core.paths import data_home
from kantai_tui.core.progress import Meter, Progress
from kantai_tui.core.training import data
from kantai_tui.format import progress_text


class Stop(Exception):
    pass


def test_progress_text_says_share_amount_rate_and_time_left() -> None:
    text = progress_text("encoding the token cache", 50 << 20, 200 << 20, 10.0)
    assert text == "encoding the token cache 25% · 50.0 MiB of 200.0 MiB · 5.0 MiB/s · 0m30s left"
    assert progress_text("packing blocks", 300, 1200, 3.0, "blocks") == (
        "packing blocks 25% · 300 of 1,200 blocks · 100 blocks/s · 0m09s left"
    )
    assert progress_text("learning merges", 0, 0, 75.0) == "learning merges · 1m15s"


def test_a_recorded_progress_is_read_back_and_anything_else_is_none() -> None:
    kept = Progress("reading corpus", 10, 100, 2.0).to_dict()
    back = Progress.from_dict(kept, now=kept["updated"] + 3.0)
    assert back == Progress("reading corpus", 10, 100, 5.0)
    for bad in (None, [], {"phase": 3}, {**kept, "done": "ten"}, {**kept, "total": True}):
        assert Progress.from_dict(bad) is None


def test_the_meter_shows_a_phase_first_and_last_report_and_throttles_between() -> None:
    shown: list[Progress] = []
    meter = Meter(shown.append, every=60.0)
    for done in range(0, 11):
        meter("reading corpus", done, 10)
    meter("learning merges", 0, 0)
    assert [(p.phase, p.done) for p in shown] == [("reading corpus", 0), ("reading corpus", 10), ("learning merges", 0)]


def test_encoding_reports_bytes_and_a_stop_leaves_no_cache(small_corpus: Path, small_tokenizer: Path) -> None:
    seen: list[tuple[str, int, int]] = []

    def stop_at_once(phase: str, done: int, total: int) -> None:
        seen.append((phase, done, total))
        raise Stop

    before = set(_cache_entries())
    with pytest.raises(Stop):
        data.open_token_cache(small_corpus, small_tokenizer, text_field="stop-test", progress=stop_at_once)
    assert seen and seen[0][0] == "encoding the token cache" and seen[0][2] == small_corpus.stat().st_size
    assert set(_cache_entries()) == before  # neither a cache nor a staging folder was left

    reports: list[tuple[str, int, int]] = []
    cache = data.open_token_cache(
        small_corpus, small_tokenizer, text_field="stop-test", progress=lambda *r: reports.append(r)
    )
    assert reports[-1] == ("encoding the token cache", small_corpus.stat().st_size, small_corpus.stat().st_size)
    assert cache.lines > 0


def test_a_stop_while_packing_leaves_no_block_file(small_corpus: Path, small_tokenizer: Path) -> None:
    cache = data.open_token_cache(small_corpus, small_tokenizer)
    train, _ = data.split_lines(cache.lines, 0.1, 7)

    def stop(phase: str, done: int, total: int) -> None:
        assert phase == "packing blocks"
        raise Stop

    with pytest.raises(Stop):
        data._write_packed(cache, train, 16, cache.path / "packed-test.npy", stop, chunk_lines=100)
    assert not [p for p in os.listdir(cache.path) if "packed-test" in p]
    blocks = data.packed_blocks(cache, train, 16)
    assert blocks.shape[1] == 16 and np.all(blocks[:, 0] == data.BOS)


def _cache_entries() -> list[str]:
    folder = data_home() / "cache" / "tokens"
    return os.listdir(folder) if folder.is_dir() else []
