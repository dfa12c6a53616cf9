"""The report's comparison tables, as rich renders them."""

from __future__ import annotations

import math
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rlm_tui.report import stats
from rlm_tui.report.data import Row
from rlm_tui.text import printable
from rlm_tui.units import tokens


def _f(value: float, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def _table(title: str, columns: list[str], rows: list[list[str]]) -> Table | None:
    if not rows:
        return None  # e.g. no lift without an llm mode to compare with
    table = Table(title=escape(title), title_justify="left")
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i < 2 else "right", no_wrap=i < 2)
    for row in rows:
        table.add_row(*(Text(printable(cell)) for cell in row))  # names and info values are data, never markup
    return table


def tables(rows: list[Row]) -> list[Table]:
    return [t for t in _tables(rows) if t is not None]


def _tables(rows: list[Row]) -> list[Table | None]:
    out = [
        _table(
            "Mean reward (± standard error)",
            ["env", "mode", "n", "reward", "± se"],
            [[r["env"], r["mode"], str(r["n"]), _f(r["reward"]), _f(r["se"])] for r in stats.reward_table(rows)],
        ),
        _table(
            "Lift over the plain LLM",
            ["env", "mode", "lift", "± se"],
            [[r["env"], r["mode"], _f(r["lift"]), _f(r["se"])] for r in stats.lift_table(rows)],
        ),
        _table(
            "Tokens per rollout (mean)",
            ["env", "mode", "main prompt", "main completion", "sub prompt", "sub completion"],
            [
                [
                    r["env"],
                    r["mode"],
                    tokens(r["main_prompt"]),
                    tokens(r["main_completion"]),
                    tokens(r["sub_prompt"]),
                    tokens(r["sub_completion"]),
                ]
                for r in stats.token_table(rows)
            ],
        ),
        _table(
            "Main-model token efficiency",
            ["env", "mode", "reward / 1k main tokens", "relative to llm"],
            [
                [r["env"], r["mode"], _f(r["reward_per_1k_main_tokens"], 4), _f(r["relative_to_llm"], 2)]
                for r in stats.efficiency_table(rows)
            ],
        ),
        _table(
            "Time per rollout (mean seconds)",
            ["env", "mode", "wall", "main model", "REPL", "other"],
            [
                [r["env"], r["mode"], _f(r["wall"], 2), _f(r["model"], 2), _f(r["repl"], 2), _f(r["other"], 2)]
                for r in stats.timing_table(rows)
            ],
        ),
        _table(
            "Sub-LLM calls per rollout",
            ["env", "mode", "mean", "median", "max", "rollouts with calls"],
            [
                [
                    r["env"],
                    r["mode"],
                    _f(r["mean"], 1),
                    _f(r["median"], 1),
                    _f(r["max"], 0),
                    f"{r['share_with_calls']:.0%}",
                ]
                for r in stats.sub_call_table(rows)
            ],
        ),
    ]
    for env, s in stats.slices(rows):
        table = stats.by_value(rows, env, s.group) if s.table else []
        if table:
            out.append(
                _table(
                    f"{env}: reward by {s.label}",
                    [s.label, "mode", "n", "reward", "± se"],
                    [[_value(r["value"]), r["mode"], str(r["n"]), _f(r["mean"]), _f(r["se"])] for r in table],
                )
            )
    return out


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
