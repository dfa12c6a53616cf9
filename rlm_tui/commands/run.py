"""`rlm-tui run ENV`: headless, or the engine as a subprocess with the app open on its run."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from rlm_tui.commands.common import UserError, argtype, db_path_of, run_id
from rlm_tui.commands.options import APP_SCRIPTED_DELAY, RunOptions, add_run_options
from rlm_tui.text import printable


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    run = sub.add_parser(
        "run",
        parents=[common],
        help="run rollouts of an environment",
        epilog="environments and their knobs: see `rlm-tui envs`",
    )
    run.add_argument("env", help="environment, e.g. verbatim-copy")
    run.add_argument("--headless", action="store_true", help="no app: a progress bar, then a summary table")
    add_run_options(run)
    run.add_argument(
        "--run-id", type=argtype(run_id), help=argparse.SUPPRESS
    )  # set by the app when it starts the engine
    run.set_defaults(handler=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    headless = args.headless
    if not headless and not (sys.stdin.isatty() and sys.stdout.isatty() and sys.stderr.isatty()):
        print("rlm-tui: not a terminal; running headless", file=sys.stderr)
        headless = True
    options = RunOptions.from_args(args)
    if options.scripted_delay is None:
        options = replace(options, scripted_delay=0.0 if headless else APP_SCRIPTED_DELAY)
    if not headless:
        return _run_in_app(args, options)
    from rlm_tui.commands.recorded import recording
    from rlm_tui.env import load_environment
    from rlm_tui.headless import print_summary

    env = load_environment(args.env, dict(options.env_arg))
    options = options.resolved()
    client = options.client(env)
    config = options.run_config(args.env)
    path = db_path_of(args)
    if config.executor == "ray":
        check_cluster(config)
    with recording(path) as recorder:
        run, state = recorder.run(config, env, client, run_id=args.run_id)
    print_summary(state)
    if state.status == "failed":
        print(f"rlm-tui: error: {printable(str(run.error))}", file=sys.stderr)
        return 1
    failed = [r for r in state.rollouts.values() if r.status == "failed"]
    if failed and len(failed) == len(state.rollouts):
        print(f"rlm-tui: error: every rollout failed; the first: {printable(str(failed[0].error))}", file=sys.stderr)
        return 1
    if state.status == "killed":
        print(f"rlm-tui: run {run.id} was stopped; what it did is in {path}", file=sys.stderr)
        return 130
    return 0


def check_cluster(config: object) -> None:
    """Before a Ray run is stored: the cluster must be there and able to jail, else one line, exit 2."""
    from rlm_tui.engine.ray_executor import jailing_nodes
    from rlm_tui.engine.ray_limits import ClusterError

    try:
        jailing_nodes(config)
    except ClusterError as exc:
        raise UserError(str(exc)) from None


def engine_argv(env: str, options: RunOptions, *, run_id: str, db: str) -> list[str]:
    """The headless run the app starts as its engine: every run option passed on as the user gave it."""
    return [
        sys.executable,
        "-m",
        "rlm_tui.cli",
        "run",
        env,
        "--headless",
        "--run-id",
        run_id,
        "--db",
        db,
        *options.argv(),
    ]


def _run_in_app(args: argparse.Namespace, options: RunOptions) -> int:
    """Check the terminal and the database, then hand the engine's command line to the app.

    The environment, its knobs, the model's key and endpoint are checked by the engine, which fails with them as
    one line before its run exists: checking here too would load them twice, import the model clients and probe
    the server, all before the engine even starts."""
    from pathlib import Path

    from rlm_tui.events import new_id
    from rlm_tui.store import open_db

    if not sys.stderr.isatty():
        raise UserError("the app draws on stderr, which is not a terminal; add --headless, or leave stderr alone")
    options = options.resolved()
    path = Path(db_path_of(args)).resolve()
    open_db(path).close()  # a bad --db fails here, as one line, before any app opens
    run = args.run_id or new_id()
    from rlm_tui.tui.launch import run_in_app

    return run_in_app(
        path, run, engine_argv(args.env, options, run_id=run, db=str(path)), context_limit=options.context_limit
    )
