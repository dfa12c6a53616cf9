"""The budget options on their own: `resume` raises them (they are RunOptions fields, defined once there)."""

from __future__ import annotations

import argparse
from dataclasses import fields, replace
from typing import Any

from rlm_tui.commands import common as p
from rlm_tui.commands.options import RunOptions

BUDGETS = {  # the budget options, as RunOptions names them: (whose budget, its kind)
    "max_tokens_total": ("rollout", "tokens"),
    "max_usd": ("rollout", "usd"),
    "max_seconds": ("rollout", "seconds"),
    "max_sub_calls": ("rollout", "sub_calls"),
    "run_max_tokens_total": ("run", "tokens"),
    "run_max_usd": ("run", "usd"),
    "run_max_seconds": ("run", "seconds"),
    "run_max_sub_calls": ("run", "sub_calls"),
}


def add_budget_options(parser: argparse.ArgumentParser) -> None:
    """Only the budget options (`resume` raises them), defined as `run` defines them."""
    for f in fields(RunOptions):
        if f.name in BUDGETS:
            m = f.metadata
            parser.add_argument(
                *m["flags"], dest=f.name, type=p.argtype(m["parse"]), metavar=m["metavar"], help=m["help"]
            )


def raised_budgets(config: Any, args: argparse.Namespace) -> Any:
    """`config` with the budgets given on the command line in place of the recorded ones; the others stay."""
    given = {name: getattr(args, name) for name in BUDGETS if getattr(args, name, None) is not None}
    if not given:
        return config
    rollout = {BUDGETS[n][1]: v for n, v in given.items() if BUDGETS[n][0] == "rollout"}
    run = {BUDGETS[n][1]: v for n, v in given.items() if BUDGETS[n][0] == "run"}
    settings = replace(config.rollout, budget=replace(config.rollout.budget, **rollout))
    config = replace(config, rollout=settings, run_budget=replace(config.run_budget, **run))
    if "usd" in rollout or "usd" in run:
        unpriced = [
            m for m, price in ((settings.model, settings.price), (settings.sub_model, settings.sub_price)) if not price
        ]
        if unpriced:
            raise p.UserError(f"a dollar budget needs prices, and the run recorded none for {unpriced[0]}")
    return config
