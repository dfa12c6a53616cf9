"""The numbers a report shows, as plain rows: pure functions of the rollouts.

Every mean comes with its n and a 95% confidence interval: mean ± 1.96 · standard error (sample sd / sqrt n),
the normal approximation, for rewards and costs alike; a ratio's standard error comes from the delta method.
One rollout gives no interval (NaN, shown as "-")."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rlm_tui.env import EnvError, Slice, environment_class
from rlm_tui.report.data import Row

MODE_ORDER = ("llm", "rlm", "rlm-tips")
Z95 = 1.96  # two-sided 95% quantile of the normal distribution


def mean_se(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, standard error of the mean (sample standard deviation / sqrt n; NaN below two values), and n."""
    xs = list(values)
    if not xs:
        return math.nan, math.nan, 0
    se = statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else math.nan
    return statistics.fmean(xs), se, len(xs)


def mean_ci(values: Iterable[float]) -> dict[str, Any]:
    """{"n", "mean", "se", "ci"}: `ci` is the half-width of the 95% interval, Z95 · se."""
    mean, se, n = mean_se(values)
    return {"n": n, "mean": mean, "se": se, "ci": Z95 * se}


def ratio_se(num: Sequence[float], den: Sequence[float]) -> tuple[float, float]:
    """mean(num) / mean(den) and its standard error by the delta method (paired values, NaN below two)."""
    n = len(num)
    a, b = statistics.fmean(num), statistics.fmean(den)
    if not b:
        return math.nan, math.nan
    q = a / b
    if n < 2:
        return q, math.nan
    var_a, var_b = statistics.variance(num), statistics.variance(den)
    cov = sum((x - a) * (y - b) for x, y in zip(num, den)) / (n - 1)
    var_q = (var_a - 2 * q * cov + q * q * var_b) / (b * b * n)
    return q, math.sqrt(max(var_q, 0.0))


def _mode_key(mode: str) -> int:
    return MODE_ORDER.index(mode) if mode in MODE_ORDER else len(MODE_ORDER)


def by_env_mode(rows: list[Row]) -> dict[tuple[str, str, str], list[Row]]:
    """Rows per (env, part, mode); `part` is the --by breakdown ("" without one)."""
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.env, row.part, row.mode), []).append(row)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], _mode_key(kv[0][2]))))


def envs(rows: list[Row]) -> list[str]:
    return sorted({r.env for r in rows})


def modes(rows: list[Row]) -> list[str]:
    return sorted({r.mode for r in rows}, key=_mode_key)


def reward_table(rows: list[Row]) -> list[dict[str, Any]]:
    out = []
    for (env, part, mode), group in by_env_mode(rows).items():
        c = mean_ci(r.reward for r in group)
        out.append({"env": env, "part": part, "mode": mode, "reward": c["mean"], **c})
    return out


def lift_table(rows: list[Row]) -> list[dict[str, Any]]:
    """Each RLM mode's mean reward minus the LLM's, per environment (standard errors add in quadrature)."""
    rewards = {(r["env"], r["part"], r["mode"]): r for r in reward_table(rows)}
    out = []
    for (env, part, mode), r in rewards.items():
        base = rewards.get((env, part, "llm"))
        if mode == "llm" or base is None:
            continue
        se = math.hypot(r["se"], base["se"])
        out.append(
            {
                "env": env,
                "part": part,
                "mode": mode,
                "n": r["n"],
                "n_llm": base["n"],
                "lift": r["reward"] - base["reward"],
                "se": se,
                "ci": Z95 * se,
            }
        )
    return out


TOKEN_PARTS = (
    "main_rlm_prompt_tokens",
    "main_rlm_completion_tokens",
    "sub_llm_prompt_tokens",
    "sub_llm_completion_tokens",
)


def token_table(rows: list[Row]) -> list[dict[str, Any]]:
    """Mean tokens per rollout in four parts, and the total's mean with its interval."""
    out = []
    for (env, part, mode), group in by_env_mode(rows).items():
        means = [statistics.fmean(r.m(name) for r in group) for name in TOKEN_PARTS]
        total = mean_ci(sum(r.m(name) for name in TOKEN_PARTS) for r in group)
        out.append(
            {
                "env": env,
                "part": part,
                "mode": mode,
                "n": total["n"],
                "main_prompt": means[0],
                "main_completion": means[1],
                "sub_prompt": means[2],
                "sub_completion": means[3],
                "total": total["mean"],
                "ci": total["ci"],
            }
        )
    return out


def efficiency_table(rows: list[Row]) -> list[dict[str, Any]]:
    """Mean reward per mean main-model token, and that ratio over the LLM mode's in the same environment.

    The relative ratio's standard error combines the two ratios' relative errors in quadrature."""
    ratios = {}
    for key, group in by_env_mode(rows).items():
        q, se = ratio_se([r.reward for r in group], [r.main_tokens for r in group])
        ratios[key] = (q, se, len(group))
    out = []
    for (env, part, mode), (q, se, n) in ratios.items():
        base = ratios.get((env, part, "llm"))
        relative = rel_ci = math.nan
        if base and base[0] and not math.isnan(base[0]) and not math.isnan(q):
            relative = q / base[0]
            if mode != "llm":  # the LLM over itself is 1 exactly: no interval
                rel_ci = Z95 * abs(relative) * math.hypot(se / q if q else math.nan, base[1] / base[0])
        out.append(
            {
                "env": env,
                "part": part,
                "mode": mode,
                "n": n,
                "reward_per_1k_main_tokens": q * 1000,
                "ci_per_1k": Z95 * se * 1000,
                "relative_to_llm": relative,
                "ci": rel_ci,
            }
        )
    return out


def cost_table(rows: list[Row]) -> list[dict[str, Any]]:
    """Mean USD per rollout (main, sub, total) and reward per dollar, over the rollouts whose cost is known; a
    group with none priced is left out, never counted at $0."""
    out = []
    for (env, part, mode), group in by_env_mode(rows).items():
        priced = [r for r in group if r.cost is not None]
        if not priced:
            continue
        costs = [r.cost or 0.0 for r in priced]
        total, total_se, n = mean_se(costs)
        q, se = ratio_se([r.reward for r in priced], costs)
        out.append(
            {
                "env": env,
                "part": part,
                "mode": mode,
                "n": n,
                "unpriced": len(group) - n,
                "main": sum(r.m("main_rlm_cost_usd") for r in priced) / n,
                "sub": sum(r.m("sub_llm_cost_usd") for r in priced) / n,
                "total": total,
                "ci_total": Z95 * total_se,
                "reward_per_usd": q,
                "ci": Z95 * se,
            }
        )
    return out


def timing_table(rows: list[Row]) -> list[dict[str, Any]]:
    out = []
    for (env, part, mode), group in by_env_mode(rows).items():
        wall = mean_ci(r.m("wall_time_seconds") for r in group)
        model = statistics.fmean(r.m("model_time_seconds") for r in group)
        repl = statistics.fmean(r.m("repl_total_time_seconds") for r in group)
        out.append(
            {
                "env": env,
                "part": part,
                "mode": mode,
                "n": wall["n"],
                "wall": wall["mean"],
                "ci": wall["ci"],
                "model": model,
                "repl": repl,
                "other": max(wall["mean"] - model - repl, 0.0),
            }
        )
    return out


def sub_call_table(rows: list[Row]) -> list[dict[str, Any]]:
    out = []
    for (env, part, mode), group in by_env_mode(rows).items():
        calls = [r.m("sub_llm_call_count") for r in group]
        c = mean_ci(calls)
        out.append(
            {
                "env": env,
                "part": part,
                "mode": mode,
                "n": c["n"],
                "mean": c["mean"],
                "ci": c["ci"],
                "median": statistics.median(calls),
                "max": max(calls),
                "share_with_calls": sum(x > 0 for x in calls) / len(calls),
                "values": calls,
            }
        )
    return out


def cell_split(rows: list[Row], env: str, value: Callable[[Row], Any]) -> Callable[[Row], str]:
    """A row's settings that vary between this environment's grid cells and that the slice's value does not
    already tell apart, as "knob=value, ..." (e.g. math-python's tips beside its timeout); "" when none do."""
    mine = [r for r in rows if r.env == env]
    knobs = sorted({k for r in mine for k in r.env_args})
    varying = [k for k in knobs if len({_hashable(r.env_args.get(k)) for r in mine}) > 1]
    kept = []
    for k in varying:
        seen: dict[Any, set] = {}
        for r in mine:
            seen.setdefault(_hashable(value(r)), set()).add(_hashable(r.env_args.get(k)))
        if any(len(v) > 1 for v in seen.values()):  # one slice value holds cells with different settings
            kept.append(k)
    return lambda row: ", ".join(f"{k}={row.env_args.get(k, '-')}" for k in kept)


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:  # a list or dict from an example's info
        return repr(value)
    return value


def by_value(
    rows: list[Row], env: str, value: Callable[[Row], Any], measure: Callable[[Row], float] = lambda r: r.reward
) -> list[dict[str, Any]]:
    """A measure's mean and interval per value of a field (content type, context length bin...), mode, and the
    grid-cell settings that would otherwise be pooled (`split`, see `cell_split`)."""
    split = cell_split(rows, env, value)
    groups: dict[tuple[Any, str, str], list[float]] = {}
    for row in rows:
        if row.env == env:
            key = value(row)
            if key is not None:
                groups.setdefault((_hashable(key), row.mode, split(row)), []).append(float(measure(row)))
    out = []
    for (key, mode, cells), xs in sorted(
        groups.items(), key=lambda kv: (_sortable(kv[0][0]), _mode_key(kv[0][1]), kv[0][2])
    ):
        out.append({"value": key, "mode": mode, "split": cells, **mean_ci(xs)})
    return out


def _sortable(value: Any) -> tuple:
    """Numbers (and bins given as (low, high)) in numeric order, before any text."""
    if isinstance(value, tuple) and value and isinstance(value[0], (int, float)):
        return (0, value[0], "")
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


def series(table: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(mode, split) pairs present in a by_value table, in mode order."""
    return sorted({(r["mode"], r.get("split", "")) for r in table}, key=lambda s: (_mode_key(s[0]), s[1]))


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


def describe(rows: list[Row]) -> str:
    """What a reader must know about where the numbers came from: a simulated model, the runs' data notes."""
    notes = []
    if rows and all(r.model == "scripted" for r in rows):
        notes.append("simulated model")
    elif any(r.model == "scripted" for r in rows):
        notes.append("partly simulated model")
    notes += sorted({r.data_note for r in rows if r.data_note})
    return "; ".join(notes)
