"""`rlm-tui attach` and `rlm-tui replay`: the app on a run another process executes, or on a stored one."""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import closing

from rlm_tui.commands.common import UserError, argtype, context_limit, db_path_of, id_prefix


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    attach = sub.add_parser("attach", parents=[common], help="follow and steer a run another process is executing")
    attach.add_argument(
        "run_id", nargs="?", type=argtype(id_prefix), help="run id or prefix (default: the newest running run)"
    )
    attach.add_argument(
        "--approve", action="store_true", help="from now on each cell the model proposes waits for your decision"
    )
    replay = sub.add_parser("replay", parents=[common], help="open the runs view, or replay a run or rollout")
    replay.add_argument(
        "id", nargs="?", type=argtype(id_prefix), help="run or rollout id or prefix (default: the runs view)"
    )
    for parser, handler in ((attach, cmd_attach), (replay, cmd_replay)):
        parser.add_argument(
            "--context-limit", type=argtype(context_limit), default=128_000, help="for the context gauge"
        )
        parser.set_defaults(handler=handler)


def _need_terminal(command: str) -> None:
    """Without a terminal the app would draw into a pipe or a file forever (it draws on stderr)."""
    if os.environ.get("TEXTUAL_DRIVER", "").endswith(":WebDriver"):  # `rlm-tui serve`: it speaks over pipes
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty() and sys.stderr.isatty()):
        raise UserError(f"{command} needs a terminal; use `rlm-tui show` or `rlm-tui export` instead")


def cmd_attach(args: argparse.Namespace) -> int:
    from rlm_tui.store import list_runs, open_db, resolve_run_id, send_command
    from rlm_tui.tui.launch import leave_running_on_hangup, open_app

    _need_terminal("attach")
    path = db_path_of(args)
    with closing(open_db(path, create=False)) as db:
        if args.run_id:
            run_id = resolve_run_id(db, args.run_id)
        else:
            running = [r["id"] for r in list_runs(db) if r["status"] == "running"]
            if not running:
                raise UserError("no run is running; `rlm-tui replay` opens finished ones")
            run_id = running[0]
        if args.approve:
            send_command(db, run_id, "approval", text="on")
    leave_running_on_hangup(path, run_id)
    return open_app(path, context_limit=args.context_limit, run_id=run_id, follow=True)


def cmd_replay(args: argparse.Namespace) -> int:
    from rlm_tui.store import open_db, resolve_run_or_rollout
    from rlm_tui.tui.launch import open_app

    _need_terminal("replay")
    path = db_path_of(args)
    with closing(open_db(path, create=False)) as db:
        run_id, rollout_id = resolve_run_or_rollout(db, args.id) if args.id else (None, None)
    return open_app(
        path, context_limit=args.context_limit, run_id=run_id, rollout_id=rollout_id, follow=False if run_id else None
    )
