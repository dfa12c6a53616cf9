"""The engine, sandbox, store, events and reducer never import the UI libraries."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CORE = ["rlm_tui.engine.run", "rlm_tui.engine.rollout", "rlm_tui.engine.scripted", "rlm_tui.sandbox",
        "rlm_tui.store", "rlm_tui.events", "rlm_tui.state", "rlm_tui.export", "environments.verbatim_copy"]


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_ui(module):
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- environments see only rlm_tui.env and what it lends them -----------------------------------

ENVIRONMENTS = Path(__file__).resolve().parent.parent / "environments"
FORBIDDEN = ("rlm_tui.engine", "rlm_tui.store", "rlm_tui.tui")


def _imported(tree: ast.AST) -> set[str]:
    """Every module an `import` or `from ... import` names, deferred imports inside functions included."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", sorted(ENVIRONMENTS.rglob("*.py")), ids=lambda p: str(p.relative_to(ENVIRONMENTS)))
def test_environments_import_neither_the_engine_nor_the_store_nor_the_app(path):
    imported = _imported(ast.parse(path.read_text(), str(path)))
    crossing = sorted(name for name in imported if name.startswith(FORBIDDEN))
    assert crossing == []


def test_the_apps_view_model_imports_no_ui():
    """The session view-model is plain Python, so that it is tested, and could be driven, without a screen."""
    code = ("import sys, rlm_tui.tui.session; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
