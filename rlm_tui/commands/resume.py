"""`rlm-tui resume RUN`: run again, in the same run, the rollouts a stopped or killed run did not finish."""

from __future__ import annotations

import argparse
import sys
from contextlib import closing

from rlm_tui.commands.budgets import add_budget_options, raised_budgets
from rlm_tui.commands.common import UserError, db_path_of

BUDGET_STOPS = ("budget_tokens", "budget_usd", "budget_seconds", "budget_sub_calls")


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("resume", parents=[common], help="finish the rollouts of a stopped or killed run, in that run")
    p.add_argument("run_id", metavar="RUN", help="run id or prefix")
    add_budget_options(p)  # raised: the rollouts a budget stopped go on from where they stopped
    p.set_defaults(handler=cmd_resume)


def cmd_resume(args: argparse.Namespace) -> int:
    """The run goes on with the settings its run_started recorded, every run option among them."""
    from rlm_tui.commands.recorded import recorded_config, recording
    from rlm_tui.engine.models import make_client
    from rlm_tui.engine.simulated import Simulation
    from rlm_tui.env import load_environment
    from rlm_tui.headless import print_summary
    from rlm_tui.store import get_run, open_db, read_events, resolve_run_id
    from rlm_tui.text import printable

    path = db_path_of(args)
    with closing(open_db(path)) as db:
        run_id = resolve_run_id(db, args.run_id)
        row = get_run(db, run_id)
        if row["status"] == "running":
            raise UserError(f"run {run_id} is still running (pid {row['pid']} on {row['hostname']}); stop it first")
        if row["config"].get("grid"):
            raise UserError(
                f"run {run_id} is a cell of grid {row['config']['grid']!r}; "
                f"resume it with `rlm-tui ablate --resume {row['config']['grid']}`"
            )
        config = recorded_config(row, "resumed")
        if config.forked_from is not None and row["done"] < row["rollouts"]:
            # resuming would start the example over from its first turn: the fork's REPL rebuild is not in the log
            lineage = config.forked_from if isinstance(config.forked_from, dict) else {}
            again = f"rlm-tui fork {lineage.get('rollout_id', 'PARENT')} --at-turn {lineage.get('turn', 'N')}"
            raise UserError(f"run {run_id} is a fork that did not finish; fork again: `{printable(again)}`")
        history = [e for _, e in read_events(db, run_id=run_id)]
        raised = raised_budgets(config, args)
        continued = _budget_stopped(history, run_id, config.rollout.mode) if raised is not config else {}
        config = raised
        if row["done"] == row["rollouts"] >= row["num_rollouts"] and not continued:
            print(f"run {run_id}: every rollout is done already; nothing to resume", file=sys.stderr)
            return 0
    env = load_environment(config.env, config.env_args)
    client = make_client(
        env, config.rollout.model, config.base_url, simulation=Simulation.recorded(config.seed, config.simulation)
    )
    with recording(path) as recorder:
        run, state = recorder.run(config, env, client, run_id=run_id, history=history, continued=continued)
    print_summary(state)
    if state.status != "done":
        print(f"rlm-tui: error: run {run_id} {state.status}: {run.error}", file=sys.stderr)
        return 1
    return 0


def _budget_stopped(history: list, run_id: str, mode: str) -> dict:
    """The rollouts a budget stopped, with where each goes on from (an llm rollout has no REPL to rebuild)."""
    from rlm_tui.engine.fork import ForkError, continuation_point
    from rlm_tui.state import fold

    if mode == "llm":
        return {}
    stopped = [r.id for r in fold(history, run_id).rollouts.values() if r.stop_reason in BUDGET_STOPS]
    try:
        return {rid: continuation_point(history, rid) for rid in stopped}
    except ForkError as exc:
        raise UserError(str(exc)) from None
