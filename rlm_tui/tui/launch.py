"""The app's commands: `run` without --headless (the engine as a subprocess), `attach` and `replay`."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Any

from rlm_tui.cli import UserError, db_path_of, make_client, resolve_models
from rlm_tui.env import load_environment


def run_in_app(args: argparse.Namespace) -> int:
    """Check the arguments as the headless path does, start it as a subprocess, and open the app on its run."""
    import subprocess
    import tempfile
    from pathlib import Path

    from rlm_tui.events import new_id

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
            "--memory-mb", str(args.memory_mb),
            "--scripted-delay", str(args.scripted_delay)]
    argv += ["--base-url", base_url] if base_url else []
    for key, value in args.env_arg:
        argv += ["--env-arg", f"{key}={value}"]
    log = Path(tempfile.mkstemp(prefix=f"rlm-tui-{run_id[:8]}-", suffix=".log")[1])
    with open(log, "wb") as out:
        # a session of its own: the terminal's ctrl+c goes to the app, which decides what the run gets
        engine = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    from rlm_tui.tui.app import RlmApp, last_line

    app = RlmApp(path, run_id=run_id, follow=True, engine=engine, engine_log=log, context_limit=args.context_limit)
    signal.signal(signal.SIGHUP, lambda *_: _hung_up(path, run_id))
    try:
        app.run()
    finally:
        if app.return_code != 0 and engine.poll() is None:  # the app crashed: do not leave the run behind
            engine.send_signal(signal.SIGINT)
    rc = engine.poll()
    if rc is None:
        print(f"run {run_id} goes on in the background (pid {engine.pid}); follow it with "
              f"`rlm-tui attach {run_id[:8]}`; engine log: {log}", file=sys.stderr)
        return 0
    if rc != 0 and not app.stopping:
        print(f"rlm-tui: error: {last_line(log) or f'the engine exited with status {rc}'} (log: {log})", file=sys.stderr)
        return 1
    print(run_id)
    return 0


def _hung_up(path: Any, run_id: str) -> None:
    """The terminal went away: leave the run going, unpaused, as if the user had chosen to leave it running."""
    from rlm_tui.store import open_db, send_command

    try:
        send_command(open_db(path), run_id, "resume")  # nobody is left to resume a paused rollout
    finally:
        os._exit(129)


def cmd_attach(args: argparse.Namespace) -> int:
    from rlm_tui.store import list_runs, open_db, resolve_run_id

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
    return _open_app(path, args, run_id=run_id, follow=True)


def cmd_replay(args: argparse.Namespace) -> int:
    from rlm_tui.store import StoreError, get_rollout, open_db, resolve_rollout_id, resolve_run_id

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

    RlmApp(path, context_limit=args.context_limit, **kwargs).run()
    return 0
