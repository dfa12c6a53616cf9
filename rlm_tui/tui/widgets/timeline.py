"""The root model's turns as blocks of lines: text, code, what the model saw of each output."""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from rlm_tui import events as ev
from rlm_tui.state import Cell, Proposal, RolloutState, SubBatch, Turn, operator_by_turn
from rlm_tui.textdiff import changed_spans
from rlm_tui.tui import fmt
from rlm_tui.tui.widgets.lines import Block, LineView, RichBlock, TextBlock

BIG = 20_000  # longer text skips word wrapping and highlighting, and is folded instead
PROMPT_LINES = 8  # lines of the prompt shown until full text is asked for
NOTES = {
    "pause": "paused",
    "resume": "resumed",
    "step": "asked for one turn",
    "inject": "sent a message",
    "finish": "forced the finish",
    "kill": "killed the rollout",
    "edit_answer": "edited the answer",
    "approval": "switched approval",
}


class Timeline(LineView):
    """Builds blocks from a RolloutState, reusing every block whose fingerprint did not change."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.full = False  # full outputs and prompt, not only what the model saw
        self.reasoning = False  # expand reasoning
        self.ended = ""  # why nothing runs any more, once the rollout or its engine stopped: no spinner says otherwise
        self._made: dict[Any, Block] = {}
        self._turns: dict[str, tuple[tuple, list[Block]]] = {}  # call id -> (fingerprint, its blocks)
        self._heads: list[int] = []  # the block each turn starts with, by turn
        self._went: tuple[int, int] | None = None  # (turn, scroll row) of the last go_to_turn

    @property
    def turn_count(self) -> int:
        return len(self._heads)

    def turn_row(self, turn: int) -> int | None:
        """The line turn `turn` (from 1) starts on; None when there is no such turn."""
        if not 1 <= turn <= len(self._heads) or len(self._starts) <= self._heads[turn - 1]:
            return None
        return self._starts[self._heads[turn - 1]]

    def turn_on_screen(self) -> int:
        """The turn at the top of the view (0 above the first): the one a fork from here would leave from."""
        top = round(self.scroll_offset.y)
        if self._went is not None and self._went[1] == top:  # near the end the last turns cannot reach the top
            return self._went[0]
        return sum(1 for t in range(1, len(self._heads) + 1) if (row := self.turn_row(t)) is not None and row <= top)

    def go_to_turn(self, turn: int) -> int | None:
        """Scroll turn `turn`'s head to the top and stop following; the turn shown, or None when there is none."""
        turn = max(1, min(turn, len(self._heads)))
        row = self.turn_row(turn)
        if row is None:
            return None
        self.following = False
        self.scroll_to(y=row, animate=False, immediate=True)
        self._went = (turn, round(self.scroll_offset.y))
        return turn

    def _block(self, kind: type[Block], key: Any, fp: Any, *args: Any, **kw: Any) -> Block:
        block = self._made.get(key)
        if block is None or block.fp != fp or type(block) is not kind:
            block = self._made[key] = kind(key, fp, *args, **kw)
        return block

    def _text(self, key: Any, text: str, style: str = "", indent: int = 0) -> Block:
        """Word-wrapped rich text when small, folded plain text when large."""
        fp = (len(text), hash(text), style)
        if len(text) > BIG or indent:
            return self._block(TextBlock, key, fp, text, style, indent)
        return self._block(RichBlock, key, fp, Text(text, style=style))

    def _line(self, key: Any, text: Text | str, style: str = "") -> Block:
        text = Text(text, style=style) if isinstance(text, str) else text
        return self._block(RichBlock, key, (text.plain, str(style), tuple(map(str, text.spans))), text)

    def show(self, r: RolloutState | None, frame: int = 0, interrupted: bool = False) -> None:
        """`interrupted`: the engine is gone, so what was under way will not end."""
        if r is None:
            self.set_blocks([])
            return
        blocks: list[Block] = []
        add = blocks.append
        if r.forked_from is not None:
            add(self._text(("fork", r.forked_from.id), fork_line(r.forked_from), "bold cyan"))
        add(self._line("prompt-h", Text("prompt", style="bold")))
        prompt = r.user_prompt
        if not self.full:
            lines = prompt.split("\n")
            if len(lines) > PROMPT_LINES:
                prompt = "\n".join(lines[:PROMPT_LINES]) + f"\n… {len(lines) - PROMPT_LINES:,} more lines (o shows all)"
        blocks.append(self._text(("prompt", self.full), prompt, "dim"))
        by_cell: dict[str | None, list[SubBatch]] = {}
        for batch in r.batches:
            by_cell.setdefault(batch.cell_id, []).append(batch)
        restarts = {e.parent_id: e for e in r.restarts}
        placed = operator_by_turn(r)
        running = r.status in ("queued", "running") and not r.paused and not interrupted
        if interrupted and r.status in ("queued", "running"):
            self.ended = "the engine stopped"
        else:
            self.ended = "" if r.status in ("queued", "running") else f"the rollout ended ({r.status})"
        blocks += self._operator(placed.get(0, ()), by_cell, restarts, frame)
        change = r.protocol_change
        changed_after = (
            max((i for i, t in enumerate(r.turns) if (t.started or 0) <= change.ts), default=-1)
            if change is not None
            else None
        )  # the turn whose call the server refused
        heads = []
        for i, turn in enumerate(r.turns):
            last = i == len(r.turns) - 1
            heads.append(len(blocks))
            blocks += self._turn_blocks(turn, by_cell, restarts, frame if last and running else 0, r.waiting)
            if change is not None and i == changed_after:
                add(
                    self._text(
                        ("protocol", change.id),
                        f"⇄ {change.reason}; the model writes its cells as fenced text from here on",
                        "bold yellow",
                    )
                )
            blocks += self._operator(placed.get(i + 1, ()), by_cell, restarts, frame)
        if r.status in ("done", "failed", "killed"):
            style = {"done": "bold green", "failed": "bold red"}.get(r.status, "bold magenta")
            end = Text(f"■ {r.status} · {r.stop_reason or '-'} · reward {fmt.reward(r.reward)}", style=style)
            if r.error:
                end.append(f"\n{r.error}", style="red")
            add(self._line("end", end))
        elif r.paused:
            add(self._line("end", Text("⏸ paused before the next model call", style="bold yellow")))
        self._heads = heads
        self.set_blocks(blocks)

    def _turn_blocks(
        self, t: Turn, by_cell: dict, restarts: dict, frame: int, waiting: Proposal | None = None
    ) -> list[Block]:
        """A turn's blocks, built again only when something they show changed: a redraw costs the live turn."""
        cells = tuple(
            (
                c.id,
                c.output is None,
                c.error,
                tuple((b.id, len(b.calls), b.elapsed_s, b.errors) for b in by_cell.get(c.id, ())),
                restarts[c.id].id if c.id in restarts else None,
                c.proposed is not None,
            )
            for c in t.cells
        )
        proposals = tuple((p.id, p.decision, p is waiting) for p in t.proposals)
        fp = (
            t.outcome,
            t.latency_s,
            t.error,
            hash(t.text),
            hash(t.reasoning),
            len(t.tool_calls),
            len(t.retries),
            len(t.rejected),
            t.nudge is not None,
            len(t.tools),
            cells,
            proposals,
            self.full,
            self.reasoning,
            frame,
            self.ended,
        )
        made = self._turns.get(t.call_id)
        if made is None or made[0] != fp:
            made = self._turns[t.call_id] = (fp, self._turn(t, by_cell, restarts, frame, waiting))
        return made[1]

    def _turn(self, t: Turn, by_cell: dict, restarts: dict, frame: int, waiting: Proposal | None) -> list[Block]:
        key = t.call_id
        head = Text(f"── turn {t.index} ", style="bold cyan")
        if t.outcome is None and self.ended:
            head.append(f"■ no reply: {self.ended}", style="yellow")
        elif t.outcome is None:
            head.append(f"{fmt.SPINNER[frame % len(fmt.SPINNER)]} waiting for the model", style="cyan")
        else:
            head.append(
                f"· {t.prompt_tokens:,} → {t.completion_tokens:,} tok · {fmt.seconds(t.latency_s)}", style="cyan"
            )
        out = [self._line(("turn", key), head)]
        for retry in t.retries:
            line = (
                f"  ⟳ attempt {retry.attempt} of {retry.max_attempts} failed: {fmt.one_line(retry.reason, 200)}"
                f" · next try in {fmt.seconds(retry.wait_s)}"
            )
            out.append(self._line(("retry", retry.id), line, "yellow"))
        if t.error:
            out.append(self._text(("terr", key), f"model error ({t.outcome}): {t.error}", "bold red"))
        if t.reasoning:
            if self.reasoning:
                out.append(self._text(("reason", key), t.reasoning, "italic dim", indent=2))
            else:
                out.append(
                    self._line(("reason", key), f"▸ reasoning · {len(t.reasoning):,} chars (r expands)", "dim italic")
                )
        if t.text:
            out.append(self._text(("text", key), t.text))
        recovered = sorted({str(c["recovered"]) for c in t.tool_calls if c.get("recovered")})
        if recovered:
            n = sum(1 for c in t.tool_calls if c.get("recovered"))
            out.append(
                self._line(
                    ("recovered", key),
                    f"  ↺ {n} call{'s' if n != 1 else ''} read from the model's text "
                    f"({', '.join(recovered)}), not sent as tool calls",
                    "dim cyan",
                )
            )
        for rejected in t.rejected:
            out.append(self._text(("rejected", rejected.id), f"  ✗ call not run: {rejected.reason}", "red"))
        if t.nudge is not None:
            out.append(self._line(("nudge", key), f"  ↪ no code ran: reminder {t.nudge.nudge} sent", "yellow"))
        for tool in t.tools:  # the root's own tool calls, in llm mode
            head = Text(f"  ⚙ {tool.name}(", style="yellow")
            head.append(", ".join(f"{k}={v!r}" for k, v in tool.arguments.items()), style="yellow")
            head.append(f") · {fmt.seconds(tool.elapsed_s)}", style="yellow")
            out.append(self._line(("tool", tool.id), head))
            result = tool.error or tool.result
            out.append(self._block(TextBlock, ("tool-r", tool.id), len(result), result, "red" if tool.error else "", 4))
        cells = list(t.cells)
        for proposal in t.proposals:
            if proposal is waiting:
                out += self._proposal(
                    proposal, "⏳ proposed cell · waiting for your decision (d: run, edit, skip or reply)"
                )
            elif proposal.decision == "skip":
                why = f": {proposal.text}" if proposal.text else ""
                out += self._proposal(proposal, f"⊘ proposed cell skipped by the operator{why}")
            elif proposal.decision == "reply":
                out += self._proposal(proposal, f"✉ proposed cell not run; the operator replied: {proposal.text}")
            elif cells:  # approved (or approval turned off while it waited): it ran, as the next cell
                out += self._cell(cells.pop(0), by_cell, restarts, frame)
        for cell in cells:
            out += self._cell(cell, by_cell, restarts, frame)
        return out

    def _proposal(self, proposal: Proposal, note: str) -> list[Block]:
        code = Syntax(proposal.code, "python", theme="ansi_dark", word_wrap=True, background_color="default")
        gutter = Segment("▎ ", Style.parse("yellow"))
        return [
            self._text(("prop-h", proposal.id), note, "bold yellow"),
            self._block(RichBlock, ("prop", proposal.id), hash(proposal.code), code, gutter),
        ]

    def _edited(self, cell: Cell) -> Block:
        """The model's code beside the code the operator ran instead, what differs marked on each side."""
        proposed, ran = cell.proposed or "", cell.code
        left, right = Text(proposed), Text(ran)
        for start, end in changed_spans(ran, proposed):
            left.stylize("bold red strike", start, end)
        for start, end in changed_spans(proposed, ran):
            right.stylize("bold green", start, end)
        grid = Table(box=None, expand=True, padding=(0, 1), show_edge=False)
        grid.add_column("proposed by the model", style="dim", ratio=1)
        grid.add_column("run, as the operator edited it", ratio=1)
        grid.add_row(left, right)
        return self._block(RichBlock, ("edited", cell.id), (hash(proposed), hash(ran)), grid)

    def _cell(self, cell: Cell, by_cell: dict, restarts: dict, frame: int) -> list[Block]:
        key = cell.id
        out: list[Block] = []
        if cell.source == "operator":
            out.append(self._line(("op-h", key), "▍ operator cell · the model does not see it", "bold yellow"))
        gutter = Segment("▎ ", Style.parse("yellow" if cell.source == "operator" else "blue"))
        if cell.proposed is not None:
            out.append(self._line(("edit-h", key), "✎ edited by the operator before it ran", "bold yellow"))
            out.append(self._edited(cell))
        elif len(cell.code) > BIG:
            out.append(self._text(("code", key), cell.code, indent=2))
        else:
            syntax = Syntax(cell.code, "python", theme="ansi_dark", word_wrap=True, background_color="default")
            out.append(self._block(RichBlock, ("code", key), hash(cell.code), syntax, gutter))
        for batch in by_cell.get(cell.id, ()):
            kind = (
                f"rlm_batch #{batch.batch} · {batch.size:,} child RLMs"
                if batch.rlm
                else f"llm_batch #{batch.batch} · {batch.size:,} prompts"
            )
            line = Text(f"  ↳ {kind}", style="magenta")
            if batch.finished:
                line.append(
                    f" · {fmt.seconds(batch.elapsed_s)}" + (f" · {batch.errors} errors" if batch.errors else "")
                )
            elif self.ended:
                line.append(f" · ■ {len(batch.calls):,} started, then {self.ended}", style="yellow")
            else:
                line.append(f" · {fmt.SPINNER[frame % len(fmt.SPINNER)]} {len(batch.calls):,} started")
            out.append(self._line(("batch", batch.id), line))
        if cell.output is None and self.ended:
            out.append(self._line(("out-h", key), f"  ■ no output: {self.ended} while it ran", "yellow"))
            return out
        if cell.output is None:
            spin = fmt.SPINNER[frame % len(fmt.SPINNER)] if frame else "…"
            out.append(self._line(("out-h", key), f"  {spin} running", "dim"))
            return out
        out.append(self._line(("out-h", key), self._output_head(cell)))
        text = cell.output if self.full else cell.shown
        if text:
            style = "red" if cell.error else ""
            out.append(self._block(TextBlock, ("out", key, self.full), (len(text), style), text, style, 2))
        restart = restarts.get(cell.id)
        if restart is not None:
            out.append(
                self._text(("restart", key), f"⟳ sandbox restarted ({restart.reason}): {restart.lost}", "bold yellow")
            )
        return out

    def _output_head(self, cell: Cell) -> Text:
        head = Text("  ")
        if cell.error:
            label = "timeout" if cell.error.startswith("timeout") else "error"
            head.append(f"✗ {label}: {fmt.one_line(cell.error, 80)}", style="bold red")
        else:
            head.append("output", style="green")
        head.append(f" · {fmt.seconds(cell.elapsed_s)}", style="dim")
        if self.full:
            head.append(f" · full output, {cell.output_chars:,} chars", style="dim")
            if cell.output_chars > len(cell.output or ""):
                head.append(f" (stored {len(cell.output or ''):,})", style="dim")
        elif cell.truncated:
            head.append(f" · model saw {cell.shown_chars:,} of {cell.output_chars:,} chars (o: full)", style="yellow")
        return head

    def _operator(self, items: Any, by_cell: dict, restarts: dict, frame: int) -> list[Block]:
        out: list[Block] = []
        for item in items:
            if isinstance(item, Cell):
                out += self._cell(item, by_cell, restarts, frame)
            else:
                note = NOTES.get(item.action, item.action)
                line = Text(f"⚑ operator {note}", style="bold yellow")
                if item.text:
                    line.append(f": {item.text}", style="yellow")
                out.append(self._line(("note", item.id), line))
        return out


def fork_line(f: ev.RolloutForked) -> str:
    """Where a fork left its parent, and what it changed there."""
    line = f"⑂ fork of rollout {f.parent_rollout_id} (run {f.parent_run_id}) at turn {f.turn}: {f.cells} cells rebuilt"
    if f.diverged:
        line += f"; diverged from the parent at turn{'s' * (len(f.diverged) > 1)} {', '.join(map(str, f.diverged))}"
    if f.edited_code is not None:
        line += "; turn's cell edited"
    if f.message:
        line += f"; message: {fmt.one_line(f.message, 200)}"
    return line
