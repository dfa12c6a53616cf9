"""The numbers a report shows, as plain rows: pure functions of the rollouts."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from typing import Any

from rlm_tui.env import EnvError, Slice, environment_class
from rlm_tui.report.data import Row

MODE_ORDER = ("llm", "rlm", "rlm-tips")


def mean_se(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, standard error of the mean (sample standard deviation / sqrt n), and n."""
    xs = list(values)
    if not xs:
        return math.nan, math.nan, 0
    se = statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else 0.0
    return statistics.fmean(xs), se, len(xs)


def _mode_key(mode: str) -> int:
    return MODE_ORDER.index(mode) if mode in MODE_ORDER else len(MODE_ORDER)


def by_env_mode(rows: list[Row]) -> dict[tuple[str, str], list[Row]]:
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.env, row.mode), []).append(row)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0][0], _mode_key(kv[0][1]))))


def envs(rows: list[Row]) -> list[str]:
    return sorted({r.env for r in rows})


def modes(rows: list[Row]) -> list[str]:
    return sorted({r.mode for r in rows}, key=_mode_key)


def reward_table(rows: list[Row]) -> list[dict[str, Any]]:
    out = []
    for (env, mode), group in by_env_mode(rows).items():
        mean, se, n = mean_se(r.reward for r in group)
        out.append({"env": env, "mode": mode, "n": n, "reward": mean, "se": se})
    return out


def lift_table(rows: list[Row]) -> list[dict[str, Any]]:
    """Each RLM mode's mean reward minus the LLM's, per environment (standard errors add in quadrature)."""
    rewards = {(r["env"], r["mode"]): r for r in reward_table(rows)}
    out = []
    for (env, mode), r in rewards.items():
        base = rewards.get((env, "llm"))
        if mode == "llm" or base is None:
            continue
        out.append(
            {"env": env, "mode": mode, "lift": r["reward"] - base["reward"], "se": math.hypot(r["se"], base["se"])}
        )
    return out


def token_table(rows: list[Row]) -> list[dict[str, Any]]:
    out = []
    for (env, mode), group in by_env_mode(rows).items():
        mean = lambda name: statistics.fmean(r.m(name) for r in group)  # noqa: E731, B023 - used in this iteration
        out.append(
            {
                "env": env,
                "mode": mode,
                "main_prompt": mean("main_rlm_prompt_tokens"),
                "main_completion": mean("main_rlm_completion_tokens"),
                "sub_prompt": mean("sub_llm_prompt_tokens"),
                "sub_completion": mean("sub_llm_completion_tokens"),
            }
        )
    return out


def efficiency_table(rows: list[Row]) -> list[dict[str, Any]]:
    """Mean reward per mean main-model token, and that ratio over the LLM mode's in the same environment."""
    ratios = {}
    for (env, mode), group in by_env_mode(rows).items():
        tokens = statistics.fmean(r.main_tokens for r in group)
        ratios[(env, mode)] = statistics.fmean(r.reward for r in group) / tokens if tokens else math.nan
    out = []
    for (env, mode), ratio in ratios.items():
        base = ratios.get((env, "llm"))
        relative = ratio / base if base and not math.isnan(base) else math.nan
        out.append({"env": env, "mode": mode, "reward_per_1k_main_tokens": ratio * 1000, "relative_to_llm": relative})
    return out


def timing_table(rows: list[Row]) -> list[dict[str, Any]]:
    out = []
    for (env, mode), group in by_env_mode(rows).items():
        wall = statistics.fmean(r.m("wall_time_seconds") for r in group)
        model = statistics.fmean(r.m("model_time_seconds") for r in group)
        repl = statistics.fmean(r.m("repl_total_time_seconds") for r in group)
        out.append(
            {
                "env": env,
                "mode": mode,
                "wall": wall,
                "model": model,
                "repl": repl,
                "other": max(wall - model - repl, 0.0),
            }
        )
    return out


def sub_call_table(rows: list[Row]) -> list[dict[str, Any]]:
    out = []
    for (env, mode), group in by_env_mode(rows).items():
        calls = [r.m("sub_llm_call_count") for r in group]
        out.append(
            {
                "env": env,
                "mode": mode,
                "mean": statistics.fmean(calls),
                "median": statistics.median(calls),
                "max": max(calls),
                "share_with_calls": sum(c > 0 for c in calls) / len(calls),
                "values": calls,
            }
        )
    return out


def by_value(
    rows: list[Row], env: str, value: Callable[[Row], Any], measure: Callable[[Row], float] = lambda r: r.reward
) -> list[dict[str, Any]]:
    """A measure's mean and standard error per value of a field (content type, context length...) and mode."""
    groups: dict[tuple[Any, str], list[float]] = {}
    for row in rows:
        if row.env == env:
            key = value(row)
            if key is not None:
                groups.setdefault((key, row.mode), []).append(measure(row))
    out = []
    for (key, mode), xs in sorted(groups.items(), key=lambda kv: (_sortable(kv[0][0]), _mode_key(kv[0][1]))):
        mean, se, n = mean_se(xs)
        out.append({"value": key, "mode": mode, "n": n, "mean": mean, "se": se})
    return out


def _sortable(value: Any) -> tuple:
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


def slices(rows: list[Row]) -> list[tuple[str, Slice]]:
    """(env, slice) for each environment in the rows, in `envs` order, as each environment declares them."""
    out = []
    for env in envs(rows):
        try:
            declared = environment_class(env).report_slices
        except EnvError:  # a run of an environment this install does not have: the common tables only
            declared = ()
        out += [(env, s) for s in declared]
    return out
