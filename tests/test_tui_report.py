"""The report view in the app: reached from the runs view, it shows the report's numbers and charts."""

from __future__ import annotations

from test_report import fixture_db  # noqa: F401  (the hand-checked fixture database)
from test_tui_replay import until
from textual.widgets import Static
from textual_plotext import PlotextPlot

from rlm_tui.tui.app import RlmApp
from rlm_tui.tui.screens.report import ReportScreen
from rlm_tui.tui.screens.runs import RunsScreen


def text_of(widget: Static) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, file=open("/dev/null", "w"))
    console.print(widget.content)
    return console.export_text()


async def test_report_view_from_the_runs_view(fixture_db):  # noqa: F811
    app = RlmApp(fixture_db)
    async with app.run_test(size=(160, 60)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen._ids)
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ReportScreen)
                    and "rollouts in" in text_of(app.screen.query_one("#report-title", Static)))
        screen = app.screen
        assert "fixture · 10 rollouts in 4 runs" in text_of(screen.query_one("#report-title", Static))
        tables = text_of(screen.query_one("#report-tables", Static))
        assert "Lift over the plain LLM" in tables
        assert "0.500" in tables and "0.38 " in tables  # oolong llm mean reward; verbatim-copy rlm efficiency 250/650
        chart = screen.query_one("#chart-reward", PlotextPlot)
        assert "mean reward by environment and mode" in chart.plt.build()  # drawn, with its data
        assert "oolong" in chart.plt.build() and "verbatim-copy" in chart.plt.build()
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
