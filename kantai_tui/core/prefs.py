"""Preferences: theme, last corpus, runs folder and last run, in one small JSON file.

``$XDG_CONFIG_HOME/kantai/preferences.json`` (default ``~/.config/kantai/``). Never required: a
missing, unreadable or hand-mangled file means defaults, a value of the wrong type is ignored,
and a read-only home means preferences are simply not kept. Command-line options always win.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

FILE = "preferences.json"


def config_home() -> Path:
    """kantai's config folder, following the XDG base-directory rules."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kantai"


@dataclass(frozen=True)
class Preferences:
    """What the TUI remembers between sessions (all optional)."""

    theme: str | None = None
    last_corpus: str | None = None
    runs_dir: str | None = None
    last_run: str | None = None

    def with_(self, **changes: str | None) -> Preferences:
        return replace(self, **changes)


def load_preferences(folder: Path | None = None) -> Preferences:
    """The saved preferences, or defaults for anything missing or not a string."""
    path = (folder or config_home()) / FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Preferences()
    if not isinstance(data, dict):
        return Preferences()
    return Preferences(**{f.name: data[f.name] for f in fields(Preferences) if isinstance(data.get(f.name), str)})


def save_preferences(prefs: Preferences, folder: Path | None = None) -> bool:
    """Write atomically; False (and nothing written) where the config folder cannot be written."""
    folder = folder or config_home()
    tmp = folder / f".{FILE}.{os.getpid()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(asdict(prefs), indent=1), encoding="utf-8")
        os.replace(tmp, folder / FILE)
    except OSError:
        with contextlib.suppress(OSError):  # the folder itself may be what cannot be written
            tmp.unlink(missing_ok=True)
        return False
    return True
