"""The report's figures, written as PNG and SVG with matplotlib (no display needed)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rlm_tui.report import stats  # noqa: E402
from rlm_tui.report.data import Row  # noqa: E402

COLORS = {"llm": "#E24A33", "rlm": "#348ABD", "rlm-tips": "#988ED5"}  # the study's colours for its three modes
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]


def _color(mode: str) -> str:
    return COLORS.get(mode, "#2ca02c")


def _save(fig: plt.Figure, out: Path, name: str) -> list[Path]:
    fig.tight_layout()
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    for path in paths:
        fig.savefig(path, dpi=120)
    plt.close(fig)
    return paths


def _grouped_bars(
    ax: plt.Axes, table: list[dict[str, Any]], group: str, value: str, err: str | None, modes: list[str]
) -> None:
    groups = list(dict.fromkeys(str(r[group]) for r in table))
    width = 0.8 / max(len(modes), 1)
    for i, mode in enumerate(modes):
        cells = {str(r[group]): r for r in table if r["mode"] == mode}
        xs = [g for g, _ in enumerate(groups) if groups[g] in cells]
        ys = [cells[groups[g]][value] for g in xs]
        errs = [cells[groups[g]][err] for g in xs] if err else None
        ax.bar(
            [x + (i - (len(modes) - 1) / 2) * width for x in xs],
            ys,
            width,
            yerr=errs,
            capsize=3,
            label=mode,
            color=_color(mode),
        )
    ax.set_xticks(range(len(groups)), groups)
    ax.legend(title="mode")


def reward(rows: list[Row], out: Path) -> list[Path]:
    fig, ax = plt.subplots(figsize=(7, 4))
    _grouped_bars(ax, stats.reward_table(rows), "env", "reward", "se", stats.modes(rows))
    ax.set(
        title="Mean reward by environment and mode (± standard error)",
        xlabel="environment",
        ylabel="mean reward",
        ylim=(0, 1.05),
    )
    return _save(fig, out, "reward")


def lift(rows: list[Row], out: Path) -> list[Path]:
    table = stats.lift_table(rows)
    if not table:
        return []
    fig, ax = plt.subplots(figsize=(7, 4))
    _grouped_bars(ax, table, "env", "lift", "se", [m for m in stats.modes(rows) if m != "llm"])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set(title="Reward lift over the plain LLM", xlabel="environment", ylabel="mean reward − LLM mean reward")
    return _save(fig, out, "lift")


def _per_env(rows: list[Row], title: str) -> tuple[plt.Figure, list[plt.Axes]]:
    names = stats.envs(rows)
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 4), squeeze=False)
    fig.suptitle(title)
    return fig, list(axes[0])


def _stacked(
    rows: list[Row],
    table: list[dict[str, Any]],
    parts: list[tuple[str, str]],
    title: str,
    ylabel: str,
    out: Path,
    name: str,
) -> list[Path]:
    fig, axes = _per_env(rows, title)
    for ax, env in zip(axes, stats.envs(rows)):
        cells = [r for r in table if r["env"] == env]
        bottom = [0.0] * len(cells)
        for key, label in parts:
            ys = [c[key] for c in cells]
            ax.bar([c["mode"] for c in cells], ys, bottom=bottom, label=label)
            bottom = [b + y for b, y in zip(bottom, ys)]
        ax.set(title=env, xlabel="mode", ylabel=ylabel)
        ax.legend(fontsize="small")
    return _save(fig, out, name)


def tokens(rows: list[Row], out: Path) -> list[Path]:
    parts = [
        ("main_prompt", "main prompt"),
        ("main_completion", "main completion"),
        ("sub_prompt", "sub-LLM prompt"),
        ("sub_completion", "sub-LLM completion"),
    ]
    return _stacked(
        rows,
        stats.token_table(rows),
        parts,
        "Tokens per rollout: main model vs sub-LLMs",
        "mean tokens per rollout",
        out,
        "tokens",
    )


def timing(rows: list[Row], out: Path) -> list[Path]:
    parts = [("model", "main model"), ("repl", "REPL (incl. sub-LLMs)"), ("other", "other")]
    return _stacked(
        rows, stats.timing_table(rows), parts, "Wall time per rollout", "mean seconds per rollout", out, "timing"
    )


def efficiency(rows: list[Row], out: Path) -> list[Path]:
    table = [r for r in stats.efficiency_table(rows) if not math.isnan(r["relative_to_llm"])]
    if not table:
        return []
    fig, ax = plt.subplots(figsize=(7, 4))
    _grouped_bars(ax, table, "env", "relative_to_llm", None, stats.modes(rows))
    ax.axhline(1, color="black", linewidth=0.8)
    ax.set(
        title="Main-model token efficiency relative to the LLM",
        xlabel="environment",
        ylabel="(reward / main tokens) ÷ LLM's",
    )
    return _save(fig, out, "efficiency")


def sub_calls(rows: list[Row], out: Path) -> list[Path]:
    fig, axes = _per_env(rows, "Sub-LLM calls per rollout")
    table = stats.sub_call_table(rows)
    for ax, env in zip(axes, stats.envs(rows)):
        cells = [r for r in table if r["env"] == env]
        ax.boxplot([c["values"] for c in cells], tick_labels=[c["mode"] for c in cells], showmeans=True)
        ax.set(title=env, xlabel="mode", ylabel="sub-LLM calls per rollout")
    return _save(fig, out, "sub_calls")


def scatter(rows: list[Row], out: Path) -> list[Path]:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, env in enumerate(stats.envs(rows)):
        for mode in stats.modes(rows):
            pts = [(r.main_tokens, r.reward) for r in rows if r.env == env and r.mode == mode]
            if pts:
                ax.scatter(
                    *zip(*pts), marker=MARKERS[i % len(MARKERS)], color=_color(mode), alpha=0.7, label=f"{env} · {mode}"
                )
    ax.set(
        title="Main-model tokens vs reward", xlabel="main-model tokens per rollout", ylabel="reward", ylim=(-0.05, 1.05)
    )
    ax.legend(fontsize="small", ncols=2)
    return _save(fig, out, "scatter")


def _by(
    rows: list[Row],
    env: str,
    value: Callable[[Row], Any],
    label: str,
    out: Path,
    name: str,
    measure: Callable[[Row], float] = lambda r: r.reward,
    ylabel: str = "mean reward",
) -> list[Path]:
    table = stats.by_value(rows, env, value, measure)
    if not table:
        return []
    fig, ax = plt.subplots(figsize=(7, 4))
    _grouped_bars(
        ax, table, "value", "mean", "se", [m for m in stats.modes(rows) if any(r["mode"] == m for r in table)]
    )
    ax.set(title=f"{env}: {ylabel} by {label}", xlabel=label, ylabel=ylabel)
    return _save(fig, out, name)


def per_environment(rows: list[Row], out: Path) -> list[Path]:
    """The figures each environment declares in its `report_slices`."""
    paths: list[Path] = []
    for env, s in stats.slices(rows):
        if s.figure is not None:
            paths += _by(rows, env, s.group, s.label, out, s.figure, s.measure or (lambda r: r.reward), s.ylabel)
    return paths


MAIN = (reward, lift, tokens, efficiency, timing, sub_calls, scatter)


def write_all(rows: list[Row], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for figure in MAIN:
        paths += figure(rows, out)
    return paths + per_environment(rows, out)
