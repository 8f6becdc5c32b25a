"""Where the bundled Kant corpus lives, however kantai was installed.

In a source checkout or an editable install the corpus is ``sample_data/`` at the
repository root; in a wheel the build copies it into the package as
``kantai_tui/sample_data/`` (see ``[tool.hatch.build.targets.wheel.force-include]``
in pyproject.toml). Looking next to the package first, then one level up, finds
it in both cases and never depends on the current directory.

Every command that takes a corpus also takes the name ``kant`` for it (``kantai train kant``), so the
README's commands and kantai's own hints work from any folder; a file or folder named ``kant`` in
the current directory is still that path (a real path always wins over the reserved name).
"""

from __future__ import annotations

from pathlib import Path

from kantai_tui.core.errors import CorpusError

_PACKAGE = Path(__file__).resolve().parents[2]  # kantai_tui/, from kantai_tui/core/corpus/sample.py
BUNDLED_NAME = "kant"


def bundled_corpus() -> Path:
    """Path of the bundled corpus folder (three Kant books), or a CorpusError if it is missing."""
    for candidate in (_PACKAGE / "sample_data", _PACKAGE.parent / "sample_data"):
        if any(candidate.glob("*.txt")):
            return candidate
    raise CorpusError("the bundled Kant corpus is missing from this installation; pass a corpus path instead")


def corpus_path(path: str | Path) -> Path:
    """What a corpus argument names: a path that exists is that path; ``kant``, when nothing by that name
    is here, is the bundled corpus; anything else is the path, for find_corpus_files to report."""
    given = Path(path).expanduser()
    if str(path) == BUNDLED_NAME and not given.exists():
        return bundled_corpus()
    return given
