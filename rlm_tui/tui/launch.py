"""The app's commands: `run` without --headless (the engine as a subprocess), `attach` and `replay`."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from typing import Any

from rlm_tui.cli import UserError, db_path_of, make_client, resolve_models
from rlm_tui.env import load_environment

START_NOTICE_SECONDS = 1.0  # a run slower than this to start says so on stderr


def run_in_app(args: argparse.Namespace) -> int:
    """Check the arguments as the headless path does, start it as a subprocess, and open the app on its run."""
    import tempfile
    from pathlib import Path

    from rlm_tui.events import new_id

    if not sys.stderr.isatty():
        raise UserError("the app draws on stderr, which is not a terminal; add --headless, or leave stderr alone")
    env = load_environment(args.env, dict(args.env_arg))
    model, sub_model, base_url = resolve_models(args)
    asyncio.run(make_client(env, model, base_url, args.scripted_delay).close())
    path = Path(db_path_of(args)).resolve()
    from rlm_tui.store import open_db

    open_db(path).close()  # a bad --db fails here, as one line, before any app opens
    run_id = args.run_id or new_id()
    argv = [sys.executable, "-m", "rlm_tui.cli", "run", args.env, "--headless", "--run-id", run_id, "--db", str(path),
            "--mode", args.mode, "--model", model, "--sub-model", sub_model, "-n", str(args.num_examples),
            "--concurrency", str(args.concurrency), "--sub-concurrency", str(args.sub_concurrency),
            "--max-turns", str(args.max_turns), "--timeout", str(args.timeout),
            "--max-output-chars", str(args.max_output_chars), "--seed", str(args.seed),
            "--memory-mb", str(args.memory_mb), "--request-timeout", str(args.request_timeout),
            "--scripted-delay", str(args.scripted_delay)]
    argv += ["--base-url", base_url] if base_url else []
    for key, value in args.env_arg:
        argv += ["--env-arg", f"{key}={value}"]
    log = Path(tempfile.mkstemp(prefix=f"rlm-tui-{run_id[:8]}-", suffix=".log")[1])
    with open(log, "wb") as out:
        # a session of its own: the terminal's ctrl+c goes to the app, which decides what the run gets
        engine = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    from rlm_tui.tui.app import ERROR_PREFIX, RlmApp, last_line

    signal.signal(signal.SIGHUP, lambda *_: _hung_up(path, run_id))
    if not _started(path, run_id, engine):
        rc = engine.returncode
        if os.environ.get("RLM_TUI_DEBUG"):
            sys.stderr.write(log.read_text(errors="replace"))
        print(ERROR_PREFIX + (last_line(log) or f"the run exited with status {rc} before it started"), file=sys.stderr)
        log.unlink(missing_ok=True)
        return rc or 1
    app = RlmApp(path, run_id=run_id, follow=True, engine=engine, engine_log=log, context_limit=args.context_limit)
    try:
        app.run()
    finally:
        if app.return_code != 0 and engine.poll() is None:  # the app crashed: do not leave the run behind
            engine.send_signal(signal.SIGTERM)
    if app.return_code:
        return app.return_code
    rc = engine.poll()
    if rc is None:
        print(f"run {run_id} goes on in the background (pid {engine.pid}); follow it with "
              f"`rlm-tui attach {run_id[:8]}`; engine log: {log}", file=sys.stderr)
        return 0
    if rc != 0 and not app.stopping:
        print(f"{ERROR_PREFIX}{last_line(log) or f'the engine exited with status {rc}'} (log: {log})", file=sys.stderr)
        return 1
    print(run_id)
    return 0


def _started(path: Any, run_id: str, engine: Any) -> bool:
    """Wait until the run's row is in the database (True) or its engine exits first (False)."""
    from rlm_tui.store import get_run, open_db

    db = open_db(path, create=False)
    began, told = time.monotonic(), False
    try:
        while True:
            done = engine.poll() is not None  # read before the row: a run that started and ended still opens
            if get_run(db, run_id) is not None:
                return True
            if done:
                return False
            if not told and time.monotonic() - began > START_NOTICE_SECONDS:
                print("rlm-tui: starting the run…", file=sys.stderr)
                told = True
            time.sleep(0.05)
    except KeyboardInterrupt:
        engine.send_signal(signal.SIGTERM)  # ctrl+c before the app opened stops the run too
        try:
            engine.wait(2)
        except subprocess.TimeoutExpired:
            engine.kill()  # stuck loading its data: it has no run to record yet
        raise
    finally:
        db.close()


def _hung_up(path: Any, run_id: str) -> None:
    """The terminal went away: leave the run going, unpaused, as if the user had chosen to leave it running."""
    from rlm_tui.store import open_db, send_command

    try:
        send_command(open_db(path), run_id, "resume")  # nobody is left to resume a paused rollout
    finally:
        os._exit(129)


def _need_terminal(command: str) -> None:
    """Without a terminal the app would draw into a pipe or a file forever (it draws on stderr)."""
    if not (sys.stdin.isatty() and sys.stdout.isatty() and sys.stderr.isatty()):
        raise UserError(f"{command} needs a terminal; use `rlm-tui show` or `rlm-tui export` instead")


def cmd_attach(args: argparse.Namespace) -> int:
    from rlm_tui.store import list_runs, open_db, resolve_run_id

    _need_terminal("attach")
    path = db_path_of(args)
    db = open_db(path, create=False)
    if args.run_id:
        run_id = resolve_run_id(db, args.run_id)
    else:
        running = [r["id"] for r in list_runs(db) if r["status"] == "running"]
        if not running:
            raise UserError("no run is running; `rlm-tui replay` opens finished ones")
        run_id = running[0]
    db.close()
    signal.signal(signal.SIGHUP, lambda *_: _hung_up(path, run_id))
    return _open_app(path, args, run_id=run_id, follow=True)


def cmd_replay(args: argparse.Namespace) -> int:
    from rlm_tui.store import StoreError, get_rollout, open_db, resolve_rollout_id, resolve_run_id

    _need_terminal("replay")
    path = db_path_of(args)
    db = open_db(path, create=False)
    run_id = rollout_id = None
    if args.id:
        try:
            run_id = resolve_run_id(db, args.id)
        except StoreError as run_error:
            try:
                rollout_id = resolve_rollout_id(db, args.id)
            except StoreError:
                if "matches" in str(run_error):
                    raise run_error from None
                raise StoreError(f"no run or rollout id starts with {args.id!r}; `rlm-tui runs` lists the runs, "
                                 "`rlm-tui show RUN` a run's rollouts") from None
            run_id = get_rollout(db, rollout_id)["run_id"]
    db.close()
    return _open_app(path, args, run_id=run_id, rollout_id=rollout_id, follow=False if run_id else None)


def _open_app(path: Any, args: argparse.Namespace, **kwargs: Any) -> int:
    from rlm_tui.tui.app import RlmApp

    app = RlmApp(path, context_limit=args.context_limit, **kwargs)
    app.run()
    return app.return_code or 0
