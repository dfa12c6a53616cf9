"""The pure reducer: fold events into RunState / RolloutState; no I/O."""

from __future__ import annotations

from bisect import bisect_right
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


@dataclass
class RolloutState:
    id: str
    index: int = 0
    example_id: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    target: Any = None
    status: str = "queued"
    stop_reason: str | None = None
    reward: float | None = None
    error: str | None = None
    system_prompt: str = ""
    user_prompt: str = ""
    started: float | None = None
    finished: float | None = None
    answer: dict[str, Any] = field(default_factory=lambda: {"content": "", "ready": False})
    answer_history: list[tuple[str, bool, str]] = field(default_factory=list)  # (content, ready, source)
    answer_turns: list[int] = field(default_factory=list)  # the turn each version came in (0 before the first)
    turns: list[Turn] = field(default_factory=list)
    batches: list[SubBatch] = field(default_factory=list)
    restarts: list[ev.SandboxRestarted] = field(default_factory=list)
    retries: list[ev.ModelRetry] = field(default_factory=list)  # main and sub, in order
    nudges: int = 0  # reminders after turns that ran no code
    recovered_calls: int = 0  # cells read from the model's text rather than from native tool calls
    rejected_calls: int = 0  # root-model calls that could not run: unknown tool, bad arguments
    protocol_change: ev.ToolProtocolChanged | None = None  # the server refused tools: cells came as text since
    paused: bool = False  # stopped at a safe point, waiting for the operator
    approving: bool = False  # approve mode: each proposed cell waits for the operator
    waiting: Proposal | None = None  # the proposed cell waiting for the operator's decision now
    forked_from: ev.RolloutForked | None = None  # the rollout and turn this one started from
    operator: list[ev.OperatorAction] = field(default_factory=list)
    operator_cells: list[Cell] = field(default_factory=list)  # code the operator ran; `turn` says where
    final_metrics: dict[str, Any] = field(default_factory=dict)
    # counters the metrics are computed from
    main_prompt_tokens: int = 0
    main_completion_tokens: int = 0
    main_reasoning_tokens: int = 0
    main_cached_tokens: int = 0
    model_time_s: float = 0.0
    repl_calls: int = 0
    repl_time_s: float = 0.0
    sub_calls: int = 0
    sub_turns: int = 0
    sub_tool_calls: int = 0
    sub_prompt_tokens: int = 0
    sub_completion_tokens: int = 0
    main_cost_usd: float | None = 0.0  # None once any call's cost is unknown: never shown as zero
    depth_tokens: dict[int, int] = field(default_factory=dict)  # sub-LLM and child tokens by depth
    child_calls: int = 0  # child RLMs (rlm_batch calls) finished
    sub_cost_usd: float | None = 0.0
    _cells: dict[str, Cell] = field(default_factory=dict, repr=False)
    _calls: dict[str, SubCall] = field(default_factory=dict, repr=False)
    _batches: dict[str, SubBatch] = field(default_factory=dict, repr=False)
    _turns: dict[str, Turn] = field(default_factory=dict, repr=False)
    _owners: dict[str, str] = field(default_factory=dict, repr=False)  # a child's turn id -> its call id

    @property
    def main_tokens(self) -> int:
        return self.main_prompt_tokens + self.main_completion_tokens

    @property
    def sub_tokens(self) -> int:
        return self.sub_prompt_tokens + self.sub_completion_tokens

    @property
    def cost_usd(self) -> float | None:
        """Main and sub-LLM calls together; None when any call's cost is unknown."""
        if self.main_cost_usd is None or self.sub_cost_usd is None:
            return None
        return self.main_cost_usd + self.sub_cost_usd

    @property
    def sub_calls_started(self) -> int:
        return len(self._calls)

    def metrics(self, now: float | None = None) -> dict[str, float]:
        """The per-rollout metrics, named as in verifiers' RLMEnv."""
        sizes = [b.size for b in self.batches]
        end = self.finished if self.finished is not None else now
        return (
            {
                "main_rlm_turns": len(self.turns),
                "main_rlm_prompt_tokens": self.main_prompt_tokens,
                "main_rlm_completion_tokens": self.main_completion_tokens,
                "sub_llm_call_count": self.sub_calls,
                "sub_llm_total_turns": self.sub_turns,
                "sub_llm_prompt_tokens": self.sub_prompt_tokens,
                "sub_llm_completion_tokens": self.sub_completion_tokens,
                "sub_llm_total_tool_calls": self.sub_tool_calls,
                "sub_llm_batch_count": len(sizes),
                "sub_llm_max_batch_size": max(sizes, default=0),
                "sub_llm_mean_batch_size": sum(sizes) / len(sizes) if sizes else 0.0,
                "repl_call_count": self.repl_calls,
                "repl_total_time_seconds": self.repl_time_s,
                "repl_mean_time_seconds": self.repl_time_s / self.repl_calls if self.repl_calls else 0.0,
                "wall_time_seconds": (end - self.started) if self.started is not None and end is not None else 0.0,
                "model_time_seconds": self.model_time_s,
                "main_nudge_count": self.nudges,
                "main_recovered_call_count": self.recovered_calls,
                "main_rejected_call_count": self.rejected_calls,
            }
            | self._costs()
            | self._depths()
        )

    def _depths(self) -> dict[str, float]:
        """Tokens by depth, when child RLMs ran: 0 the root model, 1 its sub-LLMs and children, 2 theirs, ..."""
        if not self.child_calls:
            return {}
        out: dict[str, float] = {"sub_rlm_call_count": self.child_calls, "depth_0_tokens": self.main_tokens}
        out |= {f"depth_{d}_tokens": n for d, n in sorted(self.depth_tokens.items())}
        return out

    def _costs(self) -> dict[str, float]:
        """The cost metrics that are known: an unknown cost is left out, never counted as zero."""
        out = {}
        if self.main_cost_usd is not None:
            out["main_rlm_cost_usd"] = self.main_cost_usd
        if self.sub_cost_usd is not None:
            out["sub_llm_cost_usd"] = self.sub_cost_usd
        if (total := self.cost_usd) is not None:
            out["total_cost_usd"] = total
        return out

    def apply(self, e: ev.Event) -> None:
        handler = _ROLLOUT_HANDLERS.get(type(e))
        if handler is not None:
            handler(self, e)


def _queued(s: RolloutState, e: ev.RolloutQueued) -> None:
    s.index, s.example_id, s.info, s.target = e.index, e.example_id, e.info, e.target


def _started(s: RolloutState, e: ev.RolloutStarted) -> None:
    s.status, s.started = "running", e.ts
    s.system_prompt, s.user_prompt = e.system_prompt, e.user_prompt


def _finished(s: RolloutState, e: ev.RolloutFinished) -> None:
    s.status, s.stop_reason, s.reward, s.error, s.finished = e.status, e.stop_reason, e.reward, e.error, e.ts
    s.answer = dict(e.answer)
    s.final_metrics = dict(e.metrics)
    s.waiting = None


def _call_started(s: RolloutState, e: ev.ModelCallStarted) -> None:
    if e.role == "main":
        turn = Turn(index=e.turn, call_id=e.id, started=e.ts)
        s.turns.append(turn)
        s._turns[e.id] = turn
    elif e.role == "child" and (call := s._calls.get(e.parent_id or "")) is not None:
        turn = Turn(index=e.turn, call_id=e.id, started=e.ts)
        call.child_turns.append(turn)
        s._turns[e.id] = turn
        s._owners[e.id] = call.id


def _call_finished(s: RolloutState, e: ev.ModelCallFinished) -> None:
    if e.role == "sub":  # a running sub-LLM's turn: live counts, replaced by SubCallFinished's totals
        call = s._calls.get(e.parent_id or "")
        if call is not None and call.response is None:
            call.turns += 1
            call.prompt_tokens += e.prompt_tokens if isinstance(e.prompt_tokens, int) else 0
            call.completion_tokens += e.completion_tokens if isinstance(e.completion_tokens, int) else 0
        return
    turn = s._turns.get(e.parent_id or "")
    if turn is None:
        return
    calls = [c for c in e.tool_calls if isinstance(c, dict)] if isinstance(e.tool_calls, list) else []  # a stored row
    turn.text, turn.reasoning, turn.tool_calls = e.text, e.reasoning, calls
    turn.prompt_tokens, turn.completion_tokens = e.prompt_tokens, e.completion_tokens
    turn.latency_s, turn.outcome, turn.error = e.latency_s, e.outcome, e.error
    if e.role != "main":
        return  # a child RLM's tokens come with its rlm_batch call's totals
    s.main_prompt_tokens += e.prompt_tokens
    s.main_completion_tokens += e.completion_tokens
    s.main_reasoning_tokens += e.reasoning_tokens
    s.main_cached_tokens += e.cached_tokens
    s.model_time_s += e.latency_s
    s.recovered_calls += sum(1 for c in calls if c.get("recovered"))
    s.main_cost_usd = add_cost(s.main_cost_usd, e.cost_usd)


def add_cost(total: float | None, cost: Any) -> float | None:
    """A running USD total; unknown (None) from the first call whose cost is not a number (the log is untrusted)."""
    if total is None or not isinstance(cost, (int, float)) or isinstance(cost, bool) or not 0 <= cost < float("inf"):
        return None
    return total + cost


def _nudged(s: RolloutState, e: ev.ModelNudged) -> None:
    s.nudges += 1
    turn = s._turns.get(e.parent_id or "")
    if turn is not None:
        turn.nudge = e


def _rejected(s: RolloutState, e: ev.ToolCallRejected) -> None:
    s.rejected_calls += 1
    turn = s._turns.get(e.parent_id or "")
    if turn is not None:
        turn.rejected.append(e)


def _protocol(s: RolloutState, e: ev.ToolProtocolChanged) -> None:
    s.protocol_change = e


def _retry(s: RolloutState, e: ev.ModelRetry) -> None:
    s.retries.append(e)
    turn = s._turns.get(e.parent_id or "")
    if turn is not None:
        turn.retries.append(e)
    call = s._calls.get(e.parent_id or "")
    if call is not None:
        call.retries += 1


def _cell_started(s: RolloutState, e: ev.CellStarted) -> None:
    cell = Cell(id=e.id, turn=e.turn, code=e.code, source=e.source, proposed=e.proposed, started=e.ts)
    s._cells[e.id] = cell
    if e.source == "child":
        turn = s._turns.get(e.parent_id or "")
        if turn is not None:
            turn.cells.append(cell)
            cell.owner = s._owners.get(e.parent_id or "")
    elif e.source == "operator":
        s.operator_cells.append(cell)
    elif s.turns:
        s.turns[-1].cells.append(cell)


def _cell_finished(s: RolloutState, e: ev.CellFinished) -> None:
    cell = s._cells.get(e.parent_id or "")
    if cell is not None:
        cell.output, cell.shown, cell.output_chars = e.output, e.shown, e.output_chars
        cell.shown_chars = _legacy_shown_chars(e.shown) if e.shown_chars is None else e.shown_chars
        cell.truncated, cell.elapsed_s, cell.error = e.truncated, e.elapsed_s, e.error
    if e.source == "model":
        s.repl_calls += 1
        s.repl_time_s += e.elapsed_s


def _legacy_shown_chars(shown: str) -> int:
    """For logs written before cell_finished carried shown_chars: what was shown, less the truncation marker."""
    cut = shown.rfind("\n[output truncated:")
    return cut if cut >= 0 else len(shown)


def _answer(s: RolloutState, e: ev.AnswerUpdated) -> None:
    s.answer = {"content": e.content, "ready": e.ready}
    s.answer_history.append((e.content, e.ready, e.source))
    s.answer_turns.append(s.turns[-1].index if s.turns else 0)
    if s.turns:
        s.turns[-1].answer = e.content


def _restarted(s: RolloutState, e: ev.SandboxRestarted) -> None:
    s.restarts.append(e)


def _batch_started(s: RolloutState, e: ev.SubBatchStarted) -> None:
    cell = s._cells.get(e.parent_id or "")
    owner = cell.owner if cell is not None else None
    batch = SubBatch(id=e.id, batch=e.batch, size=e.size, cell_id=e.parent_id, rlm=e.rlm, depth=e.depth, owner=owner)
    batch.started_at = e.ts
    s.batches.append(batch)
    s._batches[e.id] = batch


def _batch_finished(s: RolloutState, e: ev.SubBatchFinished) -> None:
    batch = s._batches.get(e.parent_id or "")
    if batch is not None:
        batch.elapsed_s, batch.errors = e.elapsed_s, e.errors


def _sub_started(s: RolloutState, e: ev.SubCallStarted) -> None:
    call = SubCall(id=e.id, batch=e.batch, index=e.index, prompt=e.prompt, depth=e.depth, started_at=e.ts)
    s._calls[e.id] = call
    batch = s._batches.get(e.parent_id or "")
    if batch is not None:
        batch.calls.append(call)
        call.rlm = batch.rlm


def _sub_finished(s: RolloutState, e: ev.SubCallFinished) -> None:
    call = s._calls.get(e.parent_id or "")
    if call is not None:
        call.response, call.turns, call.tool_calls = e.response, e.turns, e.tool_calls
        call.prompt_tokens, call.completion_tokens = e.prompt_tokens, e.completion_tokens
        call.latency_s, call.error, call.finished_at = e.latency_s, e.error, e.ts
        call.cost_usd = add_cost(0.0, e.cost_usd)
        s.child_calls += call.rlm
    depth = e.depth if isinstance(e.depth, int) else 1
    s.depth_tokens[depth] = s.depth_tokens.get(depth, 0) + e.prompt_tokens + e.completion_tokens
    s.sub_calls += 1
    s.sub_turns += e.turns
    s.sub_tool_calls += e.tool_calls
    s.sub_prompt_tokens += e.prompt_tokens
    s.sub_completion_tokens += e.completion_tokens
    s.sub_cost_usd = add_cost(s.sub_cost_usd, e.cost_usd)


def _operator(s: RolloutState, e: ev.OperatorAction) -> None:
    if e.action == "approval":
        s.approving = e.text == "on"
    elif e.action in ("approve", "skip", "reply"):
        if s.waiting is not None:
            s.waiting.decision, s.waiting.text, s.waiting = e.action, e.text, None
        return  # shown with the cell it decided, not among the operator's other actions
    s.operator.append(e)


def _proposed(s: RolloutState, e: ev.CellProposed) -> None:
    turn = s._turns.get(e.parent_id or "")
    s.waiting = Proposal(id=e.id, turn=e.turn, code=e.code)
    if turn is not None:
        turn.proposals.append(s.waiting)


def _paused(s: RolloutState, e: ev.RolloutPaused) -> None:
    s.paused = e.paused


def _forked(s: RolloutState, e: ev.RolloutForked) -> None:
    s.forked_from = e


def _resumed(s: RolloutState, e: ev.RolloutResumed) -> None:
    if s.started is not None and s.finished is not None:
        s.started += e.ts - s.finished  # its wall time leaves out the time it lay stopped
    s.status, s.stop_reason, s.reward, s.error, s.finished = "running", None, None, None, None


def _tool(s: RolloutState, e: ev.ToolCalled) -> None:
    owner = s._calls.get(e.parent_id or "") or s._turns.get(e.parent_id or "")
    if owner is not None:
        owner.tools.append(e)


_ROLLOUT_HANDLERS: dict[type, Any] = {
    ev.RolloutQueued: _queued,
    ev.RolloutStarted: _started,
    ev.RolloutFinished: _finished,
    ev.ModelCallStarted: _call_started,
    ev.ModelCallFinished: _call_finished,
    ev.ModelRetry: _retry,
    ev.CellStarted: _cell_started,
    ev.CellProposed: _proposed,
    ev.CellFinished: _cell_finished,
    ev.AnswerUpdated: _answer,
    ev.SandboxRestarted: _restarted,
    ev.SubBatchStarted: _batch_started,
    ev.SubBatchFinished: _batch_finished,
    ev.SubCallStarted: _sub_started,
    ev.SubCallFinished: _sub_finished,
    ev.ToolCalled: _tool,
    ev.OperatorAction: _operator,
    ev.RolloutPaused: _paused,
    ev.RolloutForked: _forked,
    ev.RolloutResumed: _resumed,
    ev.ModelNudged: _nudged,
    ev.ToolProtocolChanged: _protocol,
    ev.ToolCallRejected: _rejected,
}


@dataclass
class RunState:
    id: str
    env: str = ""
    mode: str = ""
    model: str = ""
    sub_model: str = ""
    num_rollouts: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    status: str = "running"
    error: str | None = None
    started: float | None = None
    finished: float | None = None
    paused: bool = False  # the operator paused the whole run
    rollouts: dict[str, RolloutState] = field(default_factory=dict)

    def apply(self, e: ev.Event) -> None:
        if isinstance(e, ev.RunStarted):
            self.env, self.mode, self.model, self.sub_model = e.env, e.mode, e.model, e.sub_model
            self.num_rollouts, self.config, self.started = e.num_rollouts, e.config, e.ts
        elif isinstance(e, ev.RunFinished):
            self.status, self.error, self.finished = e.status, e.error, e.ts
        elif isinstance(e, ev.OperatorAction) and e.rollout_id is None:
            if e.action in ("pause", "resume"):
                self.paused = e.action == "pause"
        elif e.rollout_id is not None:
            rollout = self.rollouts.get(e.rollout_id)
            if rollout is None:
                rollout = self.rollouts[e.rollout_id] = RolloutState(id=e.rollout_id)
            elif isinstance(e, ev.RolloutStarted) and rollout.status != "queued":
                # a resumed run starts an unfinished rollout again; the earlier attempt stays in the log only
                rollout = self.rollouts[e.rollout_id] = RolloutState(
                    id=rollout.id,
                    index=rollout.index,
                    example_id=rollout.example_id,
                    info=rollout.info,
                    target=rollout.target,
                    approving=rollout.approving,
                )
            rollout.apply(e)
            if isinstance(e, ev.RolloutQueued):
                settings = self.config.get("rollout")
                rollout.approving = isinstance(settings, dict) and settings.get("approve") is True

    @property
    def done(self) -> list[RolloutState]:
        return [r for r in self.rollouts.values() if r.status in ("done", "failed", "killed")]

    @property
    def retries(self) -> int:
        return sum(len(r.retries) for r in self.rollouts.values())

    @property
    def cost_usd(self) -> float | None:
        """Every rollout's calls together; None when any call's cost is unknown."""
        costs = [r.cost_usd for r in self.rollouts.values()]
        return None if None in costs else sum(c for c in costs if c is not None)

    @property
    def mean_reward(self) -> float | None:
        rewards = [r.reward for r in self.rollouts.values() if r.reward is not None]
        return sum(rewards) / len(rewards) if rewards else None


def fold(events: list[ev.Event], run_id: str) -> RunState:
    state = RunState(id=run_id)
    for e in events:
        state.apply(e)
    return state


def operator_by_turn(r: RolloutState) -> dict[int, list[Cell | ev.OperatorAction]]:
    """Operator actions and cells by how many turns had started when they happened."""
    starts = [t.started or 0.0 for t in r.turns]
    cells = list(r.operator_cells)
    placed: dict[int, list[Cell | ev.OperatorAction]] = {}
    for action in r.operator:
        at = bisect_right(starts, action.ts)
        if action.action in ("exec", "edit_answer"):
            code = action.text if action.action == "exec" else f'answer["content"] = {action.text!r}'
            match = next((c for c in cells if c.code == code), None)
            if match is not None:
                cells.remove(match)
                placed.setdefault(match.turn, []).append(match)
                continue
            if action.action == "exec":
                continue  # its cell has not started yet
        placed.setdefault(at, []).append(action)
    for cell in cells:
        placed.setdefault(cell.turn, []).append(cell)
    return placed
