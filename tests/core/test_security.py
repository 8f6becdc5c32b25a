"""Nothing from a run or model folder is unpickled: the source is checked, not trusted to stay so.

The behaviour (a planted pickle is refused, its payload never runs) is tests/core/test_training.py::
test_a_planted_pickle_is_refused_not_executed; run-name escapes are tests/core/test_checkpoint.py.
"""

from __future__ import annotations

import ast

from tests.helpers import ROOT

PACKAGE = ROOT / "kantai_tui"
UNSAFE_CALLS = {("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"), ("marshal", "loads")}
SAFE_ONLY_WITH = {
    ("torch", "load"): ("weights_only", True),
    ("np", "load"): ("allow_pickle", False),
    ("numpy", "load"): ("allow_pickle", False),
}


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
        ):
            yield node, (node.func.value.id, node.func.attr)


def test_every_load_refuses_pickles() -> None:
    torch_loads = []
    for source in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node, (owner, name) in _calls(tree):
            where = f"{source.relative_to(PACKAGE.parent)}:{node.lineno}"
            assert (owner, name) not in UNSAFE_CALLS, f"{where} unpickles ({owner}.{name})"
            if (owner, name) in SAFE_ONLY_WITH:
                flag, value = SAFE_ONLY_WITH[(owner, name)]
                given = {k.arg: k.value for k in node.keywords}.get(flag)
                assert isinstance(given, ast.Constant) and given.value is value, (
                    f"{where}: {owner}.{name} without {flag}={value}"
                )
                if owner == "torch":
                    torch_loads.append(where)
    assert torch_loads, "the optimizer state is read with torch.load somewhere: this test must see it"


def test_from_pretrained_never_runs_remote_code() -> None:
    for source in sorted(PACKAGE.rglob("*.py")):
        assert "trust_remote_code=True" not in source.read_text(encoding="utf-8"), source
