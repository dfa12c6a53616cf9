"""The report's comparison tables, as rich renders them: every mean with its n and 95% interval (± half-width)."""

from __future__ import annotations

import math
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rlm_tui.report import stats
from rlm_tui.report.data import Row, studied
from rlm_tui.text import printable
from rlm_tui.units import tokens, usd

CI = "± 95% CI"


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def _tok(value: float) -> str:
    return "-" if math.isnan(value) else tokens(value)


def _table(title: str, keys: list[str], columns: list[str], rows: list[list[str]]) -> Table | None:
    if not rows:
        return None  # e.g. no lift without an llm mode to compare with
    table = Table(title=escape(title), title_justify="left")
    for name in keys:
        table.add_column(escape(printable(name)), justify="left", no_wrap=True)
    for name in columns:
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(*(Text(printable(cell)) for cell in row))  # names and info values are data, never markup
    return table


def tables(rows: list[Row], by: str | None = None) -> list[Table]:
    """The tables; with `by` (an info key the rows' `part` holds) the common tables break down by it."""
    return [t for t in [*_tables(studied(rows), by), _forks(rows)] if t is not None]


def _forks(rows: list[Row]) -> Table | None:
    """Each fork beside the rollout it left from: did the change at that turn help?"""
    forks = sorted((r for r in rows if r.fork is not None), key=lambda r: (r.fork, r.rollout_id))
    return _table(
        "Forks (each against its parent rollout)",
        ["fork", "env", "mode", "parent", "at turn"],
        ["parent reward", "fork reward", "change"],
        [
            [
                r.rollout_id[:12],
                r.env,
                r.mode,
                r.fork[0][:12],
                str(r.fork[1]),
                _f(r.parent_reward),
                _f(r.reward),
                "-" if r.parent_reward is None else f"{r.reward - r.parent_reward:+.3f}",
            ]
            for r in forks
            if r.fork is not None
        ],
    )


def _tables(rows: list[Row], by: str | None) -> list[Table | None]:
    keys = ["env", by, "mode"] if by else ["env", "mode"]

    def k(r: dict[str, Any]) -> list[str]:
        return [r["env"], r["part"], r["mode"]] if by else [r["env"], r["mode"]]

    out = [
        _table(
            "Mean reward",
            keys,
            ["n", "reward", CI],
            [[*k(r), str(r["n"]), _f(r["reward"]), _f(r["ci"])] for r in stats.reward_table(rows)],
        ),
        _table(
            "Lift over the plain LLM",
            keys,
            ["n", "n llm", "lift", CI],
            [[*k(r), str(r["n"]), str(r["n_llm"]), _f(r["lift"]), _f(r["ci"])] for r in stats.lift_table(rows)],
        ),
        _table(
            "Tokens per rollout (mean)",
            keys,
            ["n", "main prompt", "main completion", "sub prompt", "sub completion", "total", CI],
            [
                [
                    *k(r),
                    str(r["n"]),
                    tokens(r["main_prompt"]),
                    tokens(r["main_completion"]),
                    tokens(r["sub_prompt"]),
                    tokens(r["sub_completion"]),
                    tokens(r["total"]),
                    _tok(r["ci"]),
                ]
                for r in stats.token_table(rows)
            ],
        ),
        _table(
            "Main-model token efficiency",
            keys,
            ["n", "reward / 1k main tokens", CI, "relative to llm", CI],
            [
                [
                    *k(r),
                    str(r["n"]),
                    _f(r["reward_per_1k_main_tokens"], 4),
                    _f(r["ci_per_1k"], 4),
                    _f(r["relative_to_llm"], 2),
                    _f(r["ci"], 2),
                ]
                for r in stats.efficiency_table(rows)
            ],
        ),
        _table(
            "Cost per rollout (mean USD, priced rollouts only)",
            keys,
            ["n", "unpriced", "main", "sub", "total", CI, "reward per $", CI],
            [
                [
                    *k(r),
                    str(r["n"]),
                    str(r["unpriced"]),
                    usd(r["main"]),
                    usd(r["sub"]),
                    usd(r["total"]),
                    usd(r["ci_total"]) if math.isfinite(r["ci_total"]) else "-",
                    _f(r["reward_per_usd"], 2),
                    _f(r["ci"], 2),
                ]
                for r in stats.cost_table(rows)
            ],
        ),
        _table(
            "Time per rollout (mean seconds)",
            keys,
            ["n", "wall", CI, "main model", "REPL", "other"],
            [
                [*k(r), str(r["n"]), _f(r["wall"], 2), _f(r["ci"], 2), _f(r["model"], 2), _f(r["repl"], 2)]
                + [_f(r["other"], 2)]
                for r in stats.timing_table(rows)
            ],
        ),
        _table(
            "Sub-LLM calls per rollout",
            keys,
            ["n", "mean", CI, "median", "max", "rollouts with calls"],
            [
                [
                    *k(r),
                    str(r["n"]),
                    _f(r["mean"], 1),
                    _f(r["ci"], 1),
                    _f(r["median"], 1),
                    _f(r["max"], 0),
                    f"{r['share_with_calls']:.0%}",
                ]
                for r in stats.sub_call_table(rows)
            ],
        ),
    ]
    for env, s in stats.slices(rows):
        table = stats.by_value(rows, env, s.group, s.measure or (lambda r: r.reward)) if s.table else []
        if table:
            split = any(r["split"] for r in table)
            out.append(
                _table(
                    f"{env}: {s.ylabel.removeprefix('mean ')} by {s.label}",
                    [s.label, "mode", *(["cell"] if split else [])],
                    ["n", "mean", CI],
                    [
                        [value_label(r["value"]), r["mode"], *([r["split"] or "-"] if split else [])]
                        + [str(r["n"]), _f(r["mean"]), _f(r["ci"])]
                        for r in table
                    ],
                )
            )
    return out


def value_label(value: Any) -> str:
    """A slice value as text: numbers compactly, a (low, high) bin as "low–high"."""
    if isinstance(value, tuple) and len(value) == 2:
        return f"{value_label(value[0])}–{value_label(value[1])}"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and value >= 1024 and value % 1024 == 0:
        return f"{value // 1024}k"
    return str(value)
