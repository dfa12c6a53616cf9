"""The answer as it evolves, with what changed since its previous version highlighted."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from rlm_tui.state import RolloutState
from rlm_tui.textdiff import changed_middle, changed_spans
from rlm_tui.tui.widgets.lines import LineView, RichBlock, TextBlock

CHANGED = "bold black on green"
PLAIN_LIMIT = 100_000  # a longer answer is shown as plain folded text, its changes counted but not coloured


class AnswerView(LineView):
    """Shows answer["content"], its ready flag, and who changed it last."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(follow=False, **kwargs)
        self._fp: Any = None

    def show(self, r: RolloutState | None) -> None:
        history = r.answer_history if r else []
        fp = (r.id if r else None, len(history), r.answer.get("ready") if r else None, r.status if r else None)
        if fp == self._fp:
            return
        self._fp = fp
        if r is None:
            self.set_blocks([])
            return
        content = str(r.answer.get("content", ""))
        ready = bool(r.answer.get("ready"))
        source = history[-1][2] if history else "model"
        head = Text()
        head.append("✓ ready" if ready else "… not ready", style="bold green" if ready else "yellow")
        head.append(f" · version {len(history)} · {len(content):,} chars", style="dim")
        if source == "operator":
            head.append(" · edited by the operator", style="bold yellow")
        previous = history[-2][0] if len(history) > 1 else ""
        diff = changed_spans if len(content) <= PLAIN_LIMIT else changed_middle
        spans = diff(previous, content) if len(history) > 1 else []
        if spans:
            head.append(f" · {sum(b - a for a, b in spans):,} chars changed", style="green")
        blocks = [RichBlock("head", head.plain, head)]
        if len(content) > PLAIN_LIMIT:
            blocks.append(TextBlock("body", (len(history), len(content)), content))
        elif content:
            body = Text(content)
            for a, b in spans:
                body.stylize(CHANGED, a, b)
            blocks.append(RichBlock("body", (len(history), len(content)), body))
        else:
            blocks.append(RichBlock("body", 0, Text("(empty)", style="dim")))
        self.set_blocks(blocks)
