"""The report view in the app: reached from the runs view, it shows the report's numbers and charts."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from textual.widgets import Static
from textual_plotext import PlotextPlot

from pilot import until
from rlm_tui.tui.app import RlmApp
from rlm_tui.tui.screens import report
from rlm_tui.tui.screens.report import ReportScreen, whole_ticks
from rlm_tui.tui.screens.runs import RunsScreen
from test_report import fixture_db, fixture_runs, write_runs  # noqa: F401  (the hand-checked fixture database)


def text_of(widget: Static) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, file=open("/dev/null", "w"))
    console.print(widget.content)
    return console.export_text()


@asynccontextmanager
async def report_view(path) -> AsyncIterator[tuple[RlmApp, Any]]:
    """The app on `path`, its report opened from the runs view and read: (the app, its pilot)."""
    app = RlmApp(path)
    async with app.run_test(size=(160, 60)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen._ids)
        await pilot.press("R")
        await until(
            pilot,
            lambda: (
                isinstance(app.screen, ReportScreen)
                and "rollouts in" in text_of(app.screen.query_one("#report-title", Static))
            ),
        )
        yield app, pilot


async def test_report_view_from_the_runs_view(fixture_db):  # noqa: F811
    async with report_view(fixture_db) as (app, pilot):
        screen = app.screen
        assert "fixture · 10 rollouts in 4 runs" in text_of(screen.query_one("#report-title", Static))
        tables = text_of(screen.query_one("#report-tables", Static))
        assert "Lift over the plain LLM" in tables
        assert "0.500" in tables and "0.38 " in tables  # oolong llm mean reward; verbatim-copy rlm efficiency 250/650
        chart = screen.query_one("#chart-reward", PlotextPlot).plt.build()
        assert "oolong" in chart and "verbatim-copy" in chart  # drawn, with its data
        legend = text_of(screen.query_one("#legend-reward", Static))
        assert "mean reward by environment and mode  ■ llm  ■ rlm  ■ rlm-tips" in legend
        assert "rlm-tips" not in chart  # the legend sits above the bars, not over them
        tokens = screen.query_one("#chart-tokens", PlotextPlot).plt.build()
        assert "8,000┤" in tokens and ".0┤" not in tokens  # whole numbers on the token axis
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))


async def report_title(path) -> str:
    async with report_view(path) as (app, _):
        return text_of(app.screen.query_one("#report-title", Static))


async def test_the_view_says_when_the_numbers_come_from_the_simulated_model(tmp_path, fixture_db):  # noqa: F811
    assert "simulated model" not in await report_title(fixture_db)
    assert "simulated model" in await report_title(write_runs(tmp_path / "s.db", fixture_runs(model="scripted")))


async def test_a_database_the_report_cannot_read_is_one_line_in_the_view(fixture_db, monkeypatch):  # noqa: F811
    def fail(*_):
        raise sqlite3.OperationalError("malformed JSON")

    monkeypatch.setattr(report, "load_rows", fail)
    app = RlmApp(fixture_db)
    async with app.run_test(size=(160, 60)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen._ids)
        await pilot.press("R")
        await until(
            pilot,
            lambda: (
                isinstance(app.screen, ReportScreen)
                and "malformed" in text_of(app.screen.query_one("#report-tables", Static))
            ),
        )
        assert (
            text_of(app.screen.query_one("#report-tables", Static)).strip()
            == "cannot read the report: OperationalError: malformed JSON"
        )
        assert not app.screen.query_one("#report-charts").display
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))


def test_whole_ticks_are_round_whole_numbers_that_cover_the_range():
    assert whole_ticks(0, 7010) == [0, 2000, 4000, 6000, 8000]
    assert whole_ticks(150, 9010) == [0, 2000, 4000, 6000, 8000, 10000]
    assert whole_ticks(0, 3) == [0, 1, 2, 3]
    assert whole_ticks(0, 0) == [0, 1]
