"""The answer as it evolves, with what changed since its previous version highlighted."""

from __future__ import annotations

import difflib
from typing import Any

from rich.text import Text

from rlm_tui.state import RolloutState
from rlm_tui.tui.widgets.lines import LineView, RichBlock, TextBlock

DIFF_LIMIT = 50_000  # past this, only the changed middle is found (prefix and suffix), not a full diff
CHANGED = "bold black on green"


def changed_spans(old: str, new: str) -> list[tuple[int, int]]:
    """Ranges of `new` that are not in `old`."""
    if len(old) + len(new) > 2 * DIFF_LIMIT:
        head = 0
        while head < min(len(old), len(new)) and old[head] == new[head]:
            head += 1
        tail = 0
        while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
            tail += 1
        return [(head, len(new) - tail)] if head < len(new) - tail else []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    return [(j1, j2) for tag, _, _, j1, j2 in matcher.get_opcodes() if tag in ("replace", "insert") and j2 > j1]


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
        spans = changed_spans(previous, content) if len(history) > 1 else []
        if spans:
            head.append(f" · {sum(b - a for a, b in spans):,} chars changed", style="green")
        blocks = [RichBlock("head", head.plain, head)]
        if len(content) > DIFF_LIMIT * 2:
            blocks.append(TextBlock("body", (len(history), len(content)), content))
        elif content:
            body = Text(content)
            for a, b in spans:
                body.stylize(CHANGED, a, b)
            blocks.append(RichBlock("body", (len(history), len(content)), body))
        else:
            blocks.append(RichBlock("body", 0, Text("(empty)", style="dim")))
        self.set_blocks(blocks)
