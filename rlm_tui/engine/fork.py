"""Forks: a rollout that starts at turn N of a stored one, its REPL rebuilt by re-running the parent's cells."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rlm_tui import events as ev
from rlm_tui.engine import prompts
from rlm_tui.engine.control import DECISIONS
from rlm_tui.engine.replies import ModelReply, tool_call_message
from rlm_tui.sandbox.session import MAX_BATCH_PROMPTS

if TYPE_CHECKING:
    from rlm_tui.engine.steps import Steps
    from rlm_tui.sandbox import Sandbox

NO_RECORD = "[llm_batch error] the parent recorded no response for this prompt"


class ForkError(Exception):
    """The stored rollout cannot be forked there; the message is one line."""


@dataclass(frozen=True)
class RecordedBatch:
    prompts: tuple[str, ...] | None  # None: a refused batch, whose prompts were not recorded
    responses: tuple[str, ...]


@dataclass(frozen=True)
class ForkPoint:
    """The parent's rollout up to (not including) its model call of turn `turn`."""

    run_id: str
    rollout_id: str
    example_id: str
    turn: int
    history: tuple[ev.Event, ...]  # the parent's own events before the cut
    batches: dict[str, tuple[RecordedBatch, ...]]  # parent cell id -> its llm_batch calls, in order
    outputs: dict[str, str]  # parent cell id -> its recorded output
    next_reply: ev.ModelCallFinished | None  # the parent's reply at turn `turn`, whose code --edit-code replaces
    text_protocol: bool = False  # the parent's server refused tools before the cut: cells come as text

    @property
    def lineage(self) -> dict[str, Any]:
        return {"rollout_id": self.rollout_id, "run_id": self.run_id, "turn": self.turn}


@dataclass
class Fork:
    """Where a fork starts, what it changes there, and what the rebuild found."""

    point: ForkPoint
    message: str | None = None  # appended as a user message before the model's turn
    code: str | None = None  # replaces the code of the turn's cell, which runs instead of a model call
    diverged: list[int] = field(default_factory=list)  # turns whose rebuilt cell output differs from the parent's


def fork_point(events: Iterable[ev.Event], rollout_id: str, turn: int) -> ForkPoint:
    """The fork point of `rollout_id` at `turn`, from its run's stored events (untrusted: checked here)."""
    own = [e for e in events if e.rollout_id == rollout_id]
    queued = [e for e in own if isinstance(e, ev.RolloutQueued)]
    if not queued:
        raise ForkError(f"rollout {rollout_id} is not in its run's events")
    starts = [i for i, e in enumerate(own) if isinstance(e, ev.RolloutStarted)]
    own = own[starts[-1] :] if starts else []  # a resumed run's earlier attempt is not what the rollout became
    turns = [e for e in own if isinstance(e, ev.ModelCallStarted) and e.role == "main"]
    if not turns:
        raise ForkError(f"rollout {rollout_id} never took a turn; there is nothing to fork")
    last = max((e.turn for e in turns if isinstance(e.turn, int)), default=0)
    if not 1 <= turn <= last:
        raise ForkError(f"rollout {rollout_id} has turns 1 to {last}; --at-turn {turn} is not one of them")
    cut = next(
        (i for i, e in enumerate(own) if isinstance(e, ev.ModelCallStarted) and e.role == "main" and e.turn == turn),
        None,
    )
    if cut is None:
        raise ForkError(f"rollout {rollout_id}'s events are damaged: turn {turn} has no model call")
    started_id = own[cut].id
    reply = next((e for e in own[cut:] if isinstance(e, ev.ModelCallFinished) and e.parent_id == started_id), None)
    return _point(queued[0], turn, tuple(own[:cut]), reply)


def _point(queued: ev.RolloutQueued, turn: int, history: tuple[ev.Event, ...], reply: Any) -> ForkPoint:
    """The point at `turn` after `history`, its recorded batches and outputs read and its events checked."""
    try:
        batches, outputs = _recorded(history)
        _check(history)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        raise ForkError(f"rollout {queued.rollout_id}'s events are damaged: {exc}") from None
    return ForkPoint(
        run_id=queued.run_id,
        rollout_id=str(queued.rollout_id),
        example_id=str(queued.example_id),
        turn=turn,
        history=history,
        batches=batches,
        outputs=outputs,
        next_reply=reply,
        text_protocol=any(isinstance(e, ev.ToolProtocolChanged) for e in history),
    )


def continuation_point(events: Iterable[ev.Event], rollout_id: str) -> ForkPoint:
    """Where a rollout that a budget stopped goes on: after its last turn, everything before it its history."""
    own = [e for e in events if e.rollout_id == rollout_id]
    queued = [e for e in own if isinstance(e, ev.RolloutQueued)]
    starts = [i for i, e in enumerate(own) if isinstance(e, ev.RolloutStarted)]
    if not queued or not starts:
        raise ForkError(f"rollout {rollout_id} never started; there is nothing to go on from")
    history = tuple(
        e for e in own[starts[-1] :] if not isinstance(e, (ev.RolloutFinished, ev.RolloutResumed, ev.RolloutQueued))
    )
    last = max((e.turn for e in history if isinstance(e, ev.ModelCallStarted) and e.role == "main"), default=0)
    return _point(queued[0], last + 1, history, None)


async def rebuild_quietly(sandbox: Sandbox, point: ForkPoint) -> tuple[int, list[int]]:
    """Re-run the point's cells in `sandbox` with their recorded llm_batch answers, logging nothing (the log has
    them already): (cells re-run, turns whose output differs from the recorded one)."""
    cells, diverged = 0, []
    for e in point.history:
        if not isinstance(e, ev.CellStarted) or e.source == "child":
            continue
        answers = RecordedAnswers(point.batches.get(e.id, ()))
        result = await sandbox.run(e.code, answers)
        cells += 1
        if (answers.mismatches or result.output != point.outputs.get(e.id)) and e.turn not in diverged:
            diverged.append(e.turn)
    return cells, diverged


class RecordedAnswers:
    """A cell's llm_batch (and rlm_batch) calls answered from the recorded responses, in order; a call that
    differs from the recorded one is counted."""

    def __init__(self, recorded: tuple[RecordedBatch, ...]) -> None:
        self.queue, self.mismatches = list(recorded), 0

    async def __call__(self, prompts_: list[str], rlm: bool = False) -> list[str]:
        return self.take(prompts_)[1]

    def take(self, prompts_: list[str]) -> tuple[RecordedBatch | None, list[str]]:
        """The recorded batch this call stands for (None: there is none), and one response per prompt."""
        want = self.queue.pop(0) if self.queue else None
        if (
            want is None
            or (want.prompts is not None and tuple(prompts_) != want.prompts)
            or (want.prompts is None and len(prompts_) != len(want.responses))
        ):
            self.mismatches += 1
        got = list(want.responses[: len(prompts_)]) if want is not None else []
        return want, got + [NO_RECORD] * (len(prompts_) - len(got))


def _check(history: tuple[ev.Event, ...]) -> None:
    """Raise on a stored event whose fields the rebuild relies on have the wrong types."""
    for e in history:
        if isinstance(e, ev.CellStarted) and not (isinstance(e.code, str) and isinstance(e.turn, int)):
            raise ValueError("a cell without code or turn")
        if isinstance(e, ev.ModelCallFinished) and not (
            isinstance(e.text, str)
            and isinstance(e.tool_calls, list)
            and all(isinstance(c, dict) and isinstance(c.get("id"), str) for c in e.tool_calls)
        ):
            raise ValueError("a model reply whose text or tool calls are not what the engine writes")
        if isinstance(e, ev.CellFinished) and not (isinstance(e.shown, str) and isinstance(e.output, str)):
            raise ValueError("a cell output that is not text")
        if isinstance(e, ev.CellStarted) and not isinstance(e.proposed, (str, type(None))):
            raise ValueError("a cell whose proposed code is not text")
        if isinstance(e, ev.CellProposed) and not isinstance(e.code, str):
            raise ValueError("a proposed cell without code")
        if isinstance(e, ev.OperatorAction) and not isinstance(e.text, str):
            raise ValueError("an operator action whose text is not text")
    parent_messages(history)


def _recorded(own: Iterable[ev.Event]) -> tuple[dict[str, tuple[RecordedBatch, ...]], dict[str, str]]:
    """Each parent cell's llm_batch calls (prompts and responses, by index) and its output."""
    batch_of_cell: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}
    calls: dict[str, tuple[str, int]] = {}  # sub call id -> (batch id, index)
    prompts_: dict[str, dict[int, str]] = {}
    responses: dict[str, dict[int, str]] = {}
    outputs: dict[str, str] = {}
    refused: dict[str, tuple[int, str]] = {}  # refused batch id -> (size, what each prompt got)
    for e in own:
        if isinstance(e, ev.SubBatchStarted) and e.parent_id is not None:
            if not 0 <= int(e.size) <= MAX_BATCH_PROMPTS:
                raise ValueError(f"an llm_batch of {e.size} prompts")
            batch_of_cell.setdefault(e.parent_id, []).append(e.id)
            sizes[e.id] = int(e.size)
        elif isinstance(e, ev.SubCallStarted) and e.parent_id in sizes:
            calls[e.id] = (e.parent_id, int(e.index))
            prompts_.setdefault(e.parent_id, {})[int(e.index)] = str(e.prompt)
        elif isinstance(e, ev.SubCallFinished) and e.parent_id in calls:
            batch, index = calls[e.parent_id]
            responses.setdefault(batch, {})[index] = str(e.response)
        elif isinstance(e, ev.SubBatchRefused) and e.parent_id is not None:
            if not 0 <= int(e.size) <= MAX_BATCH_PROMPTS:
                raise ValueError(f"a refused batch of {e.size} prompts")
            batch_of_cell.setdefault(e.parent_id, []).append(e.id)
            refused[e.id] = (int(e.size), str(e.response))
        elif isinstance(e, ev.CellFinished) and e.parent_id is not None:
            outputs[e.parent_id] = str(e.output)

    def recorded(b: str) -> RecordedBatch:
        if b in refused:
            size, response = refused[b]
            return RecordedBatch(prompts=None, responses=(response,) * size)
        return RecordedBatch(
            prompts=tuple(prompts_.get(b, {}).get(i, "") for i in range(sizes[b])),
            responses=tuple(responses.get(b, {}).get(i, NO_RECORD) for i in range(sizes[b])),
        )

    batches = {cell: tuple(recorded(b) for b in ids) for cell, ids in batch_of_cell.items()}
    return batches, outputs


def parent_messages(history: Iterable[ev.Event]) -> list[dict[str, Any]]:
    """The conversation the parent's root model was sent at the cut, rebuilt from its events as the loop built it."""
    messages: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []  # the latest reply's tool calls still owed a result
    reports: list[str] = []  # results of calls read from the text, sent back as one user message
    open_cell: list[Any] = []  # [call, cell_finished, lost]: a cell result a sandbox restart may still amend
    proposed = False  # a cell waits for the operator's decision (approve mode)

    def result(call: dict[str, Any], content: str) -> None:
        if call.get("recovered"):
            reports.append(content)
        else:
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": content})
        if not pending and reports:
            messages.append({"role": "user", "content": prompts.text_reports(reports)})
            reports.clear()

    def settle() -> None:
        if open_cell and open_cell[1] is not None:  # the cell has finished: its result is the next message
            call, done, lost = open_cell
            open_cell.clear()
            result(call, prompts.cell_report(done.shown, elapsed_s=done.elapsed_s, error=done.error, lost=lost))

    for e in history:
        if isinstance(e, ev.SandboxRestarted) and open_cell:
            open_cell[2] = e.lost
            continue
        settle()
        if isinstance(e, ev.RolloutStarted):
            messages = [{"role": "system", "content": e.system_prompt}, {"role": "user", "content": e.user_prompt}]
        elif isinstance(e, ev.ToolProtocolChanged):
            messages[0] = {"role": "system", "content": e.system_prompt}
        elif isinstance(e, ev.ModelCallFinished) and e.role == "main" and e.outcome == "ok":
            calls = [dict(c) for c in e.tool_calls]
            messages.append(tool_call_message(ModelReply(text=e.text, tool_calls=calls)))
            pending = calls
        elif isinstance(e, ev.ToolCallRejected) and pending:
            result(pending.pop(0), f"[error] {e.reason}")
        elif isinstance(e, ev.CellStarted) and e.source == "model" and pending:
            open_cell[:] = [pending.pop(0), None, None]
        elif isinstance(e, ev.CellFinished) and e.source == "model" and len(open_cell) == 3 and open_cell[1] is None:
            open_cell[1] = e
        elif isinstance(e, ev.ModelNudged):
            messages.append({"role": "user", "content": e.text})
        elif isinstance(e, ev.CellProposed):
            proposed = True
        elif isinstance(e, ev.OperatorAction) and e.action in DECISIONS and proposed:
            proposed = False
            if e.action != "approve" and pending:
                result(pending.pop(0), prompts.not_run(e.action, e.text))
        elif isinstance(e, ev.OperatorAction) and e.action == "inject":
            messages.append({"role": "user", "content": e.text})
    settle()
    return messages


class ReplayedBatches:
    """A cell's llm_batch calls answered from the parent's recorded responses, in order, and logged as sub-LLM
    calls with no tokens (so that a fork of this fork finds them too); a call that differs is noted."""

    def __init__(self, steps: Steps, recorded: tuple[RecordedBatch, ...]) -> None:
        self.steps, self.answers = steps, RecordedAnswers(recorded)

    @property
    def mismatches(self) -> int:
        return self.answers.mismatches

    async def batch(self, prompts_: list[str], parent_id: str | None, rlm: bool = False) -> list[str]:
        want, got = self.answers.take(prompts_)
        steps, subs = self.steps, self.steps.subs
        if want is not None and want.prompts is None:  # refused then, refused now: nothing was started
            steps.emit(
                ev.SubBatchRefused, parent_id=parent_id, size=len(prompts_), response=got[0] if got else "", rlm=rlm
            )
            return got
        number = subs.batches if subs is not None else 0
        if subs is not None:
            subs.batches += 1  # the live batches after the fork go on numbering from here
        started = steps.emit(ev.SubBatchStarted, parent_id=parent_id, batch=number, size=len(prompts_), rlm=rlm)
        for index, (prompt, response) in enumerate(zip(prompts_, got, strict=True)):
            call = steps.emit(ev.SubCallStarted, parent_id=started.id, batch=number, index=index, prompt=str(prompt))
            steps.emit(
                ev.SubCallFinished, parent_id=call.id, batch=number, index=index, response=response, cost_usd=0.0
            )
        steps.emit(ev.SubBatchFinished, parent_id=started.id, batch=number, elapsed_s=0.0)
        return got


async def rebuild(steps: Steps, sandbox: Sandbox, fork: Fork) -> list[dict[str, Any]]:
    """Replay the parent's turns before the cut into `steps`' rollout, its cells re-run in `sandbox` with the
    recorded llm_batch answers (no model is called), and return the parent's conversation at the cut."""
    point, calls = fork.point, {}  # parent main-call id -> this rollout's
    for e in point.history:
        if isinstance(e, ev.ModelCallStarted) and e.role == "main":
            steps.turn = e.turn
            calls[e.id] = steps.emit(
                ev.ModelCallStarted, role="main", model=e.model, turn=e.turn, messages=e.messages
            ).id
        elif isinstance(e, ev.ModelCallFinished) and e.role == "main":
            # replayed, not called: no tokens and no latency are this rollout's
            steps.emit(
                ev.ModelCallFinished,
                parent_id=calls.get(e.parent_id or ""),
                role="main",
                text=e.text,
                reasoning=e.reasoning,
                tool_calls=e.tool_calls,
                outcome=e.outcome,
                error=e.error,
                cost_usd=0.0,
            )
        elif isinstance(e, (ev.ModelNudged, ev.ToolCallRejected)):
            steps.emit(type(e), parent_id=calls.get(e.parent_id or ""), **e.payload())
        elif isinstance(e, ev.ToolProtocolChanged):
            steps.emit(ev.ToolProtocolChanged, **e.payload())
        elif isinstance(e, ev.OperatorAction) and e.action in ("inject", "exec", "edit_answer", *DECISIONS):
            steps.emit(ev.OperatorAction, action=e.action, text=e.text)
        elif isinstance(e, ev.CellProposed):
            steps.emit(ev.CellProposed, parent_id=calls.get(e.parent_id or ""), turn=e.turn, code=e.code)
        elif isinstance(e, ev.CellStarted) and e.source != "child":  # a child RLM's cells ran in its own jail
            steps.turn = e.turn
            subs = ReplayedBatches(steps, point.batches.get(e.id, ()))
            await steps.run_cell(sandbox, e.code, e.source, subs=subs, proposed=e.proposed)
            if subs.mismatches or steps.last_output != point.outputs.get(e.id):
                if e.turn not in fork.diverged:
                    fork.diverged.append(e.turn)
    steps.turn = point.turn - 1
    return parent_messages(point.history)


def edited_reply(point: ForkPoint, code: str) -> ModelReply:
    """The parent's reply at the fork's turn with the code of its first cell replaced (its other calls dropped)."""
    reply = point.next_reply
    stored = reply.tool_calls if reply is not None and isinstance(reply.tool_calls, list) else []
    native = [c for c in stored if isinstance(c, dict) and isinstance(c.get("id"), str) and not c.get("recovered")]
    if reply is None or reply.outcome != "ok" or not native or not isinstance(reply.text, str):
        raise ForkError(f"turn {point.turn} of rollout {point.rollout_id} ran no cell whose code could be edited")
    calls = [dict(c) for c in native]
    calls[0]["arguments"] = json.dumps({"code": code})
    return ModelReply(text=reply.text, tool_calls=calls[:1])
