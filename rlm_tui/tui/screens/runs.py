"""The runs in the database: pick one to replay it, or to attach when it is still running."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from rlm_tui.store import list_runs, open_db
from rlm_tui.text import printable
from rlm_tui.tui import fmt
from rlm_tui.tui.messages import OpenRun, RunsRead
from rlm_tui.tui.session import Session
from rlm_tui.tui.widgets.table import VimTable

COLUMNS = ("run", "env", "mode", "model", "started", "done", "mean reward", "status", "forked from")
POLL_SECONDS = 1.0


def run_cells(row: dict[str, Any]) -> tuple:
    started = datetime.fromtimestamp(row["started"]).strftime("%Y-%m-%d %H:%M:%S") if row.get("started") else "-"
    status = row["status"]
    return (
        *(Text(printable(str(row[k]))) for k in ("id", "env", "mode", "model")),
        started,
        f"{row['ended']}/{row['rollouts']}",
        fmt.reward(row.get("mean_reward")),
        Text(printable(str(status)), style=fmt.STATUS_STYLE.get(status, "")),
        Text(printable(fork_of(row.get("config"))), style="cyan"),
    )


def fork_of(config: Any) -> str:
    """'⑂ rollout 1a2b3c4d · turn 3' for a fork's run (its stored config is untrusted), else ''."""
    lineage = config.get("forked_from") if isinstance(config, dict) else None
    if not isinstance(lineage, dict):
        return ""
    rollout, turn = lineage.get("rollout_id"), lineage.get("turn")
    if not (isinstance(rollout, str) and isinstance(turn, int)):
        return ""
    return f"⑂ rollout {rollout[:8]} · turn {turn}"


class RunsScreen(Screen):
    CSS_PATH = "runs.tcss"
    BINDINGS = [
        Binding(
            "R",
            "report",
            "Report",
            id="report.open",
            tooltip="Compare modes: the highlighted run's grid, or the run itself",
        ),
        Binding("x", "mark", "Mark", id="compare.mark", tooltip="Mark the highlighted run to compare (two at most)"),
        Binding("c", "compare", "Compare", id="compare.open", tooltip="The two marked runs' rollouts side by side"),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self._ids: list[str] = []
        self._rows: dict[str, tuple] = {}
        self._grids: dict[str, str | None] = {}
        self._shown_path = ""
        self.marked: list[str] = []  # runs to compare, in the order marked; a third mark drops the first

    def compose(self) -> ComposeResult:
        yield Static("[b]runs[/b]", id="runs-title")
        yield VimTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static("", id="runs-empty")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(VimTable)
        for name in COLUMNS:
            table.add_column(name, key=name)
        path = self.session.db_path.resolve()
        shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
        self._shown_path = printable(str(shown))
        self._title()
        self._read()
        self.set_interval(POLL_SECONDS, self._poll)

    def _title(self) -> None:
        marks = [(f"  {name} {run_id}", "bold yellow") for name, run_id in zip("AB", self.marked)]
        self.query_one("#runs-title", Static).update(
            Content.assemble(("runs", "bold"), " ", (f"· {self._shown_path}", "dim"), *marks)
        )

    def _poll(self) -> None:
        if self.is_current:  # covered by a run's view: nobody is looking
            self._read()

    @work(thread=True, exclusive=True, group="runs")
    def _read(self) -> None:
        try:
            db = open_db(self.session.db_path, create=False)
            try:
                self.post_message(RunsRead(list_runs(db)))
            finally:
                db.close()
        except Exception as exc:  # a locked or damaged database: said in the view, and tried again next poll
            self.post_message(RunsRead([], fmt.one_line(f"cannot read the runs: {type(exc).__name__}: {exc}", 500)))

    def on_runs_read(self, message: RunsRead) -> None:
        empty = self.query_one("#runs-empty", Static)
        if message.error:
            empty.display = True
            empty.update(Content.styled(message.error, "red"))
            return
        table = self.query_one(VimTable)
        ids = [row["id"] for row in message.rows]
        cells = {row["id"]: run_cells(row) for row in message.rows}
        if ids != self._ids:
            current = self._ids[table.cursor_row] if self._ids and table.cursor_row < len(self._ids) else None
            table.clear()
            for run_id in ids:
                table.add_row(*cells[run_id], key=run_id)
            if current in ids:
                table.move_cursor(row=ids.index(current), animate=False)
        else:
            for run_id in ids:
                old = self._rows.get(run_id)
                for column, value in zip(COLUMNS, cells[run_id]):
                    if old is None or old[COLUMNS.index(column)] != value:
                        table.update_cell(run_id, column, value)
        self._ids, self._rows = ids, cells
        self._grids = {row["id"]: (row.get("config") or {}).get("grid") for row in message.rows}
        empty.display = not ids
        empty.update("no runs yet: start one with [b]rlm-tui run verbatim-copy[/b]")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.open(str(event.row_key.value))

    def action_report(self) -> None:
        from rlm_tui.tui.screens.report import ReportScreen

        table = self.query_one(VimTable)
        names: list[str] = []
        if self._ids and table.cursor_row < len(self._ids):
            run_id = self._ids[table.cursor_row]
            names = [self._grids.get(run_id) or run_id]
        self.app.push_screen(ReportScreen(self.session.db_path, names))

    def action_mark(self) -> None:
        table = self.query_one(VimTable)
        if not self._ids or table.cursor_row >= len(self._ids):
            return
        run_id = self._ids[table.cursor_row]
        if run_id in self.marked:
            self.marked.remove(run_id)
        else:
            self.marked = [*self.marked, run_id][-2:]
        self._title()

    def action_compare(self) -> None:
        from rlm_tui.tui.screens.compare import CompareScreen

        if len(self.marked) != 2:
            self.notify("mark two runs with x first", severity="warning")
            return
        self.app.push_screen(CompareScreen(self.session.db_path, (self.marked[0], self.marked[1])))

    def open(self, run_id: str) -> None:
        from rlm_tui.tui.screens.run import RunScreen

        feed = self.session.feed
        if feed is None or feed.run_id != run_id or self.session.scope is not None:
            self.app.post_message(OpenRun(run_id))
        self.app.push_screen(RunScreen(self.session, run_id))
