"""Shared fixtures: real corpora from sample_data/, real tokenizers trained once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from kantai_tui.core.tokenizer.bpe import train_tokenizer
from tests.helpers import SAMPLE


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long", action="store_true", help="run the long fault-injection loops (many kills, many examples)"
    )


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis: a short run by default (CI), a long one with --long."""
    from hypothesis import HealthCheck, Phase, settings

    common = {
        "deadline": None,
        "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        "derandomize": True,
        "report_multiple_bugs": False,
        "database": None,
        "phases": [Phase.explicit, Phase.generate, Phase.shrink],
    }
    settings.register_profile("kantai-short", max_examples=40, **common)
    settings.register_profile("kantai-long", max_examples=1000, **common)
    settings.load_profile("kantai-long" if config.getoption("--long") else "kantai-short")


@pytest.fixture(scope="session")
def long_run(request: pytest.FixtureRequest) -> bool:
    """True under --long: fault loops run many more iterations."""
    return bool(request.config.getoption("--long"))


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder per test process: the CPU's matmul peak is measured once there (0.3 s), not per run."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, _session_cache: Path
) -> None:
    """Keep tokenizers the TUI trains out of the real ~/.local/share, and the preferences it remembers
    (last corpus, runs folder, last run) out of the real ~/.config: before, a TUI test left its temporary
    corpus in the user's preferences, and the next real `kantai` opened a vanished pytest folder. The
    cache (the measured matmul peak) stays out of the real ~/.cache."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))
    monkeypatch.setenv("XDG_CACHE_HOME", str(_session_cache))


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 3,000 lines of the Practical Reason book: big enough for real merges, fast to train."""
    path = tmp_path_factory.mktemp("small") / "small.txt"
    lines = (SAMPLE / "critique_of_practical_reason.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:3000]), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def kant_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tutorial's tokenizer trained on the whole bundled corpus (about a second)."""
    out = tmp_path_factory.mktemp("kant-tokenizer")
    train_tokenizer(SAMPLE, out)
    return out


@pytest.fixture(scope="session")
def small_tokenizer(tmp_path_factory: pytest.TempPathFactory, small_corpus: Path) -> Path:
    out = tmp_path_factory.mktemp("small-tokenizer")
    train_tokenizer(small_corpus, out, vocab_size=2000)
    return out


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, small_corpus: Path, small_tokenizer: Path) -> Path:
    """A real tiny run (20 steps, checkpoints at 10 and 20, probes at each) shared by the inference tests."""
    from kantai_tui.core.runs.process import create_run, execute
    from kantai_tui.core.training.config import TrainConfig

    runs = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-run")))
        cfg = TrainConfig(
            corpus=str(small_corpus),
            tokenizer_dir="",
            max_steps=20,
            batch_size=8,
            block_size=32,
            log_every=5,
            eval_every=10,
            checkpoint_every=10,
            lr=3e-3,
        )
        run = create_run(runs, "probe-run", cfg, small_tokenizer)
        execute(run, lambda e: None, lambda n: None)
    return run


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow end-to-end tests (real trainers, tmux, a browser) first: the two test workers then end
    together on the many short ones, instead of one waiting while the other runs a long test last."""
    items.sort(key=lambda item: 0 if "tests/system/" in item.nodeid or item.nodeid.startswith("system/") else 1)
