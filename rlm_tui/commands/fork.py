"""`rlm-tui fork ROLLOUT --at-turn N`: a new run whose one rollout starts at turn N of a stored one."""

from __future__ import annotations

import argparse
import sys
from contextlib import closing
from dataclasses import replace
from typing import Any

from rlm_tui.commands.common import UserError, argtype, at_most, db_path_of, id_prefix, not_empty, run_id
from rlm_tui.text import printable

MAX_CODE_BYTES = 1_000_000  # an edited cell larger than this is not code anyone wrote by hand


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "fork", parents=[common], help="start a new rollout at a turn of a stored one, its REPL rebuilt exactly"
    )
    p.add_argument("rollout_id", metavar="ROLLOUT", type=argtype(id_prefix), help="rollout id (a unique prefix)")
    p.add_argument(
        "--at-turn", required=True, type=argtype(at_most(100_000)), metavar="N", help="the turn the fork takes anew"
    )
    p.add_argument("--message", type=argtype(not_empty), help="a user message added before the model's turn N")
    p.add_argument("--edit-code", metavar="FILE", help="run this file's code as turn N's cell instead of the parent's")
    p.add_argument("--model", type=argtype(not_empty), help="the root model from turn N on (default: the parent's)")
    p.add_argument("--base-url", help="its OpenAI-compatible server (default: the parent run's)")
    p.add_argument(
        "--approve", action="store_true", help="each cell the model proposes after the fork waits for the operator"
    )
    p.add_argument("--headless", action="store_true", help="no app: a summary table when the fork ends")
    p.add_argument("--run-id", type=argtype(run_id), help=argparse.SUPPRESS)  # set by the app when it forks
    p.set_defaults(handler=cmd_fork)


def _edited_code(path: str) -> str:
    try:
        with open(path, "rb") as f:  # at most one byte past the cap: /dev/zero or a huge file is refused, not read
            data = f.read(MAX_CODE_BYTES + 1)
    except OSError as exc:
        raise UserError(f"cannot read --edit-code {path}: {exc.strerror}") from None
    if len(data) > MAX_CODE_BYTES:
        raise UserError(f"--edit-code {path} is over {MAX_CODE_BYTES:,} bytes")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise UserError(f"--edit-code {path} is not UTF-8 text") from None


def cmd_fork(args: argparse.Namespace) -> int:
    from rlm_tui.commands.recorded import recorded_config, recording
    from rlm_tui.engine.fork import Fork, ForkError, fork_point
    from rlm_tui.engine.models import make_client
    from rlm_tui.engine.simulated import Simulation
    from rlm_tui.env import load_environment
    from rlm_tui.headless import print_summary
    from rlm_tui.store import get_rollout, get_run, open_db, read_events, resolve_rollout_id

    code = _edited_code(args.edit_code) if args.edit_code is not None else None
    path = db_path_of(args)
    with closing(open_db(path, create=False)) as db:
        rollout_id = resolve_rollout_id(db, args.rollout_id)
        rollout = get_rollout(db, rollout_id)
        run = get_run(db, rollout["run_id"]) if rollout is not None else None
        if run is None:
            raise UserError(f"rollout {rollout_id} belongs to no stored run")
        config = recorded_config(run, "forked")
        if config.rollout.mode == "llm":
            raise UserError(f"rollout {rollout_id} ran in llm mode, which has no REPL to rebuild; fork an rlm rollout")
        try:
            point = fork_point([e for _, e in read_events(db, run_id=run["id"])], rollout_id, args.at_turn)
        except ForkError as exc:
            raise UserError(str(exc)) from None
    fork = Fork(point=point, message=args.message, code=code)
    if code is not None:
        from rlm_tui.engine.fork import edited_reply

        try:
            edited_reply(point, code)
        except ForkError as exc:
            raise UserError(str(exc)) from None
    settings = replace(config.rollout, model=args.model or config.rollout.model, approve=args.approve)
    config = replace(
        config,
        rollout=settings,
        base_url=args.base_url or config.base_url,
        example_ids=(point.example_id,),
        grid=None,
        cell=None,
        forked_from=point.lineage,
    )
    env = load_environment(config.env, config.env_args)
    if point.example_id not in {e.id for e in env.examples(config.num_examples, config.seed)}:
        raise UserError(
            f"example {point.example_id} of rollout {rollout_id} is no longer among {config.env}'s examples"
        )
    if not args.headless and sys.stdin.isatty() and sys.stdout.isatty() and sys.stderr.isatty():
        return _fork_in_app(args, rollout_id, path, config)
    client = make_client(
        env, settings.model, config.base_url, simulation=Simulation.recorded(config.seed, config.simulation)
    )
    with recording(path) as recorder:
        new_run, state = recorder.run(config, env, client, fork=fork, run_id=args.run_id)
    print_summary(state)
    print(f"rlm-tui: run {new_run.id} forks rollout {rollout_id} at turn {point.turn}", file=sys.stderr)
    if fork.diverged:
        turns = ", ".join(str(t) for t in fork.diverged)
        print(
            f"rlm-tui: warning: the rebuilt REPL diverged from the parent at turn{'s' * (len(fork.diverged) > 1)} "
            f"{turns}: the cell's output differs from the recorded one",
            file=sys.stderr,
        )
    if state.status != "done":
        print(f"rlm-tui: error: run {new_run.id} {state.status}: {printable(str(new_run.error))}", file=sys.stderr)
        return 1
    return 0


def _fork_in_app(args: argparse.Namespace, rollout_id: str, path: Any, config: Any) -> int:
    """The fork as a headless engine of its own, with the app open on its run, as `run` does."""
    from pathlib import Path

    from rlm_tui.events import new_id
    from rlm_tui.tui.launch import run_in_app

    run = new_id()
    argv = [sys.executable, "-m", "rlm_tui.cli", "fork", rollout_id, "--at-turn", str(args.at_turn), "--headless"]
    for flag, value in (("--message", args.message), ("--edit-code", args.edit_code), ("--model", args.model)):
        if value is not None:
            argv += [flag, str(Path(value).resolve()) if flag == "--edit-code" else value]
    argv += ["--base-url", args.base_url] if args.base_url else []
    argv += ["--approve"] if args.approve else []
    full = Path(path).resolve()
    argv += ["--db", str(full), "--run-id", run]
    return run_in_app(full, run, argv, context_limit=config.context_limit or 128_000)
