"""The report view: the same tables as `rlm-tui report`, and the main charts drawn in the terminal."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual_plotext import PlotextPlot

from rlm_tui.report import stats
from rlm_tui.report.data import ReportError, Row, load_rows, resolve
from rlm_tui.report.render import tables
from rlm_tui.store import open_db
from rlm_tui.text import printable
from rlm_tui.tui import fmt
from rlm_tui.tui.messages import ReportRead

MODE_COLORS = {"llm": "gray", "rlm": "blue", "rlm-tips": "orange"}
# how plotext draws its colour names, so that a legend in text matches the chart
TEXT_COLORS = {"gray": "color(8)", "blue": "color(4)", "orange": "color(3)", "green": "color(2)"}
MARKERS = "•x+o*"  # one per environment in the scatter


class ReportScreen(Screen):
    """Compares the modes of a grid (or of the runs given) across environments."""

    CSS_PATH = "report.tcss"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="report.back"),
        Binding("r", "reload", "Reload", id="report.reload", tooltip="Read the database again"),
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k", "scroll_up", "Up", show=False),
    ]

    def __init__(self, db_path: Path, names: list[str]) -> None:
        super().__init__()
        self.db_path, self.names = db_path, names

    def compose(self) -> ComposeResult:
        yield Static(Content.assemble(("report", "bold"), " ", ("· reading…", "dim")), id="report-title")
        with VerticalScroll(id="report-body"):
            yield Static(id="report-tables")  # first: the numbers fit the first screen, the charts follow
            with Horizontal(id="report-charts"):
                with Vertical(classes="chart"):
                    yield Static(id="legend-reward", classes="legend")
                    yield PlotextPlot(id="chart-reward")
                with Vertical(classes="chart"):
                    yield Static(id="legend-tokens", classes="legend")
                    yield PlotextPlot(id="chart-tokens")
            with Vertical(classes="chart", id="report-scatter"):
                yield Static(id="legend-scatter", classes="legend")
                yield PlotextPlot(id="chart-scatter")
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
        try:
            db = open_db(self.db_path, create=False)
            try:
                title, run_ids = resolve(db, self.names)
                self.post_message(ReportRead(title, load_rows(db, run_ids)))
            finally:
                db.close()
        except ReportError as exc:
            self.post_message(ReportRead("", [], str(exc)))
        except Exception as exc:  # an old or damaged database: said in the view, never a crash
            self.post_message(
                ReportRead("", [], fmt.one_line(f"cannot read the report: {type(exc).__name__}: {exc}", 500))
            )

    def on_report_read(self, message: ReportRead) -> None:
        title = self.query_one("#report-title", Static)
        body = self.query_one("#report-tables", Static)
        shown = bool(message.rows) and not message.error
        self.query_one("#report-charts").display = self.query_one("#report-scatter").display = shown
        if not shown:
            title.update(Content.styled("report", "bold"))
            body.update(
                Content.styled(
                    printable(message.error or f"{message.title} has no finished rollouts yet"),
                    "red" if message.error else "",
                )
            )
            return
        rows = message.rows
        runs = len({r.run_id for r in rows})
        source = stats.describe(rows)  # a simulated model or stand-in data, said where the numbers are
        title.update(
            Content.assemble(
                ("report", "bold"),
                " ",
                (f"· {printable(message.title)} · {len(rows)} rollouts in {runs} runs", "dim"),
                (f" · {printable(source)}" if source else "", "yellow"),
            )
        )
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
        colors = [MODE_COLORS.get(m, "green") for m in modes]
        values = [[_zero(cells.get((e, m))) for e in envs] for m in modes]
        # each label carries its values: a bar of 0.000 draws nothing, and the chart must still say 0
        labels = [f"{e} " + "/".join(f"{v[i]:.3f}" for v in values) for i, e in enumerate(envs)]
        plt.multiple_bar(labels, values, color=colors)
        plt.ylim(0, 1)
        self.query_one("#legend-reward", Static).update(
            _legend("mean reward by environment and mode", zip(modes, colors))
        )
        plot.refresh()

    def _token_chart(self, rows: list[Row]) -> None:
        plot = self.query_one("#chart-tokens", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        table = stats.token_table(rows)
        several = len(stats.envs(rows)) > 1
        labels = [f"{r['env'][:10]} {r['mode']}" if several else r["mode"] for r in table]
        main = [r["main_prompt"] + r["main_completion"] for r in table]
        sub = [r["sub_prompt"] + r["sub_completion"] for r in table]
        plt.stacked_bar(labels, [main, sub], color=["blue", "orange"])
        ticks = whole_ticks(0, max((a + b for a, b in zip(main, sub)), default=0))
        plt.ylim(ticks[0], ticks[-1])
        plt.yticks(ticks, [f"{t:,}" for t in ticks])
        self.query_one("#legend-tokens", Static).update(
            _legend("tokens per rollout", [("main model", "blue"), ("sub-LLMs", "orange")])
        )
        plot.refresh()

    def _scatter(self, rows: list[Row]) -> None:
        plot = self.query_one("#chart-scatter", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        envs, modes = stats.envs(rows), stats.modes(rows)
        for i, env in enumerate(envs):
            for mode in modes:
                pts = [(r.main_tokens, r.reward) for r in rows if r.env == env and r.mode == mode]
                if pts:
                    xs, ys = zip(*pts)
                    plt.scatter(xs, ys, marker=MARKERS[i % len(MARKERS)], color=MODE_COLORS.get(mode, "green"))
        tokens = [r.main_tokens for r in rows]
        ticks = whole_ticks(min(tokens), max(tokens))
        plt.xlim(ticks[0], ticks[-1])
        plt.xticks(ticks, [f"{t:,}" for t in ticks])
        plt.ylim(0, 1)
        plt.xlabel("main-model tokens per rollout")
        legend = _legend("main-model tokens vs reward", [(m, MODE_COLORS.get(m, "green")) for m in modes])
        for i, env in enumerate(envs):
            legend.append(f"  {MARKERS[i % len(MARKERS)]} {env}")
        self.query_one("#legend-scatter", Static).update(legend)
        plot.refresh()


def _legend(title: str, entries: Iterable[tuple[str, str]]) -> Text:
    """A chart's title with its colours named, above the chart rather than over its bars."""
    text = Text()
    text.append(title, style="bold")
    for name, color in entries:
        text.append("  ■ ", style=TEXT_COLORS.get(color, color))
        text.append(name)
    return text


def whole_ticks(lo: float, hi: float, count: int = 5) -> list[int]:
    """About `count` round whole numbers from at most `lo` to at least `hi`, 1, 2 or 5 times a power of ten apart."""
    raw = max(hi - lo, 1) / count
    power = 10 ** max(0, math.floor(math.log10(raw)))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    last = max(math.ceil(hi / step) * step, first + step)
    return list(range(first, last + 1, step))


def _zero(value: float | None) -> float:
    return 0.0 if value is None or math.isnan(value) else value
