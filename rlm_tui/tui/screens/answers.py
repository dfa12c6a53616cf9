"""Every version of answer["content"], one at a time, with what it inserted and deleted against the one before."""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer

from rlm_tui.state import RolloutState
from rlm_tui.tui.widgets.lines import LineView, RichBlock

INSERTED = "bold black on green"
DELETED = "bold white on red strike"
_WORDS = re.compile(r"\w+|\s+|[^\w\s]")
DIFF_LIMIT = 100_000  # past this, a version is shown whole without marks: a word diff of it would stall


def edits(old: str, new: str) -> list[tuple[str, str]]:
    """`new` against `old` as ("=" | "+" | "-", text) pieces, word by word, deletions before insertions."""
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    out: list[tuple[str, str]] = []
    for op, i0, i1, j0, j1 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(("=", "".join(a[i0:i1])))
            continue
        if i1 > i0:
            out.append(("-", "".join(a[i0:i1])))
        if j1 > j0:
            out.append(("+", "".join(b[j0:j1])))
    return out


def version_text(r: RolloutState, k: int) -> tuple[Text, Text]:
    """The head and the marked body of version `k` (from 0)."""
    content, ready, source = r.answer_history[k]
    turn = r.answer_turns[k] if k < len(r.answer_turns) else 0
    head = Text(f"version {k + 1} of {len(r.answer_history)}", style="bold")
    if source == "operator":
        head.append(f" · edited by the operator (e) after turn {turn}", style="bold black on yellow")
    else:
        head.append(f" · written in turn {turn}" if turn else " · written before the first turn", style="cyan")
    head.append(f" · {len(content):,} chars · {'ready' if ready else 'not ready'}", style="dim")
    previous = r.answer_history[k - 1][0] if k else ""
    body = Text()
    if max(len(previous), len(content)) > DIFF_LIMIT:
        body.append(content)
        return head, body
    inserted = deleted = 0
    for op, piece in edits(previous, content):
        if op == "=":
            body.append(piece)
        elif op == "+":
            inserted += len(piece)
            body.append(piece, style=INSERTED)
        else:
            deleted += len(piece)
            body.append(piece, style=DELETED)
    head.append(f" · +{inserted:,} −{deleted:,}", style="green" if not deleted else "red")
    return head, body


class AnswerHistoryScreen(ModalScreen):
    """`[`/`]` or ←/→ step between versions; the diff is against the version before."""

    CSS_PATH = "modals.tcss"
    BINDINGS = [
        Binding("escape,q", "close", "Close", id="answers.close"),
        Binding("left,left_square_bracket", "step(-1)", "← Version", id="answers.previous"),
        Binding("right,right_square_bracket", "step(1)", "Version →", id="answers.next"),
    ]

    def __init__(self, rollout: RolloutState) -> None:
        super().__init__()
        self.rollout = rollout
        self.version = len(rollout.answer_history) - 1

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield LineView(id="versions", follow=False)
            yield Footer()

    def on_mount(self) -> None:
        self.show_version()
        self.query_one(LineView).focus()

    def show_version(self) -> None:
        view = self.query_one(LineView)
        if self.version < 0:
            view.set_blocks([RichBlock("none", 0, Text("the answer was never written", style="dim"))])
            return
        head, body = version_text(self.rollout, self.version)
        view.set_blocks([RichBlock("head", self.version, head), RichBlock("body", self.version, body)])
        view.scroll_home(animate=False)

    def action_step(self, step: int) -> None:
        self.version = max(0, min(len(self.rollout.answer_history) - 1, self.version + step))
        self.show_version()

    def action_close(self) -> None:
        self.dismiss()
