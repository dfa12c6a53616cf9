"""Events for an imported run, made the way the engine makes them, so that every reader takes them unchanged."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rlm_tui import events as ev
from rlm_tui.state import RolloutState

TEXT_TOOL = "call_python_repl"  # the REPL tool's name in verifiers' RLM environments


def estimate_tokens(text: str) -> int:
    """tiktoken's cl100k count, as the engine counts replies from servers that report no usage."""
    from rlm_tui.engine.replies import count_tokens

    return count_tokens(text)


def estimate_message_tokens(messages: list[dict[str, Any]]) -> int:
    from rlm_tui.engine.replies import count_message_tokens

    return count_message_tokens(messages)


def as_text(value: Any) -> str:
    """A prompt or reply that may be a string, a message list or an object, as the text a reader shows."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, default=str)


@dataclass
class Clock:
    """Event times from the log where it has them, kept in order, stepped a microsecond where it has none."""

    now: float

    def at(self, ts: float | None = None) -> float:
        if ts is not None and ts > self.now:
            self.now = ts
        else:
            self.now += 1e-6
        return self.now


@dataclass
class RolloutBuilder:
    run_id: str
    rollout_id: str
    clock: Clock
    events: list[ev.Event] = field(default_factory=list)
    turn: int = 0
    batch: int = 0
    cell_id: str | None = None
    call_id: str | None = None
    answer: dict[str, Any] = field(default_factory=lambda: {"content": "", "ready": False})

    def emit(self, cls: type[ev.Event], ts: float | None = None, **fields: Any) -> ev.Event:
        event = cls(run_id=self.run_id, rollout_id=self.rollout_id, ts=self.clock.at(ts), **fields)
        self.events.append(event)
        return event

    def queued(self, index: int, example_id: str, info: dict[str, Any], target: Any = None) -> None:
        self.emit(ev.RolloutQueued, index=index, example_id=example_id, info=info, target=target)

    def started(self, system: str, user: str, ts: float | None = None, context_chars: int = 0) -> None:
        self.emit(ev.RolloutStarted, ts, system_prompt=system, user_prompt=user, context_chars=context_chars)

    def model_turn(
        self,
        text: str,
        *,
        model: str,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        estimate_prompt: Any = "",
        latency_s: float = 0.0,
        tool_calls: list[dict[str, Any]] | None = None,
        ts: float | None = None,
        messages: int = 0,
    ) -> str:
        """One main-model call; token counts the log lacks are estimated from the prompt and the reply."""
        self.turn += 1
        start = self.emit(ev.ModelCallStarted, ts, role="main", model=model, turn=self.turn, messages=messages)
        estimated = prompt_tokens is None or completion_tokens is None
        if prompt_tokens is None:
            prompt_tokens = (
                estimate_message_tokens(estimate_prompt)
                if isinstance(estimate_prompt, list)
                else estimate_tokens(as_text(estimate_prompt))
            )
        if completion_tokens is None:
            completion_tokens = estimate_tokens(text + "".join(c.get("arguments", "") for c in tool_calls or ()))
        self.emit(
            ev.ModelCallFinished,
            None if ts is None else ts + latency_s,
            parent_id=start.id,
            role="main",
            text=text,
            tool_calls=tool_calls or [],
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            tokens_estimated=estimated,
            latency_s=latency_s,
        )
        self.call_id, self.cell_id = start.id, None
        return start.id

    def cell(self, code: str, output: str, elapsed_s: float, error: str | None = None, ts: float | None = None) -> str:
        start = self.emit(ev.CellStarted, ts, turn=self.turn, code=code)
        self.emit(
            ev.CellFinished,
            None if ts is None else ts + elapsed_s,
            parent_id=start.id,
            turn=self.turn,
            output=output,
            shown=output,
            shown_chars=len(output),
            output_chars=len(output),
            truncated=False,
            elapsed_s=elapsed_s,
            error=error,
            answer=dict(self.answer),
        )
        self.cell_id = start.id
        return start.id

    def tool(
        self, name: str, arguments: dict[str, Any], result: str, parent_id: str | None, elapsed_s: float = 0.0
    ) -> None:
        self.emit(
            ev.ToolCalled, parent_id=parent_id, name=name, arguments=arguments, result=result, elapsed_s=elapsed_s
        )

    def sub_batch(self, calls: list[SubCall]) -> None:
        """One llm_batch: the calls a cell made, in order, under the cell (or the turn, when no cell is known)."""
        if not calls:
            return
        start = self.emit(ev.SubBatchStarted, parent_id=self.cell_id or self.call_id, batch=self.batch, size=len(calls))
        for index, call in enumerate(calls):
            sub = self.emit(ev.SubCallStarted, parent_id=start.id, batch=self.batch, index=index, prompt=call.prompt)
            for name, arguments, result in call.steps:
                self.tool(name, arguments, result, sub.id)
            self.emit(
                ev.SubCallFinished,
                parent_id=sub.id,
                batch=self.batch,
                index=index,
                response=call.response,
                turns=call.turns,
                tool_calls=len(call.steps),
                prompt_tokens=call.prompt_tokens,
                completion_tokens=call.completion_tokens,
                latency_s=call.latency_s,
                error=call.error,
            )
        elapsed = max((c.latency_s for c in calls), default=0.0)
        self.emit(
            ev.SubBatchFinished,
            parent_id=start.id,
            batch=self.batch,
            elapsed_s=elapsed,
            errors=sum(1 for c in calls if c.error),
        )
        self.batch += 1

    def set_answer(self, content: str, ready: bool, ts: float | None = None) -> None:
        self.answer = {"content": content, "ready": ready}
        self.emit(ev.AnswerUpdated, ts, content=content, ready=ready)

    def finished(
        self,
        status: str,
        stop_reason: str,
        reward: float | None = None,
        metrics: dict[str, Any] | None = None,
        error: str | None = None,
        ts: float | None = None,
    ) -> None:
        """The rollout's end, with the metrics our engine would compute, then the log's own numbers over them."""
        state = RolloutState(id=self.rollout_id)
        for e in self.events:
            state.apply(e)
        end = self.clock.at(ts)
        state.finished = end
        self.events.append(
            ev.RolloutFinished(
                run_id=self.run_id,
                rollout_id=self.rollout_id,
                ts=end,
                status=status,
                stop_reason=stop_reason,
                answer=dict(self.answer),
                reward=reward,
                metrics={**state.metrics(), **(metrics or {})},
                error=error,
            )
        )


@dataclass
class SubCall:
    prompt: str
    response: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    error: str | None = None
    turns: int = 1
    steps: list[tuple[str, dict[str, Any], str]] = field(
        default_factory=list
    )  # a nested trajectory, kept as tool calls


@dataclass
class ImportedRun:
    """One file's run: its events in order, ready for the store's writer."""

    run_id: str
    events: list[ev.Event]
    source: str  # the file as named on the command line
    rollouts: int


def run_events(
    *,
    run_id: str,
    fmt: str,
    path: str,
    sha256: str,
    mode: str,
    model: str,
    sub_model: str,
    rollouts: list[RolloutBuilder],
    started: float,
    note: str,
    extra: dict[str, Any] | None = None,
) -> list[ev.Event]:
    """The run's start, its rollouts' events and its end."""
    config = {
        "imported_from": {"format": fmt, "path": path, "sha256": sha256},
        "data_note": f"imported from the {fmt} log {path}, not run by rlm-tui; {note}",
        **(extra or {}),
    }
    # rollouts that ran at the same time interleave by time, each in its own order (its clock only moves forward)
    body = sorted((e for r in rollouts for e in r.events), key=lambda e: e.ts)
    started = min([started, *(e.ts - 1e-6 for e in body)])
    first = ev.RunStarted(
        run_id=run_id,
        ts=started,
        env=f"import:{fmt}",
        mode=mode,
        model=model,
        sub_model=sub_model,
        num_rollouts=len(rollouts),
        config=config,
    )
    end = max([started, *(e.ts for e in body)])
    return [first, *body, ev.RunFinished(run_id=run_id, ts=end + 1e-6, status="done")]
