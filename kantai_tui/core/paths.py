"""Where kantai keeps what it makes when the user does not say: XDG data folder, per corpus.

A tokenizer trained in the TUI is stored under
``$XDG_DATA_HOME/kantai/tokenizers/<corpus fingerprint>/`` (default
``~/.local/share/kantai/...``), so opening the same corpus again finds it, and a
changed corpus never silently reuses a tokenizer trained on other text.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    """kantai's data folder, following the XDG base-directory rules."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kantai"


def tokenizer_dir_for(fingerprint: str) -> Path:
    """The default tokenizer folder of a corpus, keyed by its fingerprint."""
    return data_home() / "tokenizers" / fingerprint[:16]
