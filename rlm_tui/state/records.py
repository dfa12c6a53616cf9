"""What a rollout is made of, as the reducer builds it: turns, cells, proposals, sub-LLM calls and batches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rlm_tui import events as ev


@dataclass
class Cell:
    id: str
    turn: int
    code: str
    source: str = "model"
    output: str | None = None
    shown: str | None = None
    shown_chars: int = 0  # characters of the output the model saw, the truncation marker not counted
    output_chars: int = 0
    truncated: bool = False
    elapsed_s: float | None = None
    error: str | None = None
    proposed: str | None = None  # the model's code, when the operator edited it before it ran
    owner: str | None = None  # a child RLM's cell: the rlm_batch call (SubCall id) of that child
    started: float | None = None  # when the cell began, for the run view's "running cell 4 · 12s"


@dataclass
class Proposal:
    """A cell the model proposed in approve mode, and what the operator did with it (None: still waiting)."""

    id: str
    turn: int
    code: str
    decision: str | None = None  # approve | skip | reply
    text: str = ""  # the code run (approve), why it was skipped, or the reply


@dataclass
class Turn:
    """One main-model call and the cells it asked for."""

    index: int
    call_id: str
    text: str = ""
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float | None = None
    outcome: str | None = None
    error: str | None = None
    cells: list[Cell] = field(default_factory=list)
    tools: list[ev.ToolCalled] = field(default_factory=list)  # the root's own tool calls, in llm mode
    retries: list[ev.ModelRetry] = field(default_factory=list)
    rejected: list[ev.ToolCallRejected] = field(default_factory=list)  # calls that could not run
    nudge: ev.ModelNudged | None = None  # the reminder sent after this turn ran no code
    proposals: list[Proposal] = field(default_factory=list)  # its cells as proposed, in approve mode
    started: float | None = None  # when the call was made, to place operator actions between turns
    answer: str | None = None  # answer["content"] as this turn left it, when the turn changed it


@dataclass
class SubCall:
    id: str
    batch: int
    index: int
    prompt: str
    response: str | None = None
    turns: int = 0
    tool_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float | None = None
    error: str | None = None
    tools: list[ev.ToolCalled] = field(default_factory=list)
    retries: int = 0
    cost_usd: float | None = None
    depth: int = 1  # 1: a call of the root model's; 2: of a child RLM's; ...
    rlm: bool = False  # a child RLM (rlm_batch), whose turns are `child_turns`
    child_turns: list[Turn] = field(default_factory=list)
    started_at: float | None = None  # when it got a slot (the engine's clock), for the batch's timeline
    finished_at: float | None = None


@dataclass
class SubBatch:
    id: str
    batch: int
    size: int
    cell_id: str | None
    calls: list[SubCall] = field(default_factory=list)
    elapsed_s: float | None = None
    errors: int = 0
    rlm: bool = False
    depth: int = 1
    owner: str | None = None  # the child RLM's call whose cell started this batch; None: the root's
    started_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.elapsed_s is not None
