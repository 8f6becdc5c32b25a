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


def _import_graph() -> dict[str, set[str]]:
    """kantai_tui module -> the kantai_tui modules it imports (top level or inside functions)."""
    package = ROOT / "kantai_tui"

    def name_of(path: Path) -> str:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {name_of(p): p for p in package.rglob("*.py")}

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(known(a.name) for a in node.names if a.name.startswith("kantai_tui"))
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kantai_tui"):
                found.update(known(f"{node.module}.{a.name}") for a in node.names)
        graph[name] = {m for m in found if m and m not in (name, "kantai_tui")}
    return graph


def test_the_import_graph_has_no_cycles() -> None:
    graph, done, path = _import_graph(), set(), []

    def visit(module: str) -> None:
        path.append(module)
        for dep in sorted(graph[module]):
            assert dep not in path, "import cycle: " + " -> ".join([*path[path.index(dep) :], dep])
            if dep not in done:
                visit(dep)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module)


# The pipeline's order: a stage imports only stages before it (and the shared modules of core/).
CORE_ORDER = ("corpus", "tokenizer", "training", "fillmask", "runs")
CORE_SHARED = ("errors", "files", "paths", "prefs", "device", "progress")


def test_core_stages_import_in_one_direction() -> None:
    def stage(module: str) -> str:
        return module.split(".")[2]

    for module, deps in _import_graph().items():
        if not module.startswith("kantai_tui.core."):
            continue
        for dep in deps:
            assert dep.startswith("kantai_tui.core"), f"{module} imports {dep}: core imports only core"
            if stage(dep) == stage(module) or (stage(dep) in CORE_SHARED and stage(module) not in CORE_SHARED):
                continue
            assert stage(module) in CORE_ORDER and stage(dep) in CORE_ORDER, f"{module} imports {dep}"
            assert CORE_ORDER.index(stage(dep)) < CORE_ORDER.index(stage(module)), (
                f"{module} imports {dep}: {stage(dep)} comes after {stage(module)} in the pipeline"
            )


def test_every_package_folder_has_an_init() -> None:
    """A folder of modules without __init__.py still imports (as a namespace package), so nothing else
    notices when one is lost: `runs/` in .gitignore once kept core/runs/__init__.py out of every clone."""
    folders = {p.parent for p in (ROOT / "kantai_tui").rglob("*.py") if "__pycache__" not in p.parts}
    assert sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").is_file()) == []
