"""Layer rules checked by code: core never imports the UI; ``kantai --help`` loads nothing heavy."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT

CORE = ROOT / "kantai_tui" / "core"
FORBIDDEN_IN_CORE = ("textual", "rich", "kantai_tui.tui", "kantai_tui.cli", "kantai_tui.views")
HEAVY = ("torch", "transformers", "textual", "tokenizers", "rich")


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at top level or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_source_never_imports_the_ui() -> None:
    for path in CORE.rglob("*.py"):
        bad = [m for m in _imports(path) if m.split(".")[0] in FORBIDDEN_IN_CORE or m.startswith(FORBIDDEN_IN_CORE)]
        assert not bad, f"{path.name} imports {bad}"


def test_importing_core_loads_no_ui() -> None:
    code = (
        "import sys, pkgutil, importlib, kantai_tui.core as c\n"
        "for m in pkgutil.walk_packages(c.__path__, 'kantai_tui.core.'): importlib.import_module(m.name)\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] in ('textual', 'rich') or k.startswith('kantai_tui.tui')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_does_not_import_heavy_packages() -> None:
    code = (
        "import sys\nfrom kantai_tui.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage: kantai" in out.stdout
    assert out.stderr.strip() == "[]"


def test_no_module_shadows_a_dependency() -> None:
    names = {p.stem for p in CORE.parent.rglob("*.py")}
    assert not names & {"tokenizers", "transformers", "torch", "textual", "rich"}


def test_tui_start_imports_nothing_heavy() -> None:
    """The first frame must not wait for torch (~1.5-3.5 s here): panes load it later, in workers."""
    code = (
        "import sys, kantai_tui.tui.app\n"
        "print(sorted(m for m in ('torch', 'transformers', 'tokenizers', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
