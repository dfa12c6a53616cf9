"""The figures, inspected as matplotlib draws them: error bars and n everywhere, legends clear of the bars, titles
that say where the numbers came from."""

from __future__ import annotations

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import to_hex
from matplotlib.container import BarContainer, ErrorbarContainer

from rlm_tui.report import figures
from rlm_tui.report.data import load_rows, resolve
from rlm_tui.store import open_db
from test_report import FIXTURE, fixture_runs, math_runs, write_runs

NOTE = "offline stand-in data"


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """Every figure of a grid with all four kinds of slice, drawn once: (name, figure, renderer)."""
    path = tmp_path_factory.mktemp("figures") / "all.db"
    runs = fixture_runs(model="scripted", config={"data_note": NOTE}) + [
        (run_id, env, mode, model, {**config, "grid": "fixture", "data_note": NOTE}, rollouts)
        for run_id, env, mode, model, config, rollouts in math_runs()
    ]
    db = open_db(write_runs(path, runs))
    rows = load_rows(db, resolve(db, ["fixture"])[1])
    out = []
    for name, fig in figures.build_all(rows):
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        out.append((name, fig, canvas.get_renderer()))
    return out


def test_every_figure_that_applies_is_drawn(drawn):
    names = {name for name, _, _ in drawn}
    assert {"reward", "lift", "tokens", "efficiency", "timing", "sub_calls", "scatter"} <= names
    assert {"oolong_by_subset", "oolong_synth_by_context_len", "math_python_reward_by_timeout"} <= names
    assert len(names) == len(drawn)  # no figure written over another


def _error_segments(ax) -> int:
    """Error-bar line segments on these axes: from bars' yerr and from errorbar() alike."""
    bars = [c.errorbar for c in ax.containers if isinstance(c, BarContainer) and c.errorbar is not None]
    lines = [c for c in ax.containers if isinstance(c, ErrorbarContainer)] + bars
    return sum(len(seg.get_segments()) for c in lines for seg in c.lines[2] if isinstance(seg, LineCollection))


def test_every_axes_has_error_bars_and_every_group_its_n(drawn):
    for name, fig, _ in drawn:
        for ax in fig.axes:
            assert _error_segments(ax) > 0, name
            if name == "scatter":  # x is tokens: the title carries n
                assert "n=2–9 per mean" in fig.get_suptitle()  # verbatim-copy 2 a mode, math-python 9
            else:
                ticks = [t.get_text() for t in ax.get_xticklabels()]
                assert ticks and all("\nn=" in t for t in ticks), (name, ticks)


def test_one_error_bar_per_bar_with_the_interval_s_half_width(drawn):
    ((_, fig, _),) = [d for d in drawn if d[0] == "reward"]
    (ax,) = fig.axes
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars) == 3  # llm, rlm, rlm-tips
    llm = bars[0]
    (segments,) = [s.get_segments() for s in llm.errorbar.lines[2]]
    # oolong llm (first group): mean 0.5, ± 1.96 · 0.25 / √3
    (low, high) = segments[0][:, 1]
    half = 1.96 * 0.25 / 3**0.5
    assert (low, high) == (pytest.approx(0.5 - half), pytest.approx(0.5 + half))
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["math-python\nn=9", "oolong\nn=3", "verbatim-copy\nn=2"]  # one n: every mode ran as many


def test_legends_never_cover_a_bar_or_an_axes(drawn):
    checked = 0
    for name, fig, renderer in drawn:
        for legend in fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]:
            box = legend.get_window_extent(renderer)
            for ax in fig.axes:
                assert not box.overlaps(ax.get_tightbbox(renderer)), name
                for patch in ax.patches:
                    assert not box.overlaps(patch.get_window_extent(renderer)), name
            checked += 1
    assert checked >= len(FIXTURE)  # the figures with more than one series have a legend


def test_every_title_says_simulated_model_and_the_data_note(drawn):
    for name, fig, _ in drawn:
        assert f"simulated model; {NOTE}" in fig.get_suptitle(), name


def test_the_modes_keep_the_study_s_colours_and_the_tips_cells_their_own_bars(drawn):
    ((_, fig, _),) = [d for d in drawn if d[0] == "math_python_reward_by_timeout"]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["rlm-tips · tips=default", "rlm-tips · tips=sub_llms"]
    bars = [c for c in fig.axes[0].containers if isinstance(c, BarContainer)]
    assert [p.get_height() for p in bars[0].patches] == [0.5, pytest.approx(1 / 3)]  # default at 30 s, 120 s
    assert [p.get_height() for p in bars[1].patches] == [1.0, 0.0]
    colors = {figures.COLORS["rlm-tips"].lower()}
    assert {to_hex(p.get_facecolor()) for b in bars for p in b} == colors
    assert bars[0].patches[0].get_hatch() != bars[1].patches[0].get_hatch()


def test_figures_written_by_one_process_or_by_several_are_the_same_files(tmp_path):
    path = write_runs(tmp_path / "f.db", fixture_runs())
    db = open_db(path)
    rows = load_rows(db, resolve(db, ["fixture"])[1])
    alone = figures.write_all(rows, tmp_path / "one", jobs=1)
    shared = figures.write_all(rows, tmp_path / "two", jobs=2)
    assert (
        sorted(p.name for p in alone)
        == sorted(p.name for p in shared)
        == sorted(p.name for p in (tmp_path / "two").iterdir())
    )
    assert len(alone) == 2 * len(list(figures.build_all(rows)))


def test_a_slice_of_tokens_by_bin_is_drawn_in_bin_order_with_its_intervals(tmp_path, monkeypatch):
    from rlm_tui.env import Slice, environment_class

    def context_bin(row):
        n = row.info.get("context_len")
        return (4096, 8192) if n < 8192 else (8192, 16384)

    tokens = Slice("context length", context_bin, figure="oolong_tokens_by_bin", measure=lambda row: row.tokens)
    monkeypatch.setattr(environment_class("oolong"), "report_slices", (tokens,))
    db = open_db(write_runs(tmp_path / "t.db", fixture_runs()))
    rows = [r for r in load_rows(db, resolve(db, ["fixture"])[1]) if r.env == "oolong"]
    ((name, fig),) = figures.per_environment(rows)
    assert name == "oolong_tokens_by_bin"
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4k–8k\nn=2", "8k–16k\nn=1"]
    llm, tips = [c for c in ax.containers if isinstance(c, BarContainer)]
    # llm: 5,010 and 7,010 tokens below 8,192 (mean 6,010, sd √2,000,000, se 1,000), 9,010 at 8,192
    assert [p.get_height() for p in llm.patches] == [6010, 9010]
    (segments,) = [s.get_segments() for s in llm.errorbar.lines[2]]
    assert list(segments[0][:, 1]) == [pytest.approx(6010 - 1960), pytest.approx(6010 + 1960)]
    assert [p.get_height() for p in tips.patches] == [(5500 + 3300) / 2, 7700]  # main 2,200 + sub 3,300 or 1,100
