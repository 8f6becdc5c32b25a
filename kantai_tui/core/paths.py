"""Where kantai keeps what it makes when the user does not say: XDG data folder, per corpus.

A tokenizer trained in the TUI is stored under
``$XDG_DATA_HOME/kantai/tokenizers/<corpus fingerprint>/`` (default
``~/.local/share/kantai/...``), so opening the same corpus again finds it, and a
changed corpus never silently reuses a tokenizer trained on other text.

Runs go to ``./runs`` unless ``--runs-dir`` says otherwise; a hint that names a command for a run
(``kantai_command``) carries that ``--runs-dir``, or it would act on another folder.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

DEFAULT_RUNS_DIR = "runs"


def data_home() -> Path:
    """kantai's data folder, following the XDG base-directory rules."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kantai"


def cache_home() -> Path:
    """kantai's cache folder (``$XDG_CACHE_HOME/kantai``, default ``~/.cache/kantai``): what can be measured
    or computed again, so deleting it loses nothing but time."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kantai"


def tokenizer_dir_for(fingerprint: str) -> Path:
    """The default tokenizer folder of a corpus, keyed by its fingerprint."""
    return data_home() / "tokenizers" / fingerprint[:16]


def kantai_command(*words: str | Path, runs_dir: str | Path | None = None) -> str:
    """A kantai command line for a hint, to be run as printed: words shell-quoted where they need it, and
    ``--runs-dir`` when the runs folder is not ./runs (without it the command would look in ./runs)."""
    line = ["kantai", *map(str, words)]
    if runs_dir is not None and Path(runs_dir).expanduser().resolve() != Path(DEFAULT_RUNS_DIR).resolve():
        line += ["--runs-dir", str(runs_dir)]
    return shlex.join(line)
