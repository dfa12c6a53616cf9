"""A child RLM (an rlm_batch call) opened in place: its turns, cells and own sub-LLM batches, as the root's are."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from rlm_tui.state import RolloutState, SubCall
from rlm_tui.tui import fmt
from rlm_tui.tui.widgets.timeline import Timeline


def child_state(parent: RolloutState, call: SubCall) -> RolloutState:
    """The child as a rollout of its own, for the transcript: its prompt, its turns, the batches its cells made."""
    status = "running" if call.response is None and call.error is None else "failed" if call.error else "done"
    child = RolloutState(id=call.id, status=status, user_prompt=call.prompt, turns=call.child_turns)
    child.batches = [b for b in parent.batches if b.owner == call.id]
    child.answer = {"content": call.response or "", "ready": call.response is not None}
    child.stop_reason = "answered" if status == "done" else None
    child.error = call.error
    return child


class ChildScreen(ModalScreen):
    """Redrawn from the parent rollout's state as it changes, so a running child unfolds live."""

    CSS_PATH = "modals.tcss"
    BINDINGS = [Binding("escape,q", "close", "Close", id="child.close")]

    def __init__(self, parent: RolloutState, call: SubCall) -> None:
        super().__init__()
        self.parent_state, self.call = parent, call
        self._fp: tuple | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("", id="child-head")
            yield Timeline(id="child-timeline")
            yield Footer()

    def on_mount(self) -> None:
        self.query_one(Timeline).focus()
        self.redraw()
        self.set_interval(0.25, self.redraw)

    def redraw(self) -> None:
        c = self.call
        fp = (len(c.child_turns), sum(len(t.cells) for t in c.child_turns), c.response, c.error, c.turns)
        if fp == self._fp:
            return
        self._fp = fp
        head = (
            f"[b]child RLM #{c.index}[/b] of rlm_batch #{c.batch} · depth {c.depth} · {len(c.child_turns)} turns"
            f" · {c.prompt_tokens + c.completion_tokens:,} tok · {fmt.seconds(c.latency_s)}"
            f" · answer: {fmt.one_line(c.error or c.response or 'not yet', 80)}"
        )
        self.query_one("#child-head", Static).update(head)
        self.query_one(Timeline).show(child_state(self.parent_state, c))

    def action_close(self) -> None:
        self.dismiss()
