"""Where the bundled Kant corpus lives, however kantai was installed.

In a source checkout or an editable install the corpus is ``sample_data/`` at the
repository root; in a wheel the build copies it into the package as
``kantai_tui/sample_data/`` (see ``[tool.hatch.build.targets.wheel.force-include]``
in pyproject.toml). Looking next to the package first, then one level up, finds
it in both cases and never depends on the current directory.
"""

from __future__ import annotations

from pathlib import Path

from kantai_tui.core.errors import CorpusError

_PACKAGE = Path(__file__).resolve().parents[2]  # kantai_tui/, from kantai_tui/core/corpus/sample.py


def bundled_corpus() -> Path:
    """Path of the bundled corpus folder (three Kant books), or a CorpusError if it is missing."""
    for candidate in (_PACKAGE / "sample_data", _PACKAGE.parent / "sample_data"):
        if any(candidate.glob("*.txt")):
            return candidate
    raise CorpusError("the bundled Kant corpus is missing from this installation; pass a corpus path instead")
