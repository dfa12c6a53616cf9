"""A cell the model proposed in approve mode: run it, edit and run the edit, skip it, or reply instead."""

from __future__ import annotations

from typing import NamedTuple

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Static, TextArea

from rlm_tui.state import Proposal
from rlm_tui.tui.widgets.editor import Editor


class Decision(NamedTuple):
    action: str  # approve | skip | reply: the engine's command
    text: str  # the code to run, why it was skipped, or the reply


class ApproveScreen(ModalScreen[Decision | None]):
    """Dismissed with the operator's decision, or None to decide later (the cell keeps waiting)."""

    CSS_PATH = "modals.tcss"
    BINDINGS = [
        Binding("ctrl+r", "run", "Run", id="approve.run", tooltip="Run the code as it stands in the editor"),
        Binding("ctrl+s", "skip", "Skip", id="approve.skip", tooltip="Do not run it; the model is told why (below)"),
        Binding("ctrl+t", "reply", "Reply", id="approve.reply", tooltip="Do not run it; the model gets your message"),
        Binding("escape", "later", "Later", id="approve.later", priority=True),
    ]

    def __init__(self, label: str, proposal: Proposal) -> None:
        super().__init__()
        self.label, self.proposal = label, proposal

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(
                Content.assemble(
                    (f"{self.label} · turn {self.proposal.turn} · proposed cell", "bold"),
                    " ",
                    ("· edit it if you like · ctrl+r run · ctrl+s skip · ctrl+t reply · escape later", "dim"),
                )
            )
            # tab leaves the editor for the line below: a keyboard alone reaches every part of the decision
            yield Editor.code_editor(self.proposal.code, language="python", id="proposed", tab_behavior="focus")
            yield Input(placeholder="why it is skipped, or your reply to the model", id="why")
            with Horizontal(classes="buttons"):
                yield Button("Run", variant="primary", id="run")
                yield Button("Skip", id="skip")
                yield Button("Reply", id="reply")
                yield Button("Later", id="later")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        getattr(self, f"action_{event.button.id}")()

    def action_run(self) -> None:
        code = self.query_one(TextArea).text
        self.dismiss(Decision("approve", "" if code == self.proposal.code else code))

    def action_skip(self) -> None:
        self.dismiss(Decision("skip", self.query_one(Input).value.strip()))

    def action_reply(self) -> None:
        reply = self.query_one(Input).value.strip()
        if not reply:
            self.notify("write your reply to the model in the line below the code first", severity="warning")
            self.query_one(Input).focus()
            return
        self.dismiss(Decision("reply", reply))

    def action_later(self) -> None:
        self.dismiss(None)
