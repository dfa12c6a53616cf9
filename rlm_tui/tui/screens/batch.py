"""One sub-LLM batch as a timeline: each call a bar from when it got a slot to when it ended, stragglers marked."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Footer

from rlm_tui.state import SubBatch, SubCall
from rlm_tui.tui import fmt
from rlm_tui.tui.widgets.lines import Block, LineView, RichBlock

STRAGGLER = 2.0  # a call that took this many times the batch's median call is a straggler,
STRAGGLER_GAP = 0.1  # and this many seconds more: a 3 ms call is not late beside 1 ms ones
LABEL = 7  # "#1234 " and a space
TAIL = 30  # the duration, tools and mark after each bar


@dataclass(frozen=True)
class Span:
    call: SubCall
    start: float  # seconds after the batch started
    end: float  # when it ended, or now for a call still running
    running: bool


def _time(value: object) -> float | None:
    """A stored timestamp, or None when it is not a finite number (the store is untrusted: inf would stall the bars)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None  # type: ignore[arg-type]


def spans(batch: SubBatch, now: float) -> list[Span]:
    """The calls that have started, placed against the batch's start (times from the store are untrusted: clamped)."""
    t0 = _time(batch.started_at)
    if t0 is None:
        return []
    out = []
    for call in batch.calls:
        start = _time(call.started_at)
        if start is None:
            continue
        running = call.response is None and call.error is None
        end = now if running else _time(call.finished_at) or start
        out.append(Span(call, max(0.0, start - t0), max(0.0, end - t0, start - t0), running))
    return out


def stragglers(shown: list[Span]) -> set[str]:
    """The finished calls that took STRAGGLER times the median and STRAGGLER_GAP more, in a batch of three or more."""
    done = [s.end - s.start for s in shown if not s.running]
    if len(done) < 3:
        return set()
    late = max(STRAGGLER * statistics.median(done), statistics.median(done) + STRAGGLER_GAP)
    return {s.call.id for s in shown if not s.running and s.end - s.start >= late}


def summary(batch: SubBatch, shown: list[Span], slow: set[str]) -> Text:
    text = Text(f"{'rlm_batch' if batch.rlm else 'batch'} #{batch.batch}", style="bold magenta")
    done = [s for s in shown if not s.running]
    text.append(f" · {len(done):,}/{batch.size:,} done")
    if len(shown) > len(done):
        text.append(f" · {len(shown) - len(done):,} running", style="cyan")
    if batch.size > len(shown):
        text.append(f" · {batch.size - len(shown):,} waiting for a slot", style="dim")
    total = max((s.end for s in shown), default=0.0)
    text.append(f" · {fmt.seconds(batch.elapsed_s if batch.finished else total)}")
    if done:
        median = statistics.median(s.end - s.start for s in done)
        slowest = max(done, key=lambda s: s.end - s.start)
        text.append(f" · median call {fmt.seconds(median)} · slowest #{slowest.call.index} ", style="dim")
        text.append(fmt.seconds(slowest.end - slowest.start), style="dim")
        if median > 0:
            text.append(f" ({(slowest.end - slowest.start) / median:.1f}× median)", style="dim")
        half = sorted(s.end for s in done)[(len(done) - 1) // 2]
        if batch.finished and total > half:
            text.append(f" · half the calls had ended at {fmt.seconds(half)}", style="dim")
    if slow:
        text.append(f" · {len(slow)} {'straggler' if len(slow) == 1 else 'stragglers'}", style="bold yellow")
    return text


def row(span: Span, total: float, width: int, slow: bool) -> Text:
    """`#i ▕   ████   ▏ 1.23 s · 2 tools ◀ straggler`, the bar scaled so that `total` fills it."""
    call = span.call
    text = Text(f"#{call.index}".ljust(LABEL - 1) + " ", style="bold")
    room = max(10, width - LABEL - TAIL - 2)
    scale = room / total if total > 0 else 0.0
    first = min(room - 1, int(span.start * scale))
    last = max(first + 1, min(room, round(span.end * scale)))
    style = "cyan" if span.running else "red" if call.error else "yellow" if slow else "green"
    text.append("▕", style="dim")
    text.append(" " * first)
    text.append(("▒" if span.running else "█") * (last - first), style=style)
    text.append(" " * (room - last))
    text.append("▏ ", style="dim")
    took = span.end - span.start
    text.append(f"running {fmt.seconds(took)}" if span.running else fmt.seconds(took), style=style)
    if call.tool_calls or call.tools:
        text.append(f" · {max(call.tool_calls, len(call.tools))} tools", style="dim")
    if call.error:
        text.append(" ✗ error", style="red")
    if slow:
        text.append(" ◀ straggler", style="bold yellow")
    return text


class _Row(RichBlock):
    """A bar drawn for the width it is shown at."""

    def __init__(self, key: object, fp: object, draw: Callable[[int], Text]) -> None:
        super().__init__(key, fp, Text(""))
        self.draw = draw

    def _render(self, width, console):  # type: ignore[no-untyped-def]
        if width != self._width:
            self.renderable = self.draw(width)
        return super()._render(width, console)


class BatchScreen(ModalScreen):
    """A batch's calls against time, live while it runs; `s` sorts by index or by time taken."""

    CSS_PATH = "modals.tcss"
    BINDINGS = [
        Binding("escape,q", "close", "Close", id="batch.close"),
        Binding("s", "sort", "Sort", id="batch.sort", tooltip="By call index, or slowest first"),
    ]

    def __init__(self, batch: SubBatch, now: Callable[[], float]) -> None:
        super().__init__()
        self.batch, self.now = batch, now
        self.slowest_first = False
        self._rows: dict[str, _Row] = {}  # a row whose bar did not move is the same block: its layout is kept
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield LineView(id="console", follow=False)
            yield Footer()

    def on_mount(self) -> None:
        self.query_one(LineView).focus()
        self.redraw()
        if not self.batch.finished:
            self._timer = self.set_interval(0.25, self.redraw)  # a running batch grows, on the view's clock

    def redraw(self) -> None:
        batch = self.batch
        if batch.finished and self._timer is not None:
            self._timer.stop()
        shown = spans(batch, self.now())
        slow = stragglers(shown)
        total = max((s.end for s in shown), default=0.0)
        if self.slowest_first:
            shown = sorted(shown, key=lambda s: s.start - s.end)
        else:
            shown = sorted(shown, key=lambda s: s.call.index)
        axis = Text(" " * LABEL + f"0 s → {fmt.seconds(total)} after the batch started", style="dim")
        head = summary(batch, shown, slow)
        blocks: list[Block] = [RichBlock("head", head.plain, head)]
        blocks.append(RichBlock("axis", axis.plain, axis))
        for s in shown:
            slow_one = s.call.id in slow
            fp = (s.start, s.end, s.running, slow_one, total)
            block = self._rows.get(s.call.id)
            if block is None or block.fp != fp:

                def draw(width: int, s: Span = s, slow_one: bool = slow_one) -> Text:
                    return row(s, total, width, slow_one)

                block = self._rows[s.call.id] = _Row(s.call.id, fp, draw)
            blocks.append(block)
        self.query_one(LineView).set_blocks(blocks)

    def action_sort(self) -> None:
        self.slowest_first = not self.slowest_first
        self.notify("slowest first" if self.slowest_first else "by call index", timeout=2)
        self.redraw()

    def action_close(self) -> None:
        self.dismiss()
