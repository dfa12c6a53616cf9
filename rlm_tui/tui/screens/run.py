"""One run: totals, a progress bar, and its rollouts; enter opens a rollout."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.events import Key
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, ProgressBar, Static

from rlm_tui.env import recorded_data_note
from rlm_tui.headless import model_label
from rlm_tui.state import RolloutState, RunState
from rlm_tui.text import printable
from rlm_tui.tui import fmt
from rlm_tui.tui.messages import OpenRun
from rlm_tui.tui.now import bar, context_tokens
from rlm_tui.tui.now import doing as now_doing
from rlm_tui.tui.rollout_query import MAX_FILTER, SORTS, matches, ordered, parse_filter
from rlm_tui.tui.screens.base import REPLAY_BINDINGS, RunBase
from rlm_tui.tui.session import Session
from rlm_tui.tui.widgets.table import VimTable
from rlm_tui.units import usd

COLUMNS = (
    "✓",
    "#",
    "example",
    "status",
    "stop reason",
    "now",
    "reward",
    "turns",
    "tokens",
    "context",
    "sub calls",
    "elapsed",
)
WIDTHS = {"now": 26, "tokens": 14, "context": 12, "stop reason": 14}  # the live columns do not jump as they change
MODE_STYLE = {"live": "bold green", "attach": "bold cyan", "replay": "bold magenta"}
SORT_ORDER = tuple(SORTS)


def rollout_cells(
    r: RolloutState,
    now: float,
    interrupted: bool = False,
    *,
    marked: bool = False,
    max_tokens: int = 0,
    context_limit: int = 0,
) -> tuple:
    status = fmt.status(r, interrupted)
    end = r.finished if r.finished is not None else now
    elapsed = fmt.seconds(end - r.started) if r.started is not None else "-"
    tokens = r.main_tokens + r.sub_tokens
    context = context_tokens(r)
    doing = status if status in ("interrupted", "paused") else now_doing(r, now)
    return (
        Text("●", style="bold yellow") if marked else "",
        str(r.index),
        Text(r.example_id),
        Text(status, style=fmt.STATUS_STYLE.get(status, "")),
        Text(printable(r.stop_reason or "-")),
        Text(doing, style=fmt.STATUS_STYLE.get(doing, "")),
        fmt.reward(r.reward),
        str(len(r.turns)),
        Text(bar(tokens / max_tokens if max_tokens else 0.0) + " " + fmt.tokens(tokens)),
        Text(bar(context / context_limit if context_limit else 0.0, 5) + f" {context * 100 // max(1, context_limit)}%"),
        f"{r.sub_calls:,}",
        elapsed,
    )


class RunScreen(RunBase):
    CSS_PATH = "run.tcss"
    AUTO_FOCUS = "#rollouts"
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
        Binding("o", "sort", "Sort", id="run.sort", tooltip="Sort by the next column"),
        Binding("O", "reverse", "Reverse", id="run.reverse", tooltip="Reverse the sort"),
        Binding("slash", "filter", "Filter", id="run.filter", tooltip="Show only the rollouts that match"),
        Binding("x", "mark", "Mark", id="run.mark", tooltip="Mark the highlighted rollout for the controls"),
        Binding("X", "mark_all", "Mark all", id="run.mark_all", tooltip="Mark every rollout shown, or none"),
        Binding("p", "marked_pause", "Pause", id="run.marked_pause", tooltip="Pause the marked rollouts"),
        Binding("r", "marked_resume", "Resume", id="run.marked_resume", tooltip="Let the marked rollouts go on"),
    ]

    def __init__(self, session: Session, run_id: str) -> None:
        super().__init__(session)
        self.run_id = run_id
        self._fp: tuple | None = None
        self._ids: list[str] = []
        self._cells: dict[str, tuple] = {}
        self._seen: dict[str, int] = {}  # the feed's version of each row when it was last drawn
        self._head = ""
        self.sort_by, self.reverse = "#", False
        self.filter_text = ""
        self.marked: set[str] = set()
        self._count = 0
        self._max_tokens = 0
        self._opened_single = False  # a run of one rollout opens on it, once: escape comes back here
        self._order_second = -1  # live rows keep their place in between: the order is redone once a second

    def compose(self) -> ComposeResult:
        yield Static("", id="run-title")
        yield Static("", id="run-totals")
        yield ProgressBar(id="run-progress", show_eta=False)
        yield Static("", id="run-view")
        yield Input(placeholder="status:running reason:max_turns words…", id="run-filter", max_length=MAX_FILTER)
        yield VimTable(id="rollouts", cursor_type="row", zebra_stripes=True)
        yield Static("", id="replay-bar")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(VimTable)
        for name in COLUMNS:
            table.add_column(name, key=name, width=WIDTHS.get(name))
        self.ready = True
        self.refresh_view()

    def target(self) -> RolloutState | None:
        feed = self.session.feed
        if feed is None or not self._ids:
            return None
        row = self.query_one(VimTable).cursor_row
        return feed.state.rollouts.get(self._ids[row]) if 0 <= row < len(self._ids) else None

    def acted_on(self) -> list[RolloutState]:
        """The marked rollouts, or the highlighted one when none is marked."""
        feed = self.session.feed
        if feed is None:
            return []
        if self.marked:
            rollouts = feed.state.rollouts
            return sorted((rollouts[i] for i in self.marked if i in rollouts), key=lambda r: r.index)
        return [r] if (r := self.target()) else []

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.is_mounted and self.query_one("#run-filter", Input).has_focus:
            return False  # space and the letters are the filter's while it is typed
        if action in ("marked_pause", "marked_resume"):
            want = "pause" if action == "marked_pause" else "resume"
            return any(self.session.allows(want, r) for r in self.acted_on())
        if action in ("step", "finish", "kill") and self.marked:
            return any(self.session.allows(action, r) for r in self.acted_on())
        return super().check_action(action, parameters)

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

    # --- sort, filter, marks --------------------------------------------------------------------

    def action_sort(self) -> None:
        self.sort_by = SORT_ORDER[(SORT_ORDER.index(self.sort_by) + 1) % len(SORT_ORDER)]
        self.reorder()

    def action_reverse(self) -> None:
        self.reverse = not self.reverse
        self.reorder()

    def action_filter(self) -> None:
        box = self.query_one("#run-filter", Input)
        box.display = True
        box.value = self.filter_text
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.filter_text = " ".join(event.value.split())
        self._close_filter()
        self.reorder()

    def on_key(self, event: Key) -> None:
        box = self.query_one("#run-filter", Input)
        if event.key == "escape" and box.has_focus:
            event.stop()
            event.prevent_default()
            self._close_filter()

    def _close_filter(self) -> None:
        self.query_one("#run-filter", Input).display = False
        self.query_one(VimTable).focus()

    def action_back(self) -> None:
        if self.filter_text:  # escape first clears the filter, then leaves
            self.filter_text = ""
            self.reorder()
        else:
            super().action_back()

    def action_mark(self) -> None:
        if r := self.target():
            self.marked ^= {r.id}
            self.query_one(VimTable).action_cursor_down()
            self._redraw_marks()

    def action_mark_all(self) -> None:
        shown = set(self._ids)
        self.marked = set() if shown <= self.marked else self.marked | shown
        self._redraw_marks()

    def _redraw_marks(self) -> None:
        self._seen.clear()  # every row's mark cell is looked at again
        self._fp = None
        self.refresh_view()
        self.app.refresh_bindings()

    def reorder(self) -> None:
        self._order_second = -1
        self._fp = None
        self.refresh_view()

    # --- controls on the marked rollouts --------------------------------------------------------

    def _each(self, action: str, note: str) -> None:
        rollouts = [r for r in self.acted_on() if self.session.allows(action, r)]
        for r in rollouts:
            self.session.send(action, r.id)
        if rollouts:
            names = ", ".join(f"#{r.index}" for r in rollouts[:8]) + (" …" if len(rollouts) > 8 else "")
            self.notify(f"rollout {names}: {note}", timeout=3, markup=False)
        self.app.refresh_bindings()

    def action_marked_pause(self) -> None:
        self._each("pause", "pausing before the next model call")

    def action_marked_resume(self) -> None:
        self._each("resume", "resumed")

    def action_step(self) -> None:
        self._each("step", "one more turn, then paused")

    def action_finish(self) -> None:
        self._each("finish", "finishing and scoring")

    def action_kill(self) -> None:
        from rlm_tui.tui.screens.modals import confirm_kill

        rollouts = [r for r in self.acted_on() if self.session.allows("kill", r)]
        if not rollouts:
            return
        label = f"rollout #{rollouts[0].index}" if len(rollouts) == 1 else f"{len(rollouts)} rollouts"

        def kill(yes: object) -> None:
            if yes:
                self._each("kill", "killed")

        self.app.push_screen(confirm_kill(label), kill)

    # --- drawing --------------------------------------------------------------------------------

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
        everyone = list(s.rollouts.values())
        bar_ = self.query_one(ProgressBar)
        bar_.update(total=max(1, s.num_rollouts or len(everyone)), progress=len(s.done))
        table = self.query_one(VimTable)
        if int(now) != self._order_second or len(everyone) != self._count:
            self._order_second, self._count = int(now), len(everyone)
            terms = parse_filter(self.filter_text)
            shown = [r for r in everyone if matches(r, terms, fmt.status(r, session.interrupted))]
            ids = [r.id for r in ordered(shown, self.sort_by, self.reverse, now)]
            if ids != self._ids:
                self._rebuild(table, ids)
                self.call_after_refresh(self._fit)  # the example column may have widened
        self._update_view_line(len(everyone))
        # not over a dialog (a quit question asked as the run started): it would hide it; it waits until it closes;
        # and not once the app is leaving: a screen pushed as it exits mounts without its widgets
        leaving = self.app.return_code is not None or getattr(self.app, "stopping", False)
        if not self._opened_single and self._ids and not isinstance(self.app.screen, ModalScreen) and not leaving:
            self._opened_single = True
            if s.num_rollouts == 1 and self.is_active:
                self.action_open()
        max_tokens = max((r.main_tokens + r.sub_tokens for r in everyone), default=0)
        if max_tokens != self._max_tokens:  # every row's token bar is measured against it
            self._max_tokens = max_tokens
            self._seen.clear()
        for rid in self._ids:
            r = s.rollouts[rid]
            version = feed.versions.get(rid, 0)
            if self._seen.get(rid) == version and r.status not in ("queued", "running"):
                continue  # a finished row only changes with new events
            self._seen[rid] = version
            cells = rollout_cells(
                r,
                now,
                session.interrupted,
                marked=rid in self.marked,
                max_tokens=max_tokens,
                context_limit=session.context_limit,
            )
            old = self._cells.get(rid)
            for i, (column, value) in enumerate(zip(COLUMNS, cells)):
                if old is None or old[i] != value:
                    table.update_cell(rid, column, value)
            self._cells[rid] = cells

    def _rebuild(self, table: VimTable, ids: list[str]) -> None:
        """New order or filter: the rows again, the highlighted rollout and the scroll kept."""
        current = self._ids[table.cursor_row] if 0 <= table.cursor_row < len(self._ids) else None
        scroll = table.scroll_y
        blank = ("",) * len(COLUMNS)
        table.clear()
        for rid in ids:
            table.add_row(*self._cells.get(rid, blank), key=rid)
        self._ids = ids
        self._seen.clear()
        if current in ids:
            table.move_cursor(row=ids.index(current), animate=False, scroll=False)
        table.scroll_to(y=scroll, animate=False, immediate=True)

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        """The "now" column takes the width the others leave, so a wide terminal is used, not left empty."""
        table = self.query_one(VimTable)
        table.set_column_width("now", max(WIDTHS["now"], table.width_left_for("now") - 1))

    def _update_view_line(self, total: int) -> None:
        arrow = "↓" if self.reverse else "↑"
        parts = [f"sort {self.sort_by} {arrow}"]
        if self.filter_text:
            parts.append(f"filter {printable(self.filter_text)}")
        parts.append(f"{len(self._ids):,}/{total:,} shown")
        if self.marked:
            parts.append(f"{len(self.marked):,} marked")
        line = " · ".join(parts)
        if self.size.width >= 120:  # the footer may not have room for them all
            line += "   (o sort · O reverse · / filter · x mark · X all · p/r pause/resume marked)"
        view = self.query_one("#run-view", Static)
        if str(view.content) != line:
            view.update(line)

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
            " tok · cost ",
            (usd(s.cost_usd), "bold"),
            " · elapsed ",
            (elapsed, "bold"),
            *(("\n", (s.error, "red")) if s.error else ()),
        )
        head = title.plain + "\n" + totals.plain  # the styles follow from the words
        if head != self._head:
            self._head = head
            self.query_one("#run-title", Static).update(title)
            self.query_one("#run-totals", Static).update(totals)
