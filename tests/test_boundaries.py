"""The layers hold: the core never imports the UI libraries, environments see only rlm_tui.env, the command layer
has no import circle, and a command imports only what it uses."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import rlm_tui

CORE = [
    "rlm_tui.engine.run",
    "rlm_tui.engine.rollout",
    "rlm_tui.engine.scripted",
    "rlm_tui.sandbox",
    "rlm_tui.store",
    "rlm_tui.events",
    "rlm_tui.state",
    "rlm_tui.export",
    "environments.verbatim_copy",
]
WITHOUT_CIRCLES = (
    "rlm_tui.cli",
    "rlm_tui.commands",
    "rlm_tui.report.render",
    "rlm_tui.tui.launch",
    "rlm_tui.engine",
    "rlm_tui.store",
)


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


def import_graph() -> dict[str, set[str]]:
    """Each rlm_tui module -> the rlm_tui modules its file imports, inside functions too."""
    root = Path(rlm_tui.__file__).parent.parent
    paths = {
        ".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
        for p in (root / "rlm_tui").rglob("*.py")
    }
    graph = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level else ""
                base = ".".join(part for part in (base, node.module) if part)
                names = {f"{base}.{alias.name}" for alias in node.names}
                targets |= names if names <= paths.keys() else names | {base}  # only submodules: not the package
        graph[name] = {t for t in targets if t in paths and t != name}
    return graph


def on_a_circle(graph: dict[str, set[str]], start: str) -> bool:
    seen, todo = set(), list(graph[start])
    while todo:
        module = todo.pop()
        if module == start:
            return True
        if module not in seen:
            seen.add(module)
            todo += graph[module]
    return False


def test_the_command_layer_engine_and_store_import_no_circle():
    graph = import_graph()
    assert on_a_circle({"a": {"b"}, "b": {"a"}}, "a")  # the check itself sees a circle
    checked = [m for m in graph if m.startswith(WITHOUT_CIRCLES)]
    assert "rlm_tui.commands.run" in checked and "rlm_tui.store.reader" in checked
    assert [m for m in checked if on_a_circle(graph, m)] == []


@pytest.mark.parametrize(
    "argv, deferred",
    [
        (
            ["--help"],
            (
                "rlm_tui.store",
                "rlm_tui.tui",
                "rlm_tui.engine.clients",
                "textual",
                "rich",
                "openai",
                "httpx",
                "matplotlib",
                "asyncio",
            ),
        ),
        (
            ["envs"],
            ("rlm_tui.store", "rlm_tui.tui", "textual", "openai", "matplotlib"),
        ),  # environments import their own
    ],
)
def test_a_command_imports_only_what_it_uses(argv, deferred):
    code = (
        "import sys\nfrom rlm_tui.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in sys.modules if m.startswith({deferred!r}))[:5], file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True)
    assert done.stderr.strip().splitlines()[-1] == "[]"


def test_the_apps_view_model_imports_no_ui():
    """The session view-model is plain Python, so that it is tested, and could be driven, without a screen."""
    code = (
        "import sys, rlm_tui.tui.session; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_apps_modules_import_no_circle():
    graph = import_graph()
    checked = [m for m in graph if m.startswith("rlm_tui.tui")]
    assert "rlm_tui.tui.screens.run" in checked and "rlm_tui.tui.screens.runs" in checked
    assert [m for m in checked if on_a_circle(graph, m)] == []
