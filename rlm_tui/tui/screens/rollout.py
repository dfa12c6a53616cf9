"""One rollout: the root model's turns, the sub-LLM tree, the answer, and the context gauge."""

from __future__ import annotations

import math

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Footer, Static, Tree

from rlm_tui.state import RolloutState, SubCall
from rlm_tui.tui import fmt
from rlm_tui.tui.budgetbars import bars
from rlm_tui.tui.messages import OpenRun
from rlm_tui.tui.screens.base import RunBase
from rlm_tui.tui.session import Session
from rlm_tui.tui.widgets.answer import AnswerView
from rlm_tui.tui.widgets.subtree import SubTree
from rlm_tui.tui.widgets.timeline import Timeline
from rlm_tui.units import usd


def gauge(used: int, limit: int, width: int = 20) -> str:
    """The root model's context against its limit, as markup."""
    ratio = used / limit if limit else 0.0
    filled = min(width, round(width * ratio))
    color = "green" if ratio < 0.5 else "yellow" if ratio < 0.8 else "red"
    return (
        f"context [b]{fmt.tokens(used)}[/b] / {fmt.tokens(limit)} [{color}]{'█' * filled}[/]"
        f"[dim]{'░' * (width - filled)}[/] {ratio:.1%}"
    )


class RolloutScreen(RunBase):
    CSS_PATH = "rollout.tcss"
    BINDINGS = [
        Binding(
            "o",
            "full",
            "Full output",
            id="timeline.full_output",
            tooltip="Show full cell outputs instead of what the model saw",
        ),
        Binding("r", "reasoning", "Reasoning", id="timeline.reasoning", tooltip="Expand or collapse reasoning"),
        Binding(
            "left_square_bracket",
            "turn(-1)",
            "← Turn",
            id="timeline.previous_turn",
            tooltip="Scroll to the turn before",
        ),
        Binding(
            "right_square_bracket", "turn(1)", "Turn →", id="timeline.next_turn", tooltip="Scroll to the turn after"
        ),
        Binding("colon", "go_to_turn", "Go to turn", id="timeline.go_to_turn", tooltip="Scroll to turn N"),
        Binding(
            "F", "fork", "Fork", id="rollout.fork", tooltip="A new rollout from the turn on screen, its REPL rebuilt"
        ),
        # forensics
        Binding("y", "copy", "Copy", id="rollout.copy", tooltip="Copy the focused turn, sub-LLM call or answer"),
        Binding("v", "answers", "Answer versions", id="answer.versions", tooltip="Step through the answer's versions"),
        Binding("t", "batch", "Batch timeline", id="subtree.timeline", tooltip="The batch's calls against time"),
        Binding("slash", "search", "Search", id="timeline.search", tooltip="Search the turns: code, outputs, text"),
        Binding("n", "next_match(1)", "Next match", id="timeline.next_match", show=False),
        Binding("N", "next_match(-1)", "Previous match", id="timeline.previous_match", show=False),
    ]
    turns_of_target = True

    def __init__(self, session: Session, rollout_id: str) -> None:
        super().__init__(session)
        self.rollout_id = rollout_id
        self._version: tuple | None = None
        self._frame = -1
        self._head = ""
        self._turn_of: dict[str, int] = {}
        self._offered: str | None = None  # the proposed cell the approve dialog last opened on by itself
        self._query = ""
        self._match: tuple[int, float] | None = None  # (row, rank) of the match shown
        self._found_note = ""  # under the turns while a match is shown

    def compose(self) -> ComposeResult:
        yield Static("", id="ro-title")
        yield Static("", id="ro-gauge")
        with Horizontal(id="ro-body"):
            yield Timeline(id="timeline")
            with Vertical(id="ro-side"):
                yield SubTree(id="subtree")
                yield AnswerView(id="answer")
        yield Static("", id="replay-bar")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Timeline).border_title = "turns"
        self.query_one(SubTree).border_title = "sub-LLM calls"
        self.query_one(AnswerView).border_title = "answer"
        self.query_one(Timeline).focus()
        self.ready = True
        self.refresh_view()

    def target(self) -> RolloutState | None:
        return self.session.rollout(self.rollout_id)

    def action_full(self) -> None:
        timeline = self.query_one(Timeline)
        timeline.full = not timeline.full
        self.notify("full outputs" if timeline.full else "outputs as the model saw them", timeout=2)
        self._version = None
        self.refresh_view()

    def action_reasoning(self) -> None:
        timeline = self.query_one(Timeline)
        timeline.reasoning = not timeline.reasoning
        self._version = None
        self.refresh_view()

    def action_turn(self, step: int) -> None:
        timeline = self.query_one(Timeline)
        self._show_turn(timeline.go_to_turn(timeline.turn_on_screen() + step))

    def action_go_to_turn(self) -> None:
        from rlm_tui.tui.screens.modals import TextScreen

        def go(text: str | None) -> None:
            if text is not None and text.strip().isdigit():
                self._show_turn(self.query_one(Timeline).go_to_turn(int(text.strip())))
            elif text:
                self.notify(f"not a turn number: {text.strip()[:40]!r}", severity="warning", timeout=3)

        self.app.push_screen(TextScreen("Go to turn", "", "Go", one_line=True), go)

    def action_fork(self) -> None:
        from rlm_tui.tui.screens.modals import TextScreen

        r = self.target()
        if r is None or not r.turns:
            self.notify("this rollout has taken no turn yet: there is nothing to fork", severity="warning")
            return
        turn = max(1, self.query_one(Timeline).turn_on_screen())
        label = f"Fork {self._label(r)} at turn {turn}: a message to the model first (optional)"

        def fork(text: str | None) -> None:
            if text is not None:
                self._start_fork(r.id, turn, text.strip() or None)

        self.app.push_screen(TextScreen(label, "", "Fork"), fork)

    @work(thread=True, group="fork")
    def _start_fork(self, rollout_id: str, turn: int, message: str | None) -> None:
        """Start `rlm-tui fork` on its own, and open its run once it exists (the rebuild shows live)."""
        from rlm_tui.tui.engines import last_line, start_fork, started

        self.app.call_from_thread(self.notify, f"forking at turn {turn}: rebuilding the REPL…", timeout=4)
        engine, run_id, log = start_fork(self.session.db_path, rollout_id, turn, message)
        if not started(self.session.db_path, run_id, engine, notice=False):
            reason = last_line(log) or f"the fork exited with status {engine.returncode}"
            self.app.call_from_thread(self.notify, f"fork failed: {reason}", severity="error", timeout=10)
            return
        self.app.call_from_thread(self.app.post_message, OpenRun(run_id, show=True))

    def _offer_decision(self, r: RolloutState | None) -> None:
        """In approve mode the dialog opens by itself on a newly proposed cell, when this view is on top."""
        waiting = r.waiting if r is not None else None
        if waiting is None or waiting.id == self._offered or self.app.screen is not self:
            return
        if self.session.allows("decide", r):
            self._offered = waiting.id
            self.action_decide()

    def _show_turn(self, turn: int | None) -> None:
        timeline = self.query_one(Timeline)
        timeline.border_title = "turns" if turn is None else f"turns · turn {turn} of {timeline.turn_count}"

    def action_answers(self) -> None:
        from rlm_tui.tui.screens.answers import AnswerHistoryScreen

        r = self.target()
        if r is not None:
            self.app.push_screen(AnswerHistoryScreen(r))

    def action_batch(self) -> None:
        """The timeline of the batch under the tree's cursor, or else of the latest one."""
        from rlm_tui.tui.screens.batch import BatchScreen

        r = self.target()
        batches = [b for b in r.batches if b.owner is None] if r is not None else []
        node = self.query_one(SubTree).cursor_node
        at = node.data if node is not None and node.data else ""
        if not batches:
            self.notify("no llm_batch calls yet", severity="warning", timeout=3)
            return
        batch = next((b for b in batches if b.id == at or any(c.id == at for c in b.calls)), batches[-1])
        self.app.push_screen(BatchScreen(batch, self.session.now))

    def action_search(self) -> None:
        from rlm_tui.tui.screens.modals import TextScreen

        def search(text: str | None) -> None:
            if text and text.strip("\n"):
                self._query, self._match = text.strip("\n"), None
                self.action_next_match(1)

        self.app.push_screen(TextScreen("Search the turns", self._query, "Search", one_line=True), search)

    def action_next_match(self, step: int) -> None:
        """Step to the next (or previous) match, from the one shown or from the top of the view; wraps around."""
        timeline = self.query_one(Timeline)
        r = self.target()
        if not self._query or r is None:
            return
        hits = self._hits(r, timeline)  # searched afresh: a live rollout grows between presses
        if not hits:
            self.notify(f"no match for {self._query[:40]!r}", severity="warning", timeout=3)
            return
        top = round(timeline.scroll_offset.y)
        here = self._match or ((top - 1, math.inf) if step > 0 else (top, -1))
        ahead = [i for i, hit in enumerate(hits) if (hit[:2] > here if step > 0 else hit[:2] < here)]
        i = (ahead[0] if step > 0 else ahead[-1]) if ahead else (0 if step > 0 else len(hits) - 1)
        row, rank, call, turn = hits[i]
        self._match = (row, rank)
        where = ""
        if call is None:
            timeline.show_found(row, self._query)
            timeline.focus()
        else:  # a sub-LLM call: its turn at the top, the call under the cursor of the tree
            timeline.found = None
            timeline.go_to_turn(turn)
            tree = self.query_one(SubTree)
            tree.reveal(call.id)
            tree.focus()
            where = f" · in sub-LLM call #{call.index} of batch #{call.batch}"
        self._show_turn(timeline.turn_on_screen() or None)
        self._found_note = f"match {i + 1} of {len(hits)}{where} · n next · N previous"
        timeline.border_subtitle = self._found_note

    def _hits(self, r: RolloutState, timeline: Timeline) -> list[tuple[int, float, SubCall | None, int]]:
        """Every match as (row, rank, call, turn): a turn's rows first, then its sub-LLM calls that hold the query."""
        from rlm_tui.tui.copy import call_text

        hits: list[tuple[int, float, SubCall | None, int]] = [(row, 0, None, 0) for row in timeline.find(self._query)]
        needle = self._query.casefold()
        for batch in r.batches:
            turn = self._turn_of.get(batch.cell_id or "")
            if batch.owner is not None or turn is None:  # a child's own batches live in its transcript
                continue
            after = timeline.turn_row(turn + 1)
            row = (after if after is not None else timeline.total) - 1  # the calls come after the turn's own rows
            for call in batch.calls:
                if needle in call_text(call).casefold():
                    hits.append((row, len(hits) + 1, call, turn))
        return sorted(hits, key=lambda hit: hit[:2])

    def action_copy(self) -> None:
        from rlm_tui.tui import copy

        r = self.target()
        tree = self.query_one(SubTree)
        if r is None:
            return
        if self.focused is tree:
            node = tree.cursor_node
            call = tree.calls.get(node.data or "") if node is not None else None
            if call is not None:
                copy.copy(self.app, copy.call_text(call), f"sub-LLM call #{call.index}")
            else:
                self.notify("put the cursor on a call to copy it", severity="warning", timeout=3)
        elif self.focused is self.query_one(AnswerView):
            copy.copy(self.app, str(r.answer.get("content", "")), "the answer")
        else:
            number = self.query_one(Timeline).turn_on_screen()
            turn = next((t for t in r.turns if t.index == number), None)
            if turn is not None:
                copy.copy(self.app, copy.turn_text(turn), f"turn {number}")

    def on_tree_node_selected(self, event: Tree.NodeSelected) -> None:
        from rlm_tui.tui.screens.modals import CallScreen

        call = self.query_one(SubTree).calls.get(event.node.data or "")
        r = self.target()
        if call is not None and call.rlm and r is not None:  # a child RLM: its own transcript, in place
            from rlm_tui.tui.screens.child import ChildScreen

            self.app.push_screen(ChildScreen(r, call))
        elif call is not None:
            self.app.push_screen(CallScreen(call))

    def refresh_view(self) -> None:
        session = self.session
        feed = session.feed
        r = self.target()
        self.sync_keys()
        self._update_head(r)
        self.show_replay_bar()
        timeline = self.query_one(Timeline)
        if timeline.following:
            self._found_note = ""  # back at the end: the search is left
        unseen = f"↓ {timeline.unseen:,} new lines · end follows" if not timeline.following and timeline.unseen else ""
        timeline.border_subtitle = unseen or self._found_note
        if feed is None:
            return
        version = (feed.generation, feed.versions.get(self.rollout_id, 0))
        live = r is not None and r.status in ("queued", "running") and not r.paused and not session.interrupted
        frame = int(session.now() * 8) if live else 0  # from the view's clock: replays and snapshots stay still
        if version == self._version and frame == self._frame:
            return
        changed = version != self._version
        self._version, self._frame = version, frame
        if changed and r is not None:
            self._turn_of = {c.id: t.index for t in r.turns for c in t.cells}
        timeline.show(r, frame)
        tree = self.query_one(SubTree)
        tree.show(r, self._turn_of, frame, key=feed.generation)
        tree.border_subtitle = "no llm_batch calls yet" if r is not None and not r.batches else ""
        if changed:
            self.query_one(AnswerView).show(r)
            self._offer_decision(r)

    def _update_head(self, r: RolloutState | None) -> None:
        session = self.session
        if r is None:
            head = Content.styled("loading…" if session.loading else f"rollout {self.rollout_id}: no events yet", "dim")
            gauge_line = ""
        else:
            status = fmt.status(r, session.interrupted)
            if r.id in session.pausing and not r.paused and r.status == "running":
                status = "pausing"
            end = r.finished if r.finished is not None else session.now()
            elapsed = fmt.seconds(end - r.started) if r.started is not None else "-"
            head = Content.assemble(
                (f"rollout #{r.index}", "bold"),
                f" · {r.example_id} · ",
                (status, fmt.STATUS_STYLE.get(status, "yellow")),
                f" · turn {len(r.turns)} · reward ",
                (fmt.reward(r.reward), "bold"),
                f" · {elapsed} · ",
                (f"{r.id} · {session.mode}", "dim"),
            )
            last = next((t.prompt_tokens for t in reversed(r.turns) if t.outcome is not None), 0)
            gauge_line = (
                f"{gauge(last, session.context_limit_for_run)} · main [b]{fmt.tokens(r.main_tokens)}[/b] tok"
                f" · sub [b]{fmt.tokens(r.sub_tokens)}[/b] tok · {r.sub_calls:,} sub calls"
                f" · {len(r.batches)} batches · cost [b]{usd(r.cost_usd)}[/b]"
            )
            budget = bars(r, session.feed.state.config if session.feed else None, session.now())
            if budget:
                gauge_line += f"\n{budget}"
        if head.plain + gauge_line != self._head:
            self._head = head.plain + gauge_line  # the styles follow from the words
            self.query_one("#ro-title", Static).update(head)
            self.query_one("#ro-gauge", Static).update(gauge_line)
