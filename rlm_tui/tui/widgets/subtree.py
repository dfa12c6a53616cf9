"""The sub-LLM batches of one rollout as a live tree: batch -> calls -> tool calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from rlm_tui import events as ev
from rlm_tui.state import RolloutState, SubBatch, SubCall
from rlm_tui.tui import fmt

CHUNK = 300  # children added per refresh, so a 1,000-prompt batch never stalls a frame


@dataclass
class _Shown:
    batch: SubBatch
    node: TreeNode
    added: int = 0
    collapsed: bool = False  # folded once when a later batch started; after that the user decides
    label: Any = None
    pending: dict[str, tuple[SubCall, TreeNode, int, int, int]] = field(default_factory=dict)  # unfinished calls


def _done(call: SubCall) -> bool:
    return call.response is not None or call.error is not None


def call_label(call: SubCall) -> Text:
    text = Text(f"#{call.index} ", style="bold")
    if call.rlm:
        text.append(f"child RLM · {len(call.child_turns)} turns · ", style="magenta")
    if call.error:
        text.append(f"✗ {fmt.one_line(call.error, 40)}", style="red")
    elif call.response is None:
        text.append("◌ running", style="cyan")
        text.append(f" · {call.turns} turns · {call.prompt_tokens + call.completion_tokens:,} tok", style="dim")
    else:
        text.append("✓", style="green")
        text.append(
            f" {call.prompt_tokens + call.completion_tokens:,} tok · {fmt.seconds(call.latency_s)}", style="dim"
        )
        if call.tool_calls:
            text.append(f" · {call.tool_calls} tools", style="dim")
    if call.retries:
        text.append(f" · {call.retries} {'retry' if call.retries == 1 else 'retries'}", style="yellow")
    text.append(f"  {fmt.one_line(call.prompt, 50)}", style="dim italic")
    return text


def tool_label(tool: ev.ToolCalled) -> Text:
    args = ", ".join(f"{k}={fmt.one_line(repr(v), 24)}" for k, v in tool.arguments.items())
    text = Text(f"{tool.name}({args})", style="yellow")
    text.append(f" · {fmt.seconds(tool.elapsed_s)}", style="dim")
    if tool.error:
        text.append(f" ✗ {fmt.one_line(tool.error, 40)}", style="red")
    else:
        text.append(f" → {fmt.one_line(tool.result, 40)}", style="dim")
    return text


class SubTree(Tree[str]):
    """Adds nodes in chunks, relabels only what changed; a batch stays open until a later one starts."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("sub-LLM calls", **kwargs)
        self.show_root = False
        self.guide_depth = 2
        self._key: tuple = ()
        self._shown: list[_Shown] = []
        self._seen = 0  # batches of the state looked at so far
        self._turn_of: dict[str, int] = {}
        self._frame = 0
        self.calls: dict[str, SubCall] = {}  # node data -> call, for the detail view

    def show(self, r: RolloutState | None, turn_of: dict[str, int], frame: int, key: Any = None) -> None:
        """`key` changes when the state object itself was replaced (a replay went back)."""
        if (r.id if r else None, key) != self._key:
            self.clear()
            self._shown, self.calls, self._seen = [], {}, 0
            self._key = (r.id if r else None, key)
        if r is None:
            return
        self._turn_of, self._frame = turn_of, frame
        new = [b for b in r.batches[self._seen :] if b.owner is None]  # a child's own batches: in its transcript
        self._seen = len(r.batches)
        for shown in self._shown if new else ():  # a later batch started: the earlier ones fold, once
            if not shown.collapsed:
                shown.node.collapse()
                shown.collapsed = True
        for i, batch in enumerate(new):
            last = i == len(new) - 1
            node = self.root.add(Text(""), data=batch.id, expand=last)
            self._shown.append(_Shown(batch, node, collapsed=not last))
        budget = CHUNK
        for shown in self._shown:
            budget -= self._update(shown, turn_of, frame, budget)

    def on_focus(self) -> None:
        if self.cursor_line < 0 and self.root.children:
            self.cursor_line = 0  # tab in highlights a node, so that the first enter acts on it

    def on_tree_node_expanded(self, event: Tree.NodeExpanded) -> None:
        """Fill a batch the user opened now: a finished run sends no more redraws that would."""
        shown = next((s for s in self._shown if s.node is event.node), None)
        if shown is not None:
            self._fill(shown)

    def reveal(self, call_id: str) -> bool:
        """Open the batch that holds `call_id` and put the cursor on the call; False when no batch shown has it."""
        for s in self._shown:
            at = next((i for i, call in enumerate(s.batch.calls) if call.id == call_id), None)
            if at is None:
                continue
            s.node.expand()
            s.collapsed = True  # opened by hand: a later batch does not fold it
            if s.added <= at:
                self._update(s, self._turn_of, self._frame, at + 1 - s.added)
            node = next(n for n in s.node.children if n.data == call_id)
            self.call_after_refresh(self.move_cursor, node)  # its line is known once the tree is laid out again
            return True
        return False

    def _fill(self, shown: _Shown) -> None:
        if any(s is shown for s in self._shown) and shown.node.is_expanded and shown.added < len(shown.batch.calls):
            self._update(shown, self._turn_of, self._frame, CHUNK)
            self.call_after_refresh(self._fill, shown)  # the rest a chunk per frame

    def _update(self, s: _Shown, turn_of: dict[str, int], frame: int, budget: int) -> int:
        batch, node = s.batch, s.node
        done = s.label[2] if s.label and s.label[0] else sum(1 for c in batch.calls if _done(c))
        fp = (batch.finished, len(batch.calls), done, None if batch.finished else frame)
        if fp != s.label:
            s.label = fp
            node.set_label(self._batch_label(batch, turn_of, done, frame))
        used = 0
        if node.is_expanded and s.added < len(batch.calls) and budget > 0:
            for call in batch.calls[s.added : s.added + budget]:
                child = node.add(call_label(call), data=call.id, allow_expand=bool(call.tools))
                self.calls[call.id] = call
                for tool in call.tools:
                    child.add_leaf(tool_label(tool))
                if not _done(call):
                    s.pending[call.id] = (call, child, len(call.tools), call.retries, call.turns)
                used += 1
            s.added += used
        for cid, (call, child, tools, retries, turns) in list(s.pending.items()):
            if len(call.tools) > tools:
                for tool in call.tools[tools:]:
                    child.add_leaf(tool_label(tool))
                child.allow_expand = True
            if call.retries > retries or call.turns > turns:
                child.set_label(call_label(call))
            s.pending[cid] = (call, child, len(call.tools), call.retries, call.turns)
            if _done(call):
                child.set_label(call_label(call))
                del s.pending[cid]
        return used

    def _batch_label(self, batch: SubBatch, turn_of: dict[str, int], done: int, frame: int) -> Text:
        turn = turn_of.get(batch.cell_id or "")
        text = Text()
        if batch.finished:
            text.append("✓ " if not batch.errors else "✗ ", style="green" if not batch.errors else "red")
        else:
            text.append(f"{fmt.SPINNER[frame % len(fmt.SPINNER)]} ", style="cyan")
        text.append(f"turn {turn} · " if turn else "", style="bold")
        text.append(f"{'rlm_batch' if batch.rlm else 'batch'} #{batch.batch}", style="bold magenta")
        text.append(f" · {done:,}/{batch.size:,} done")
        if batch.errors:
            text.append(f" · {batch.errors} errors", style="red")
        if batch.finished:
            text.append(f" · {fmt.seconds(batch.elapsed_s)}", style="dim")
        return text
