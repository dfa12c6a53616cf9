"""One run: totals, a progress bar, and its rollouts; enter opens a rollout."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import DataTable, Footer, ProgressBar, Static

from rlm_tui.env import recorded_data_note
from rlm_tui.headless import model_label
from rlm_tui.state import RolloutState, RunState
from rlm_tui.text import printable
from rlm_tui.tui import fmt
from rlm_tui.tui.messages import OpenRun
from rlm_tui.tui.screens.base import REPLAY_BINDINGS, RunBase
from rlm_tui.tui.session import Session
from rlm_tui.tui.widgets.table import VimTable

COLUMNS = ("#", "example", "status", "reward", "turns", "main tok", "sub tok", "sub calls", "elapsed")
MODE_STYLE = {"live": "bold green", "attach": "bold cyan", "replay": "bold magenta"}


def rollout_cells(r: RolloutState, now: float, interrupted: bool = False) -> tuple:
    status = fmt.status(r, interrupted)
    end = r.finished if r.finished is not None else now
    elapsed = fmt.seconds(end - r.started) if r.started is not None else "-"
    return (
        str(r.index),
        Text(r.example_id),
        Text(status, style=fmt.STATUS_STYLE.get(status, "")),
        fmt.reward(r.reward),
        str(len(r.turns)),
        fmt.tokens(r.main_tokens),
        fmt.tokens(r.sub_tokens),
        f"{r.sub_calls:,}",
        elapsed,
    )


class RunScreen(RunBase):
    CSS_PATH = "run.tcss"
    # a key bound here replaces the base's bindings of that key, so replay's space comes along
    BINDINGS = [
        Binding(
            "space,P",
            "run_pause",
            "Pause run",
            id="run.pause",
            key_display="space/P",
            tooltip="Pause every rollout of the run",
            priority=True,
        ),
        Binding(
            "space,P",
            "run_resume",
            "Resume run",
            id="run.resume",
            key_display="space/P",
            tooltip="Let every rollout of the run go on",
            priority=True,
        ),
        *(b for b in REPLAY_BINDINGS if b.key == "space"),
    ]

    def __init__(self, session: Session, run_id: str) -> None:
        super().__init__(session)
        self.run_id = run_id
        self._fp: tuple | None = None
        self._ids: list[str] = []
        self._cells: dict[str, tuple] = {}
        self._seen: dict[str, int] = {}  # the feed's version of each row when it was last drawn
        self._head = ""

    def compose(self) -> ComposeResult:
        yield Static("", id="run-title")
        yield Static("", id="run-totals")
        yield ProgressBar(id="run-progress", show_eta=False)
        yield VimTable(id="rollouts", cursor_type="row", zebra_stripes=True)
        yield Static("", id="replay-bar")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(VimTable)
        for name in COLUMNS:
            table.add_column(name, key=name)
        self.ready = True
        self.refresh_view()

    def target(self) -> RolloutState | None:
        feed = self.session.feed
        if feed is None or not self._ids:
            return None
        row = self.query_one(VimTable).cursor_row
        return feed.state.rollouts.get(self._ids[row]) if 0 <= row < len(self._ids) else None

    def on_data_table_row_highlighted(self) -> None:
        self.app.refresh_bindings()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        from rlm_tui.tui.screens.rollout import RolloutScreen

        if r := self.target():
            self.app.push_screen(RolloutScreen(self.session, r.id))

    def on_screen_resume(self) -> None:
        session = self.session
        if self.is_active and session.mode == "replay" and session.scope is not None and session.feed is not None:
            self.app.post_message(OpenRun(self.run_id))  # it was loaded for one rollout; this view needs them all
        super().on_screen_resume()

    def refresh_view(self) -> None:
        session = self.session
        feed = session.feed
        if feed is None or feed.run_id != self.run_id:
            return
        s = feed.state
        now = session.now()
        self.sync_keys()
        self._update_head(s, now)
        self.show_replay_bar()
        fp = (feed.generation, feed.count, int(now), session.run_over)
        if fp == self._fp:
            return
        self._fp = fp
        rollouts = sorted(s.rollouts.values(), key=lambda r: r.index)
        bar = self.query_one(ProgressBar)
        bar.update(total=max(1, s.num_rollouts or len(rollouts)), progress=len(s.done))
        table = self.query_one(VimTable)
        ids = [r.id for r in rollouts]
        if ids[: len(self._ids)] != self._ids:
            table.clear()
            self._ids, self._cells, self._seen = [], {}, {}
        for r in rollouts[len(self._ids) :]:
            cells = rollout_cells(r, now, session.interrupted)
            table.add_row(*cells, key=r.id)
            self._ids.append(r.id)
            self._cells[r.id] = cells
        for r in rollouts:
            version = feed.versions.get(r.id, 0)
            if self._seen.get(r.id) == version and r.status not in ("queued", "running"):
                continue  # a finished row only changes with new events
            self._seen[r.id] = version
            cells = rollout_cells(r, now, session.interrupted)
            old = self._cells.get(r.id)
            for i, (column, value) in enumerate(zip(COLUMNS, cells)):
                if old is None or old[i] != value:
                    table.update_cell(r.id, column, value)
            self._cells[r.id] = cells

    def _update_head(self, s: RunState, now: float) -> None:
        mode = self.session.mode
        status = "paused" if s.paused and s.status == "running" else s.status
        if self.session.interrupted:
            status = "interrupted"
        title = Content.assemble(
            (s.env or "…", "bold"),
            " ",
            (f"[{s.mode}]", "dim"),
            f" · {model_label(s.model)} · run ",
            (self.run_id, "bold"),
            " · ",
            (mode, MODE_STYLE.get(mode, "")),
            " · ",
            (status, fmt.STATUS_STYLE.get(status, "")),
            *((" · ", (printable(note), "yellow")) if (note := recorded_data_note(s.config)) else ()),
        )
        rollouts = list(s.rollouts.values())
        end = s.finished if s.finished is not None else now
        elapsed = fmt.seconds(end - s.started) if s.started else "-"
        totals = Content.assemble(
            "rollouts ",
            (f"{len(s.done)}/{s.num_rollouts or len(rollouts)}", "bold"),
            " · mean reward ",
            (fmt.reward(s.mean_reward), "bold"),
            " · main ",
            (fmt.tokens(sum(r.main_tokens for r in rollouts)), "bold"),
            " tok · sub ",
            (fmt.tokens(sum(r.sub_tokens for r in rollouts)), "bold"),
            " tok · elapsed ",
            (elapsed, "bold"),
            *(("\n", (s.error, "red")) if s.error else ()),
        )
        head = title.plain + "\n" + totals.plain  # the styles follow from the words
        if head != self._head:
            self._head = head
            self.query_one("#run-title", Static).update(title)
            self.query_one("#run-totals", Static).update(totals)
