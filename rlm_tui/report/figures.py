"""The report's figures, written as PNG and SVG with matplotlib (no display needed).

Every bar carries its 95% interval (see stats) and every group its n; legends sit above the axes, never over
the bars; every title says when the model was simulated and what the runs note about their data."""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import EngFormatter

from rlm_tui.env import Slice
from rlm_tui.report import stats
from rlm_tui.report.data import Row, studied
from rlm_tui.report.render import value_label

COLORS = {"llm": "#E24A33", "rlm": "#348ABD", "rlm-tips": "#988ED5"}  # the study's colours for its three modes
PART_COLORS = ["#348ABD", "#A6CEE3", "#E24A33", "#FBC15E", "#8EBA42"]  # the parts of a stacked bar
HATCHES = ["", "//", "..", "xx", "\\\\", "oo"]  # one per kept-apart grid-cell setting beside the mode colour
MAX_JOBS = 4  # processes drawing figures at once
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]
LEGEND_COLUMNS = 4
SAVE = {"svg.fonttype": "none", "svg.hashsalt": "rlm-tui"}  # text stays text in SVG: smaller, faster, searchable
AXES_HEIGHT, BOTTOM, LEFT, RIGHT = 3.0, 0.8, 0.9, 0.25  # inches
TITLE_LINE, LEGEND_ROW, CHAR_WIDTH = 0.24, 0.26, 0.075  # inches; CHAR_WIDTH of "small" text, generously


def _color(mode: str) -> str:
    return COLORS.get(mode, "#8EBA42")


def _new(
    rows: list[Row],
    title: str,
    *,
    panels: int = 1,
    panel_width: float = 7.0,
    legend: Sequence[str] = (),
    titled: bool = False,
) -> Figure:
    """A figure with room above its axes for the title (and the data note), the legend's `legend` labels, and
    the panels' own titles when `titled`."""
    note = stats.describe(rows)
    lines = 2 if note else 1
    width = max(panel_width * panels, 6.0)
    columns = _legend_columns(legend, width)
    legend_rows = math.ceil(len(legend) / columns)
    top = 0.15 + TITLE_LINE * lines + LEGEND_ROW * legend_rows + 0.1 + (TITLE_LINE if titled else 0.0)
    height = top + AXES_HEIGHT + BOTTOM
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(
        left=LEFT / width, right=1 - RIGHT / width, bottom=BOTTOM / height, top=1 - top / height, wspace=0.35
    )
    fig.suptitle(f"{title}\n{note}" if note else title, y=1 - 0.1 / height, va="top", fontsize="large")
    fig.subplots(1, panels, squeeze=False)
    fig.legend_at = (1 - (0.15 + TITLE_LINE * lines) / height, columns)  # type: ignore[attr-defined]
    return fig


def _legend_columns(labels: list[str], width: float) -> int:
    """As many columns as fit the figure's width, at most LEGEND_COLUMNS."""
    entry = 0.6 + CHAR_WIDTH * max((len(label) for label in labels), default=0)  # handle and gap, then text
    return max(1, min(len(labels), LEGEND_COLUMNS, int((width - 0.2) // entry)))


def _legend(fig: Figure, handles: list[Any], labels: list[str]) -> None:
    top, columns = fig.legend_at  # type: ignore[attr-defined]
    if handles:
        fig.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, top),
            ncols=columns,
            frameon=False,
            fontsize="small",
        )


def _n_label(ns: list[int]) -> str:
    """One n when every bar of a group has the same, else each bar's, left to right."""
    return f"n={ns[0]}" if len(set(ns)) == 1 else "n=" + "/".join(map(str, ns))


@dataclass
class Series:
    label: str
    color: str
    hatch: str
    cells: dict[str, tuple[float, float, int]]  # group -> (mean, 95% half-width, n)


def _bars(ax: Axes, groups: list[str], series: list[Series]) -> list[Any]:
    """Grouped bars with their intervals as error bars; tick labels carry each group's n."""
    width = 0.8 / max(len(series), 1)
    handles = []
    for i, s in enumerate(series):
        xs = [g for g, name in enumerate(groups) if name in s.cells]
        means = [s.cells[groups[g]][0] for g in xs]
        cis = [_finite(s.cells[groups[g]][1]) for g in xs]
        handles.append(
            ax.bar(
                [x + (i - (len(series) - 1) / 2) * width for x in xs],
                means,
                width,
                yerr=cis,
                capsize=3,
                color=s.color,
                hatch=s.hatch,
                edgecolor="white" if s.hatch else None,
                error_kw={"elinewidth": 1, "ecolor": "black"},
            )
        )
    ticks = [f"{g}\n{_n_label([s.cells[g][2] for s in series if g in s.cells])}" for g in groups]
    ax.set_xticks(range(len(groups)), ticks, fontsize="small")
    return handles


def _finite(value: float) -> float:
    return 0.0 if math.isnan(value) else value  # one rollout: no interval to draw


def _mode_series(table: list[dict[str, Any]], group: str, value: str, modes: list[str]) -> list[Series]:
    return [
        Series(mode, _color(mode), "", {str(r[group]): (r[value], r["ci"], r["n"]) for r in table if r["mode"] == mode})
        for mode in modes
        if any(r["mode"] == mode for r in table)
    ]


def reward(rows: list[Row]) -> Iterator[tuple[str, Figure]]:
    table = stats.reward_table(rows)
    series = _mode_series(table, "env", "reward", stats.modes(rows))
    fig = _new(rows, "Mean reward by environment and mode (95% CI)", legend=[s.label for s in series])
    ax = fig.axes[0]
    _legend(fig, _bars(ax, stats.envs(rows), series), [s.label for s in series])
    ax.set(xlabel="environment", ylabel="mean reward")
    ax.set_ylim(bottom=0)
    yield "reward", fig


def lift(rows: list[Row]) -> Iterator[tuple[str, Figure]]:
    table = stats.lift_table(rows)
    if not table:
        return
    series = _mode_series(table, "env", "lift", [m for m in stats.modes(rows) if m != "llm"])
    fig = _new(rows, "Reward lift over the plain LLM (95% CI)", legend=[s.label for s in series])
    ax = fig.axes[0]
    _legend(fig, _bars(ax, list(dict.fromkeys(r["env"] for r in table)), series), [s.label for s in series])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set(xlabel="environment", ylabel="mean reward − LLM mean reward")
    yield "lift", fig


def _stacked(
    rows: list[Row], table: list[dict[str, Any]], parts: list[tuple[str, str]], total: str, title: str, ylabel: str
) -> Figure:
    """Per environment, one bar per mode stacked from `parts`; the error bar is the interval of `total`."""
    names = stats.envs(rows)
    fig = _new(rows, title, panels=len(names), panel_width=4.5, legend=[label for _, label in parts], titled=True)
    for ax, env in zip(fig.axes, names):
        cells = [r for r in table if r["env"] == env]
        xs = range(len(cells))
        bottom = [0.0] * len(cells)
        for (key, _), color in zip(parts, PART_COLORS):
            ys = [c[key] for c in cells]
            ax.bar(xs, ys, 0.7, bottom=bottom, color=color)
            bottom = [b + y for b, y in zip(bottom, ys)]
        ax.errorbar(
            xs, [c[total] for c in cells], yerr=[_finite(c["ci"]) for c in cells], fmt="none", ecolor="black", capsize=3
        )
        ax.set_xticks(xs, [f"{c['mode']}\nn={c['n']}" for c in cells], fontsize="small")
        for tick, c in zip(ax.get_xticklabels(), cells):
            tick.set_color(_color(c["mode"]))
        ax.set(title=env, xlabel="mode", ylabel=ylabel)
        ax.yaxis.set_major_formatter(EngFormatter(sep=""))
    _legend(fig, [Patch(color=c) for c in PART_COLORS[: len(parts)]], [label for _, label in parts])
    return fig


def tokens(rows: list[Row]) -> Iterator[tuple[str, Figure]]:
    parts = [
        ("main_prompt", "main prompt"),
        ("main_completion", "main completion"),
        ("sub_prompt", "sub-LLM prompt"),
        ("sub_completion", "sub-LLM completion"),
    ]
    title = "Tokens per rollout: main model vs sub-LLMs (95% CI of the total)"
    yield "tokens", _stacked(rows, stats.token_table(rows), parts, "total", title, "mean tokens per rollout")


def timing(rows: list[Row]) -> Iterator[tuple[str, Figure]]:
    parts = [("model", "main model"), ("repl", "REPL (incl. sub-LLMs)"), ("other", "other")]
    title = "Wall time per rollout (95% CI of the wall time)"
    yield "timing", _stacked(rows, stats.timing_table(rows), parts, "wall", title, "mean seconds per rollout")


def efficiency(rows: list[Row]) -> Iterator[tuple[str, Figure]]:
    table = [r for r in stats.efficiency_table(rows) if not math.isnan(r["relative_to_llm"])]
    if not table:
        return
    series = _mode_series(table, "env", "relative_to_llm", stats.modes(rows))
    fig = _new(rows, "Main-model token efficiency relative to the LLM (95% CI)", legend=[s.label for s in series])
    ax = fig.axes[0]
    _legend(fig, _bars(ax, list(dict.fromkeys(r["env"] for r in table)), series), [s.label for s in series])
    ax.axhline(1, color="black", linewidth=0.8)
    ax.set(xlabel="environment", ylabel="(reward / main tokens) ÷ LLM's")
    yield "efficiency", fig


def cost(rows: list[Row]) -> Iterator[tuple[str, Figure]]:
    """Reward per dollar beside reward per 1k main-model tokens: what a mode buys, in money and in tokens."""
    dollars = stats.cost_table(rows)
    if not dollars:
        return
    tokens_ = stats.efficiency_table(rows)
    per_1k = [{**r, "ci": r["ci_per_1k"]} for r in tokens_]
    modes = stats.modes(rows)
    series = _mode_series(dollars, "env", "reward_per_usd", modes)
    labels = [s.label for s in series]
    fig = _new(rows, "Reward per dollar and per 1k main-model tokens (95% CI)", panels=2, legend=labels, titled=True)
    left, right = fig.axes
    groups = list(dict.fromkeys(r["env"] for r in dollars))
    _legend(fig, _bars(left, groups, series), labels)
    left.set(title="reward per USD (priced rollouts)", xlabel="environment", ylabel="mean reward / mean USD")
    _bars(right, groups, _mode_series(per_1k, "env", "reward_per_1k_main_tokens", modes))
    right.set(title="reward per 1k main tokens", xlabel="environment", ylabel="mean reward / 1k main tokens")
    yield "cost", fig


def sub_calls(rows: list[Row]) -> Iterator[tuple[str, Figure]]:
    """Box plots of the distribution, with the mean and its interval drawn over each box."""
    names = stats.envs(rows)
    fig = _new(
        rows,
        "Sub-LLM calls per rollout (box: quartiles; dot: mean, 95% CI)",
        panels=len(names),
        panel_width=4.5,
        titled=True,
    )
    table = stats.sub_call_table(rows)
    for ax, env in zip(fig.axes, names):
        cells = [r for r in table if r["env"] == env]
        xs = range(1, len(cells) + 1)
        ax.boxplot([c["values"] for c in cells], positions=list(xs), widths=0.5)
        ax.errorbar(
            xs, [c["mean"] for c in cells], yerr=[_finite(c["ci"]) for c in cells], fmt="o", color="black", capsize=3
        )
        ax.set_xticks(xs, [f"{c['mode']}\nn={c['n']}" for c in cells], fontsize="small")
        ax.set(title=env, xlabel="mode", ylabel="sub-LLM calls per rollout")
    yield "sub_calls", fig


def scatter(rows: list[Row]) -> Iterator[tuple[str, Figure]]:
    """Every rollout faint; each environment and mode's mean bold, with 95% intervals on both axes."""
    names, modes = stats.envs(rows), stats.modes(rows)
    ns = sorted({len(g) for g in stats.by_env_mode(rows).values()})
    n = f"n={ns[0]}" if len(ns) == 1 else f"n={ns[0]}–{ns[-1]}"
    fig = _new(rows, f"Main-model tokens vs reward (means with 95% CI, {n} per mean)", legend=modes + names)
    ax = fig.axes[0]
    for i, env in enumerate(names):
        for mode in modes:
            group = [r for r in rows if r.env == env and r.mode == mode]
            if not group:
                continue
            marker = MARKERS[i % len(MARKERS)]
            ax.scatter(
                [r.main_tokens for r in group],
                [r.reward for r in group],
                marker=marker,
                color=_color(mode),
                alpha=0.2,
                s=12,
            )
            x, y = stats.mean_ci(r.main_tokens for r in group), stats.mean_ci(r.reward for r in group)
            ax.errorbar(
                x["mean"],
                y["mean"],
                xerr=_finite(x["ci"]),
                yerr=_finite(y["ci"]),
                marker=marker,
                color=_color(mode),
                markeredgecolor="black",
                capsize=3,
            )
    handles = [Patch(color=_color(m)) for m in modes]
    handles += [ax.scatter([], [], marker=MARKERS[i % len(MARKERS)], color="grey") for i in range(len(names))]
    _legend(fig, handles, modes + names)
    ax.set(xlabel="main-model tokens per rollout", ylabel="reward", ylim=(-0.05, 1.05))
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    yield "scatter", fig


def by_value(
    rows: list[Row],
    env: str,
    value: Callable[[Row], Any],
    label: str,
    measure: Callable[[Row], float] = lambda r: r.reward,
    ylabel: str = "mean reward",
) -> Figure | None:
    """A measure per slice value: one bar per mode (and per kept-apart grid-cell setting, hatched)."""
    table = stats.by_value(rows, env, value, measure)
    if not table:
        return None
    splits = sorted({r["split"] for r in table})
    series = [
        Series(
            f"{mode} · {split}" if split else mode,
            _color(mode),
            HATCHES[splits.index(split) % len(HATCHES)],
            {
                value_label(r["value"]): (r["mean"], r["ci"], r["n"])
                for r in table
                if (r["mode"], r["split"]) == (mode, split)
            },
        )
        for mode, split in stats.series(table)
    ]
    groups = list(dict.fromkeys(value_label(r["value"]) for r in table))
    fig = _new(rows, f"{env}: {ylabel} by {label} (95% CI)", legend=[s.label for s in series])
    ax = fig.axes[0]
    _legend(fig, _bars(ax, groups, series), [s.label for s in series])
    ax.set(xlabel=label, ylabel=ylabel)
    if any(r["mean"] >= 1000 for r in table):
        ax.yaxis.set_major_formatter(EngFormatter(sep=""))
    return fig


def per_environment(rows: list[Row]) -> Iterator[tuple[str, Figure]]:
    """The figures each environment declares in its `report_slices`."""
    for make in _slice_makers(rows):
        yield from make(rows)


def _slice_makers(rows: list[Row]) -> list[Callable[[list[Row]], Iterator[tuple[str, Figure]]]]:
    def maker(env: str, s: Slice) -> Callable[[list[Row]], Iterator[tuple[str, Figure]]]:
        def make(rows: list[Row]) -> Iterator[tuple[str, Figure]]:
            fig = by_value(rows, env, s.group, s.label, s.measure or (lambda r: r.reward), s.ylabel)
            if fig is not None and s.figure is not None:
                yield s.figure, fig

        return make

    return [maker(env, s) for env, s in stats.slices(rows) if s.figure is not None]


MAIN = (reward, lift, tokens, efficiency, cost, timing, sub_calls, scatter)


def _makers(rows: list[Row]) -> list[Callable[[list[Row]], Iterator[tuple[str, Figure]]]]:
    return [*MAIN, *_slice_makers(rows)]


def build_all(rows: list[Row]) -> Iterator[tuple[str, Figure]]:
    """(file stem, figure) for every figure that applies to these rows, one at a time."""
    for make in _makers(rows):
        yield from make(rows)


def save(fig: Figure, out: Path, name: str) -> list[Path]:
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    with rc_context(SAVE):
        fig.savefig(png, dpi=100, pil_kwargs={"compress_level": 1})  # zlib's default level costs ~25 ms a figure
        fig.savefig(svg)
    return [png, svg]


def _write_share(rows: list[Row], out: Path, share: int, shares: int) -> list[Path]:
    """Every `shares`-th figure from the `share`-th: one worker's part of write_all."""
    paths: list[Path] = []
    for make in _makers(rows)[share::shares]:
        for name, fig in make(rows):
            paths += save(fig, out, name)
    return paths


def write_all(rows: list[Row], out: Path, jobs: int | None = None) -> list[Path]:
    """Every figure as PNG and SVG; drawing text is most of the cost, so forked workers share the figures."""
    rows = studied(rows)
    out.mkdir(parents=True, exist_ok=True)
    jobs = min(jobs or os.cpu_count() or 1, MAX_JOBS)
    if jobs < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return _write_share(rows, out, 0, 1)
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        shares = pool.map(_write_share, [rows] * jobs, [out] * jobs, range(jobs), [jobs] * jobs)
        return [path for share in shares for path in share]
