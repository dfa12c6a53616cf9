"""The event vocabulary: the one contract between engine, store, reducer and UI."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar


def new_id() -> str:
    """64 random bits as hex: unique across processes, and any few leading characters tell ids apart."""
    return os.urandom(8).hex()


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """Common envelope; `parent_id` links sub-LLM batches, calls and tool calls into a tree."""

    kind: ClassVar[str] = "event"
    run_id: str
    rollout_id: str | None = None
    id: str = field(default_factory=new_id)
    parent_id: str | None = None
    ts: float = field(default_factory=time.time)

    def payload(self) -> dict[str, Any]:
        """The kind-specific fields, as stored in the `data` column."""
        names = _PAYLOAD_FIELDS.get(type(self))
        if names is None:
            names = tuple(f.name for f in dataclasses.fields(self) if f.name not in _ENVELOPE)
            _PAYLOAD_FIELDS[type(self)] = names
        return {name: getattr(self, name) for name in names}


_ENVELOPE = frozenset({"run_id", "rollout_id", "id", "parent_id", "ts"})
_PAYLOAD_FIELDS: dict[type, tuple[str, ...]] = {}


# --- runs -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    env: str
    mode: str
    model: str
    sub_model: str
    num_rollouts: int
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    status: str  # done | failed | killed
    error: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class RunStalled(Event):
    """No event for `idle_s` seconds: each unfinished rollout with the kind and age of its last event."""

    kind: ClassVar[str] = "run_stalled"
    idle_s: float
    stuck: list[dict[str, Any]] = field(default_factory=list)  # {rollout_id, last_kind, age_s}


# --- rollouts -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class RolloutQueued(Event):
    kind: ClassVar[str] = "rollout_queued"
    index: int
    example_id: str
    info: dict[str, Any] = field(default_factory=dict)
    target: Any = None


@dataclass(frozen=True, kw_only=True, slots=True)
class RolloutStarted(Event):
    kind: ClassVar[str] = "rollout_started"
    system_prompt: str
    user_prompt: str
    context_chars: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class RolloutFinished(Event):
    kind: ClassVar[str] = "rollout_finished"
    status: str  # done | failed | killed
    # answer_ready | max_turns | no_tool_call | context_length | operator_finished | budget_cpu | error | killed
    stop_reason: str
    answer: dict[str, Any]
    reward: float | None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


# --- model calls (main and sub) ------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelCallStarted(Event):
    """`parent_id`: none for the root model; for a child RLM's turn, the SubCallStarted id of its rlm_batch call."""

    kind: ClassVar[str] = "model_call_started"
    role: str  # main | child (a child RLM's root model)
    model: str
    turn: int
    messages: int  # how many messages were sent; the full request is reconstructible from events


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelCallFinished(Event):
    """`parent_id` is the ModelCallStarted id; for a sub-LLM's turn (role sub) the SubCallStarted id."""

    kind: ClassVar[str] = "model_call_finished"
    role: str
    text: str = ""
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # {id, name, arguments}
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    tokens_estimated: bool = False  # True when counted with tiktoken, not reported by the server
    latency_s: float = 0.0
    outcome: str = "ok"  # ok | context_length | error
    error: str | None = None
    cost_usd: float | None = None  # what the provider said it cost, else priced from the tokens; None: unknown


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelRetry(Event):
    """A model call's attempt failed and it will be tried again after `wait_s`; `parent_id` is the call's
    ModelCallStarted id (role main) or SubCallStarted id (role sub)."""

    kind: ClassVar[str] = "model_retry"
    role: str  # main | sub | child
    attempt: int  # the attempt that failed, from 1
    max_attempts: int
    reason: str  # one line: the HTTP status, the timeout, what was malformed
    wait_s: float


# --- REPL cells -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class CellStarted(Event):
    kind: ClassVar[str] = "cell_started"
    turn: int
    code: str
    source: str = "model"  # model | operator
    proposed: str | None = None  # the model's code, when the operator edited it before it ran


@dataclass(frozen=True, kw_only=True, slots=True)
class CellProposed(Event):
    """In approve mode the model's cell waits here for the operator (an OperatorAction approve, skip or reply);
    `parent_id` is the turn's ModelCallStarted id."""

    kind: ClassVar[str] = "cell_proposed"
    turn: int
    code: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CellFinished(Event):
    """`parent_id` is the CellStarted id. `output` is the full stored output (capped), `shown` what the model saw."""

    kind: ClassVar[str] = "cell_finished"
    turn: int
    output: str
    shown: str
    shown_chars: int | None = (
        None  # characters of the output in `shown`, the marker not counted; None in logs written before it
    )
    output_chars: int  # length of the full output before the storage cap
    truncated: bool  # the model saw less than the full output
    elapsed_s: float
    error: str | None = None  # exception summary, "timeout", or "crash"
    answer: dict[str, Any] = field(default_factory=dict)
    source: str = "model"


@dataclass(frozen=True, kw_only=True, slots=True)
class AnswerUpdated(Event):
    kind: ClassVar[str] = "answer_updated"
    content: str
    ready: bool
    source: str = "model"  # model | operator


@dataclass(frozen=True, kw_only=True, slots=True)
class SandboxRestarted(Event):
    kind: ClassVar[str] = "sandbox_restarted"
    reason: str  # timeout | crash
    lost: str  # what the model was told it lost


# --- sub-LLM batches ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class SubBatchStarted(Event):
    """`parent_id` is the CellStarted id of the cell that called llm_batch (or rlm_batch)."""

    kind: ClassVar[str] = "sub_batch_started"
    batch: int
    size: int
    rlm: bool = False  # rlm_batch: each call is a child RLM, whose turns and cells nest under it
    depth: int = 1  # 1: called by the rollout's root model; 2: by a child RLM; ...


@dataclass(frozen=True, kw_only=True, slots=True)
class SubBatchRefused(Event):
    """A batch that was not started (a budget, or rlm_batch deeper than --max-depth): each of its `size` prompts got
    `response`; `parent_id` is the cell's CellStarted id. Recorded so that a rebuilt REPL gets the same answer."""

    kind: ClassVar[str] = "sub_batch_refused"
    size: int
    response: str
    rlm: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class SubBatchFinished(Event):
    kind: ClassVar[str] = "sub_batch_finished"
    batch: int
    elapsed_s: float
    errors: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class SubCallStarted(Event):
    """`parent_id` is the SubBatchStarted id."""

    kind: ClassVar[str] = "sub_call_started"
    batch: int
    index: int
    prompt: str
    depth: int = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class SubCallFinished(Event):
    """`parent_id` is the SubCallStarted id; token totals over every model call the sub-LLM made."""

    kind: ClassVar[str] = "sub_call_finished"
    batch: int
    index: int
    response: str
    turns: int = 0
    tool_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    error: str | None = None
    cost_usd: float | None = None  # over every model call it made; None: some call's cost is unknown
    depth: int = 1  # a child RLM's totals are its own root model's: its sub-LLM calls report their own


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolCalled(Event):
    """A sub-LLM's tool call (or the root's, in llm mode); `parent_id` is the caller's event id."""

    kind: ClassVar[str] = "tool_called"
    name: str
    arguments: dict[str, Any]
    result: str
    elapsed_s: float = 0.0
    error: str | None = None


# --- the operator ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class OperatorAction(Event):
    """A command the engine took from the operator; rollout_id is None for the whole run."""

    kind: ClassVar[str] = "operator_action"
    # pause | resume | step | inject | exec | edit_answer | finish | kill; approval (on/off); approve | skip | reply
    action: str
    text: str = ""  # the message, the code, the new answer, on/off (approval), or why a cell was skipped
    command_id: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelNudged(Event):
    """The root model's turn ran no code, so it was reminded how to run code and how to answer;
    `parent_id` is that turn's ModelCallStarted id."""

    kind: ClassVar[str] = "model_nudged"
    nudge: int  # from 1
    text: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolCallRejected(Event):
    """A root-model call that could not run (an unknown tool, arguments that are not JSON, no string `code`);
    the model is told `reason`; `parent_id` is the turn's ModelCallStarted id."""

    kind: ClassVar[str] = "tool_call_rejected"
    name: str
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolProtocolChanged(Event):
    """The server refused the tools parameter, so the rollout goes on with cells written as fenced text."""

    kind: ClassVar[str] = "tool_protocol_changed"
    protocol: str  # the protocol from now on: text
    reason: str  # one line: what the server said
    system_prompt: str  # the system prompt that replaces the rollout's first one


@dataclass(frozen=True, kw_only=True, slots=True)
class RolloutPaused(Event):
    """The rollout stopped at a safe point (paused=True) or went on from one (paused=False)."""

    kind: ClassVar[str] = "rollout_paused"
    paused: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class RolloutForked(Event):
    """This rollout started at turn `turn` of another: the parent's cells before it were re-run with their
    recorded llm_batch answers; `diverged`: the turns whose rebuilt output differs from the parent's."""

    kind: ClassVar[str] = "rollout_forked"
    parent_run_id: str
    parent_rollout_id: str
    turn: int
    cells: int = 0  # the parent's cells re-run
    diverged: list[int] = field(default_factory=list)
    message: str | None = None  # the user message added before the turn
    edited_code: str | None = None  # the code that replaced the turn's cell


@dataclass(frozen=True, kw_only=True, slots=True)
class RolloutResumed(Event):
    """A rollout that a budget stopped goes on from turn `turn` under a raised budget (`rlm-tui resume`): its
    REPL was rebuilt from its own cells (`cells` re-run with their recorded llm_batch answers), its conversation
    and totals are what they were; `diverged`: the turns whose rebuilt output differs from the recorded one."""

    kind: ClassVar[str] = "rollout_resumed"
    turn: int
    cells: int = 0
    diverged: list[int] = field(default_factory=list)


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        RunStarted,
        RunFinished,
        RunStalled,
        RolloutQueued,
        RolloutStarted,
        RolloutFinished,
        ModelCallStarted,
        ModelCallFinished,
        ModelRetry,
        CellStarted,
        CellProposed,
        CellFinished,
        AnswerUpdated,
        SandboxRestarted,
        SubBatchStarted,
        SubBatchRefused,
        SubBatchFinished,
        SubCallStarted,
        SubCallFinished,
        ToolCalled,
        OperatorAction,
        RolloutPaused,
        RolloutForked,
        RolloutResumed,
        ModelNudged,
        ToolCallRejected,
        ToolProtocolChanged,
    )
}


_FIELD_NAMES = {kind: frozenset(f.name for f in dataclasses.fields(cls)) for kind, cls in EVENT_TYPES.items()}


def from_row(kind: str, envelope: dict[str, Any], data: dict[str, Any]) -> Event:
    """Rebuild an event from its stored parts; unknown fields from newer writers are dropped."""
    cls, names = EVENT_TYPES[kind], _FIELD_NAMES[kind]
    if not names.issuperset(data):
        data = {k: v for k, v in data.items() if k in names}
    return cls(**envelope, **data)
