"""What each command imports: a real process of the CLI's entry reports the modules it loaded, and the slow
ones stay out of the commands that do not use them; the app's front leaves the run's checks to its engine."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from runs import store_events
from synthetic import run_events

ROOT = Path(__file__).resolve().parent.parent
HEAVY = {"sympy", "numpy", "matplotlib", "pandas", "sqlite_utils", "plotext", "tiktoken", "datasets"}
CLIENTS = {"openai", "httpx", "aiohttp"}
APP = {"textual"}
HANG = 120  # seconds: only a bound on a hang, never a measure

# The CLI's own entry, run as `python -m rlm_tui.cli` runs it, that writes the names of the modules loaded at exit.
ENTRY = """
import atexit, json, runpy, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(json.dumps(sorted({m.split(".")[0] for m in sys.modules}))))
sys.argv[0] = "rlm-tui"
runpy.run_module("rlm_tui.cli", run_name="__main__", alter_sys=True)
"""


def environ() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RLM_TUI_", "SERPER_"))}
    return {**clean, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}


def loaded(tmp_path: Path, *args: str) -> set[str]:
    """The top-level packages `rlm-tui ARGS` imported, run to its end with its output thrown away."""
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", ENTRY, str(out), *args],
        env=environ(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(out.read_text()))


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(store_events(tmp_path / "runs.db", run_events("startup-run", rollouts=2)))


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["envs"],
        ["run", "--help"],
        ["replay", "--help"],
        ["report", "--help"],
        ["ablate", "--help"],
        ["serve", "--help"],
        ["import", "--help"],
    ],
)
def test_help_and_envs_import_no_heavy_package_no_client_and_no_app(tmp_path, args):
    assert loaded(tmp_path, *args) & (HEAVY | CLIENTS | APP) == set()


@pytest.mark.parametrize("args", [["runs"], ["show", "startup-run"], ["show", "startup-run-r001"]])
def test_the_commands_that_read_the_store_import_no_heavy_package_no_client_and_no_app(tmp_path, db, args):
    modules = loaded(tmp_path, *args, "--db", db)
    assert "rlm_tui" in modules and modules & (HEAVY | CLIENTS | APP) == set()


def test_envs_lists_every_environment_without_their_scoring_packages(tmp_path):
    modules = loaded(tmp_path, "envs")
    assert "environments" in modules and {"Levenshtein", "rapidfuzz", "sympy", "httpx"} & modules == set()


def on_a_pty(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, int, Path]:
    """`rlm-tui ARGS` started on a 120x40 terminal of its own: the process, the terminal's main end, its modules file."""
    out = tmp_path / "modules.json"
    main, child = pty.openpty()
    termios.tcsetwinsize(child, (40, 120))
    proc = subprocess.Popen(
        [sys.executable, "-c", ENTRY, str(out), *args],
        stdin=child,
        stdout=child,
        stderr=child,
        env=environ(),
        cwd=tmp_path,
        start_new_session=True,
    )
    os.close(child)
    return proc, main, out


def test_the_app_on_a_stored_run_imports_no_heavy_package_and_no_client(tmp_path, db):
    """In a real terminal: replay draws the run's rollouts, q quits, and the app never loaded a model client."""
    proc, main, out = on_a_pty(tmp_path, "replay", "startup-run", "--db", db)
    screen = b""
    try:
        while b"startup-run-r001" not in screen and b"ex-1" not in screen:
            assert select.select([main], [], [], HANG)[0], f"the app drew nothing more; it had: {screen[-400:]!r}"
            screen += os.read(main, 65536)
        os.write(main, b"q")
        while select.select([main], [], [], HANG)[0]:
            try:
                if not os.read(main, 65536):
                    break
            except OSError:  # the app exited and the terminal closed
                break
        assert proc.wait(HANG) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
    modules = set(json.loads(out.read_text()))
    assert "textual" in modules and modules & (HEAVY | CLIENTS) == set()


def on_a_terminal(tmp_path: Path, *args: str) -> tuple[int, str, set[str]]:
    """(exit status, everything drawn, the modules loaded) of `rlm-tui ARGS` run to its end on a terminal."""
    proc, main, out = on_a_pty(tmp_path, *args)
    screen = b""
    try:
        while select.select([main], [], [], HANG)[0]:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # it exited and the terminal closed
                break
            if not chunk:
                break
            screen += chunk
        code = proc.wait(HANG)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
    return code, screen.decode(errors="replace"), set(json.loads(out.read_text()))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--env-arg", "nope=1"], "verbatim-copy has no knob 'nope'"),
        (["--model", "gpt-5-mini"], "needs OPENAI_API_KEY"),
        (["--model", "m", "--base-url", "http://127.0.0.1:9/v1"], "cannot reach http://127.0.0.1:9/v1"),
    ],
)
def test_a_run_the_engine_cannot_start_is_one_line_the_app_never_opens_and_the_front_loads_no_client(
    tmp_path, args, message
):
    code, screen, modules = on_a_terminal(tmp_path, "run", "verbatim-copy", *args, "--db", str(tmp_path / "r.db"))
    assert code == 2 and screen.count("rlm-tui: error:") == 1 and message in screen, screen
    assert "\x1b[?1049h" not in screen  # the app's alternate screen never opened
    assert modules & (HEAVY | CLIENTS) == set()
