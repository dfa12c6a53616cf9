"""The engine, sandbox, store, events and reducer never import the UI libraries."""

import subprocess
import sys

import pytest

CORE = ["rlm_tui.engine.run", "rlm_tui.engine.rollout", "rlm_tui.engine.scripted", "rlm_tui.sandbox",
        "rlm_tui.store", "rlm_tui.events", "rlm_tui.state", "rlm_tui.export", "environments.verbatim_copy"]


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_ui(module):
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_apps_view_model_imports_no_ui():
    """The session view-model is plain Python, so that it is tested, and could be driven, without a screen."""
    code = ("import sys, rlm_tui.tui.session; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
