"""The app's commands as a user starts them: without a terminal, with a run that cannot start, and the engine
command line the app derives from the run options."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
from dataclasses import fields
from pathlib import Path

import pytest

from rlm_tui.cli import build_parser, main
from rlm_tui.commands.options import RunOptions
from rlm_tui.commands.run import engine_argv
from rlm_tui.store import list_runs, open_db

RLM_TUI = str(Path(sys.executable).parent / "rlm-tui")


def clean_env(**extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RLM_TUI_"))}
    return {**environ, **extra}


@pytest.mark.parametrize("command", ["replay", "attach"])
def test_the_app_without_a_terminal_says_so_in_one_line(tmp_path, command, monkeypatch, capfd):
    db = tmp_path / "t.db"
    open_db(db).close()
    monkeypatch.setattr(sys, "stdin", open(os.devnull))
    assert main([command, "--db", str(db)]) == 2
    out, err = capfd.readouterr()
    assert out == "" and err == (
        f"rlm-tui: error: {command} needs a terminal; use `rlm-tui show` or `rlm-tui export` instead\n"
    )


def test_the_engine_gets_every_run_option_the_user_gave():
    """The app's engine is a headless run with the same options: none dropped, none changed on the way."""
    args = build_parser().parse_args(
        [
            "run",
            "oolong",
            "--mode",
            "llm",
            "--model",
            "m",
            "--sub-model",
            "s",
            "--base-url",
            "http://127.0.0.1:1/v1",
            "-n",
            "3",
            "--concurrency",
            "2",
            "--sub-concurrency",
            "3",
            "--max-turns",
            "4",
            "--timeout",
            "5.5",
            "--max-output-chars",
            "600",
            "--memory-mb",
            "700",
            "--cpu-seconds",
            "80",
            "--request-timeout",
            "9",
            "--seed",
            "-10",
            "--env-arg",
            "context_len=2048",
            "--env-arg",
            "subset=real",
            "--scripted-delay",
            "0",
            "--scripted-window",
            "8000",
            "--scripted-errors",
            "0.5",
            "--context-limit",
            "64000",
            "--executor",
            "ray",
            "--ray-address",
            "10.0.0.1:6379",
            "--retries",
            "2",
            "--tool-protocol",
            "text",
            "--max-nudges",
            "0",
            "--max-tokens",
            "64",
            "--temperature",
            "0.5",
            "--top-p",
            "0.9",
            "--sampling-seed",
            "3",
            "--reasoning-effort",
            "low",
            "--extra-body",
            '{"top_k": 4}',
            "--sub-max-tokens",
            "32",
            "--sub-temperature",
            "1",
            "--sub-top-p",
            "0.8",
            "--sub-sampling-seed",
            "4",
            "--sub-reasoning-effort",
            "high",
            "--sub-extra-body",
            '{"min_p": 0.1}',
            "--approve",
            "--max-depth",
            "2",
            "--max-tokens-total",
            "1000",
            "--max-usd",
            "0.5",
            "--max-seconds",
            "60",
            "--max-sub-calls",
            "7",
            "--run-max-tokens-total",
            "9000",
            "--run-max-usd",
            "2",
            "--run-max-seconds",
            "600",
            "--run-max-sub-calls",
            "70",
            "--prices",
            "/tmp/prices.json",
            "--price",
            "m=1,0.5,2",
            "--price",
            "s=1,2",
        ]
    )
    given = RunOptions.from_args(args)
    assert all(getattr(given, f.name) != f.default for f in fields(RunOptions))  # every option is in the list above
    argv = engine_argv("oolong", given, run_id="00000000000000aa", db="/tmp/x.db")
    assert argv[:3] == [sys.executable, "-m", "rlm_tui.cli"]
    engine = build_parser().parse_args(argv[3:])
    assert (engine.env, engine.headless, engine.run_id, engine.db) == ("oolong", True, "00000000000000aa", "/tmp/x.db")
    assert RunOptions.from_args(engine) == given


def test_the_app_refuses_a_stderr_that_is_not_a_terminal_since_it_draws_there(tmp_path):
    db = tmp_path / "t.db"
    open_db(db).close()
    main, child = pty.openpty()
    try:
        done = subprocess.run(
            [RLM_TUI, "replay", "--db", str(db)],
            stdin=child,
            stdout=child,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
            timeout=30,
        )
    finally:
        os.close(child)
        os.close(main)
    assert done.returncode == 2 and "replay needs a terminal" in done.stderr


def test_a_run_that_cannot_start_exits_with_its_error_and_never_opens_the_app(tmp_path):
    """In a real terminal: the engine fails before its run exists, so the app never draws."""
    (tmp_path / "datasets.py").write_text("raise ImportError('not installed')\n")  # as if it were missing
    environ = clean_env(PYTHONPATH=str(tmp_path), TERM="xterm-256color", COLUMNS="120", LINES="40")
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [
            RLM_TUI,
            "run",
            "oolong",
            "--env-arg",
            "source=hf",
            "--env-arg",
            "subset=synth",
            "--db",
            str(tmp_path / "r.db"),
        ],
        stdin=child,
        stdout=child,
        stderr=child,
        env=environ,
        cwd=tmp_path,
        start_new_session=True,
    )
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
    assert (
        "rlm-tui: error: loading oolongbench/oolong-synth needs the `datasets` package: "
        "pip install 'rlm-tui[online]'" in out
    )


def _read_all(fd: int, into: list[bytes]) -> None:
    try:
        while chunk := os.read(fd, 65536):
            into.append(chunk)
    except OSError:
        pass


def test_a_replay_gauges_the_context_limit_the_run_recorded(tmp_path, monkeypatch):
    from rlm_tui.tui.app import RlmApp
    from rlm_tui.tui.sources import Feed, load_events

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    db = tmp_path / "c.db"
    assert main(["run", "verbatim-copy", "--headless", "-n", "1", "--context-limit", "64000", "--db", str(db)]) == 0
    (run_id,) = [r["id"] for r in list_runs(db)]
    app = RlmApp(db, run_id=run_id, follow=False, context_limit=128_000)  # as `rlm-tui replay` opens it
    app.session.feed = Feed(run_id)
    for chunk in load_events(db, run_id):
        app.session.feed.apply(chunk)
    assert app.session.context_limit_for_run == 64000
