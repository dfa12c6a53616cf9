"""The app's commands as a user starts them: without a terminal, and with a run that cannot start."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rlm_tui.store import open_db

RLM_TUI = str(Path(sys.executable).parent / "rlm-tui")


def clean_env(**extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RLM_TUI_"))}
    return {**environ, **extra}


@pytest.mark.parametrize("command", ["replay", "attach"])
def test_the_app_without_a_terminal_says_so_in_one_line(tmp_path, command):
    db = tmp_path / "t.db"
    open_db(db).close()
    done = subprocess.run([RLM_TUI, command, "--db", str(db)], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, env=clean_env(), timeout=30)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"rlm-tui: error: {command} needs a terminal; "
                           "use `rlm-tui show` or `rlm-tui export` instead\n")


def test_the_app_refuses_a_stderr_that_is_not_a_terminal_since_it_draws_there(tmp_path):
    db = tmp_path / "t.db"
    open_db(db).close()
    main, child = pty.openpty()
    try:
        done = subprocess.run([RLM_TUI, "replay", "--db", str(db)], stdin=child, stdout=child,
                              stderr=subprocess.PIPE, text=True, env=clean_env(), timeout=30)
    finally:
        os.close(child)
        os.close(main)
    assert done.returncode == 2 and "replay needs a terminal" in done.stderr


def test_a_run_that_cannot_start_exits_with_its_error_and_never_opens_the_app(tmp_path):
    """In a real terminal: the engine fails before its run exists, so the app never draws."""
    (tmp_path / "datasets.py").write_text("raise ImportError('not installed')\n")  # as if it were missing
    environ = clean_env(PYTHONPATH=str(tmp_path), TERM="xterm-256color", COLUMNS="120", LINES="40")
    main, child = pty.openpty()
    proc = subprocess.Popen([RLM_TUI, "run", "oolong", "--env-arg", "source=hf", "--db", str(tmp_path / "r.db")],
                            stdin=child, stdout=child, stderr=child, env=environ, cwd=tmp_path, start_new_session=True)
    os.close(child)
    chunks: list[bytes] = []
    reader = threading.Thread(target=_read_all, args=(main, chunks), daemon=True)
    reader.start()
    try:
        assert proc.wait(60) == 2
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    os.close(main)
    out = b"".join(chunks).decode(errors="replace")
    assert "\x1b[?1049h" not in out  # the app's alternate screen never opened
    assert out.count("rlm-tui: error:") == 1, out
    assert "rlm-tui: error: loading oolongbench/oolong-synth needs the `datasets` package: " \
           "pip install 'rlm-tui[online]'" in out


def _read_all(fd: int, into: list[bytes]) -> None:
    try:
        while chunk := os.read(fd, 65536):
            into.append(chunk)
    except OSError:
        pass
