"""The report view: the same tables as `rlm-tui report`, and the main charts drawn in the terminal."""

from __future__ import annotations

import math

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual_plotext import PlotextPlot

from rlm_tui.report import stats
from rlm_tui.report.data import ReportError, Row, load_rows, resolve
from rlm_tui.report.render import tables
from rlm_tui.store import open_db

MODE_COLORS = {"llm": "gray", "rlm": "blue", "rlm-tips": "orange"}


class ReportRead(Message):
    def __init__(self, title: str, rows: list[Row], error: str | None = None) -> None:
        super().__init__()
        self.title, self.rows, self.error = title, rows, error


class ReportScreen(Screen):
    """Compares the modes of a grid (or of the runs given) across environments."""

    CSS_PATH = "report.tcss"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="report.back"),
        Binding("r", "reload", "Reload", id="report.reload", tooltip="Read the database again"),
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k", "scroll_up", "Up", show=False),
    ]

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names

    def compose(self) -> ComposeResult:
        yield Static("[b]report[/b] [dim]· reading…[/]", id="report-title")
        with VerticalScroll(id="report-body"):
            with Horizontal(id="report-charts"):
                yield PlotextPlot(id="chart-reward")
                yield PlotextPlot(id="chart-tokens")
            yield PlotextPlot(id="chart-scatter")
            yield Static(id="report-tables")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self._read()

    def action_scroll_down(self) -> None:
        self.query_one("#report-body", VerticalScroll).scroll_down()

    def action_scroll_up(self) -> None:
        self.query_one("#report-body", VerticalScroll).scroll_up()

    @work(thread=True, exclusive=True, group="report")
    def _read(self) -> None:
        db = open_db(self.app.db_path, create=False)
        try:
            title, run_ids = resolve(db, self.names)
            self.post_message(ReportRead(title, load_rows(db, run_ids)))
        except ReportError as exc:
            self.post_message(ReportRead("", [], str(exc)))
        finally:
            db.close()

    def on_report_read(self, message: ReportRead) -> None:
        title = self.query_one("#report-title", Static)
        body = self.query_one("#report-tables", Static)
        if message.error or not message.rows:
            title.update("[b]report[/b]")
            body.update(message.error or f"{message.title} has no finished rollouts yet")
            return
        rows = message.rows
        runs = len({r.run_id for r in rows})
        title.update(f"[b]report[/b] [dim]· {message.title} · {len(rows)} rollouts in {runs} runs[/]")
        from rich.console import Group

        body.update(Group(*tables(rows)))
        self._reward_chart(rows)
        self._token_chart(rows)
        self._scatter(rows)

    def _reward_chart(self, rows: list[Row]) -> None:
        plot = self.query_one("#chart-reward", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        table = stats.reward_table(rows)
        envs, modes = stats.envs(rows), stats.modes(rows)
        cells = {(r["env"], r["mode"]): r["reward"] for r in table}
        plt.multiple_bar(envs, [[_zero(cells.get((e, m))) for e in envs] for m in modes], labels=modes,
                         color=[MODE_COLORS.get(m, "green") for m in modes])
        plt.title("mean reward by environment and mode")
        plt.ylim(0, 1)
        plot.refresh()

    def _token_chart(self, rows: list[Row]) -> None:
        plot = self.query_one("#chart-tokens", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        table = stats.token_table(rows)
        several = len(stats.envs(rows)) > 1
        labels = [f"{r['env'][:10]} {r['mode']}" if several else r["mode"] for r in table]
        plt.stacked_bar(labels, [[r["main_prompt"] + r["main_completion"] for r in table],
                                 [r["sub_prompt"] + r["sub_completion"] for r in table]],
                        labels=["main model", "sub-LLMs"], color=["blue", "orange"])
        plt.title("tokens per rollout: main model vs sub-LLMs")
        plot.refresh()

    def _scatter(self, rows: list[Row]) -> None:
        plot = self.query_one("#chart-scatter", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        markers = ["dot", "x", "+", "o", "*"]
        for i, env in enumerate(stats.envs(rows)):
            for mode in stats.modes(rows):
                pts = [(r.main_tokens, r.reward) for r in rows if r.env == env and r.mode == mode]
                if pts:
                    xs, ys = zip(*pts)
                    plt.scatter(xs, ys, marker=markers[i % len(markers)], color=MODE_COLORS.get(mode, "green"),
                                label=f"{env} · {mode}")
        plt.title("main-model tokens vs reward")
        plt.ylim(0, 1)
        plt.xlabel("main-model tokens per rollout")
        plot.refresh()


def _zero(value: float | None) -> float:
    return 0.0 if value is None or math.isnan(value) else value
