"""Two folded rollouts side by side: turn i with turn i, what each did and where they differ, and a summary."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rlm_tui.state import RolloutState, RunState, Turn
from rlm_tui.text import printable
from rlm_tui.textdiff import changed_spans

PARTS = ("text", "code", "output", "answer")  # what an aligned pair of turns is compared on


@dataclass(frozen=True)
class Step:
    """What one rollout did in one turn: the model's text, the code it ran (cells, or an LLM's tool calls), what
    that code gave back, and the answer as the turn left it."""

    text: str
    code: tuple[str, ...]
    output: tuple[str, ...]
    answer: str
    error: str | None = None


@dataclass(frozen=True)
class Pair:
    index: int
    a: Step | None  # None: that rollout had no such turn
    b: Step | None
    differs: tuple[str, ...]  # the PARTS that are not the same, all of them when a side is absent


@dataclass(frozen=True)
class Summary:
    reward: float | None
    main_tokens: int
    sub_tokens: int
    sub_calls: int
    wall_time_s: float
    turns: int
    status: str
    answer: str

    def cells(self) -> list[tuple[str, str]]:
        """The summary row's (label, value) for this rollout, as the command and the app both show them."""
        return [
            ("reward", "-" if self.reward is None else f"{self.reward:.3f}"),
            ("main tokens", f"{self.main_tokens:,}"),
            ("sub tokens", f"{self.sub_tokens:,}"),
            ("sub-LLM calls", str(self.sub_calls)),
            ("wall time", f"{self.wall_time_s:.2f} s"),
            ("turns", str(self.turns)),
            ("ended", printable(self.status)),
        ]


@dataclass(frozen=True)
class Comparison:
    a: Summary
    b: Summary
    pairs: tuple[Pair, ...]

    @property
    def same_turns(self) -> int:
        return sum(1 for p in self.pairs if not p.differs)


def value(step: Step, part: str) -> str:
    """One of the PARTS of a step as one text, the cells' in order, a line apart."""
    got = getattr(step, part)
    return "\n".join(got) if isinstance(got, tuple) else got


def _cut(text: str, lines: int, width: int) -> tuple[str, int]:
    """The first `lines` lines of `text`, each made printable and cut to `width`, and how many lines are left."""
    rows = []
    for row in text.split("\n", lines)[:lines]:  # only what is shown is made printable: outputs run to megabytes
        row = printable(row.removesuffix("\r")[: width + 1])
        rows.append(row if len(row) <= width else row[: width - 1] + "…")
    return "\n".join(rows), max(0, text.count("\n") + 1 - lines)


def clipped(text: str, other: str, *, lines: int, width: int) -> tuple[str, list[tuple[int, int]], int]:
    """`text` made printable and cut to `lines` lines of `width` characters, the ranges of that which `other`,
    cut the same way, lacks (what is seen beside it; diffing whole megabytes would stall the screen), and how
    many lines were left out."""
    shown, hidden = _cut(text, lines, width)
    return shown, changed_spans(_cut(other, lines, width)[0], shown), hidden


def _str(value: Any) -> str:
    """A stored field as text whatever the database held in it: nothing is empty, anything else its str()."""
    return value if isinstance(value, str) else "" if value is None else str(value)


def _tool_code(name: Any, arguments: Any) -> str:
    shown = _str(arguments) if isinstance(arguments, str) else json.dumps(arguments, sort_keys=True, default=str)
    return f"{_str(name)}({shown})"


def steps(r: RolloutState) -> list[Step]:
    """Each turn of `r` as a Step; the answer carries over the turns that did not change it."""
    answer = ""
    out = []
    for k, turn in enumerate(r.turns):
        if turn.answer is not None:
            answer = _str(turn.answer)
        last = k == len(r.turns) - 1
        if last and r.finished is not None:  # an LLM's answer is set when the rollout ends, not by a turn
            answer = _str(r.answer.get("content"))
        out.append(_step(turn, answer))
    return out


def _step(turn: Turn, answer: str) -> Step:
    code = [_str(c.code) for c in turn.cells]
    output = [_str(c.output if c.output is not None else c.error) for c in turn.cells]
    for tool in turn.tools:  # the root's own tool calls, in llm mode
        code.append(_tool_code(tool.name, tool.arguments))
        output.append(_str(tool.result))
    return Step(text=_str(turn.text), code=tuple(code), output=tuple(output), answer=answer, error=turn.error)


def _differs(a: Step | None, b: Step | None) -> tuple[str, ...]:
    if a is None or b is None:
        return PARTS
    return tuple(part for part in PARTS if getattr(a, part) != getattr(b, part))


def summary(r: RolloutState) -> Summary:
    return Summary(
        reward=r.reward,
        main_tokens=r.main_tokens,
        sub_tokens=r.sub_tokens,
        sub_calls=r.sub_calls,
        wall_time_s=float(r.metrics()["wall_time_seconds"]),
        turns=len(r.turns),
        status=_str(r.stop_reason or r.status),
        answer=_str(r.answer.get("content")),
    )


def compare(a: RolloutState, b: RolloutState) -> Comparison:
    steps_a, steps_b = steps(a), steps(b)
    pairs = []
    for i in range(max(len(steps_a), len(steps_b))):
        step_a = steps_a[i] if i < len(steps_a) else None
        step_b = steps_b[i] if i < len(steps_b) else None
        pairs.append(Pair(index=i, a=step_a, b=step_b, differs=_differs(step_a, step_b)))
    return Comparison(a=summary(a), b=summary(b), pairs=tuple(pairs))


def paired_rollouts(a: RunState, b: RunState) -> list[tuple[RolloutState, RolloutState]]:
    """The rollouts of two runs on the same examples, in `a`'s order; by position when they share none."""
    order_a = sorted(a.rollouts.values(), key=lambda r: r.index)
    order_b = sorted(b.rollouts.values(), key=lambda r: r.index)
    by_example: dict[str, RolloutState] = {}
    for r in order_b:
        by_example.setdefault(r.example_id, r)
    pairs = [(r, by_example[r.example_id]) for r in order_a if r.example_id in by_example]
    return pairs or list(zip(order_a, order_b))
