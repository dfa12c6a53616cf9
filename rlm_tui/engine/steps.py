"""The steps of a rollout, each emitted as events: a root-model call, a cell in the sandbox, an answer update."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from rlm_tui import events as ev
from rlm_tui.engine import prompts
from rlm_tui.engine.budgets import Budget
from rlm_tui.engine.failures import ModelError
from rlm_tui.engine.generation import Generation
from rlm_tui.engine.prices import Price, call_cost
from rlm_tui.engine.replies import ModelClient, ModelReply, parse_arguments
from rlm_tui.engine.sub_llm import SubLLMs
from rlm_tui.engine.textcalls import recover_calls
from rlm_tui.sandbox import CpuBudgetSpent, Limits, Sandbox, SandboxError

T = TypeVar("T")


@dataclass(frozen=True)
class RolloutSettings:
    mode: str = "rlm"
    model: str = "scripted"
    sub_model: str = "scripted"
    max_turns: int = 30
    timeout: float = 120.0
    max_output_chars: int = 8192
    output_cap: int = 1_000_000
    sub_concurrency: int = 64  # a batch of up to 64 in one wave: see --sub-concurrency
    limits: Limits = Limits()
    tool_protocol: str = "auto"  # native: tool calls only; text: cells in fenced blocks; auto: either
    max_nudges: int = 1  # reminders after a turn that ran no code, before the rollout ends with no_tool_call
    generation: Generation = Generation()  # the root model's sampling knobs
    sub_generation: Generation = Generation()
    approve: bool = False  # each cell the model proposes waits for the operator: see --approve
    price: Price | None = None  # the root model's, per million tokens; None: its cost is unknown
    sub_price: Price | None = None
    budget: Budget = Budget()  # this rollout's: see --max-usd and the others
    max_depth: int = 1  # 1: sub-LLMs are plain LLM calls; 2: rlm_batch starts child RLMs; see --max-depth


class Batches(Protocol):
    """What answers a cell's llm_batch calls: the sub-LLMs, or a fork's recorded responses."""

    async def batch(self, prompts: list[str], parent_id: str | None, rlm: bool = False) -> list[str]: ...


class FatalRunError(Exception):
    """A failure that stops the whole run (no sandbox can start at all); the message is one line."""


def one_line(exc: BaseException, limit: int = 500) -> str:
    """An unexpected exception as one line: its type and message."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Stop(Exception):
    """The rollout ends here, with this status and reason."""

    def __init__(self, status: str, reason: str, error: str | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.error = status, reason, error


class ToolsRefused(Exception):
    """The server refused the tools parameter (the message says how)."""


class Steps:
    """A rollout's model calls and cells; the sandbox may still be starting while the first call is in flight."""

    def __init__(
        self,
        *,
        run_id: str,
        rollout_id: str,
        client: ModelClient,
        settings: RolloutSettings,
        emit: Callable[[ev.Event], None],
    ) -> None:
        self.run_id, self.id, self.client, self.settings, self._emit = run_id, rollout_id, client, settings, emit
        self.subs: SubLLMs | None = None
        self.starting: asyncio.Task | None = None  # the sandbox's start, awaited before the first cell
        self.answer: dict[str, Any] = {"content": "", "ready": False}
        self.turn = 0
        self.last_output = ""  # the full output of the latest cell, for a fork's check against its parent
        self.role, self.source = "main", "model"  # a child RLM's: child, child
        self.turn_parent: str | None = None  # a child RLM's turns nest under its rlm_batch call
        self.turn_id: str | None = None  # the latest turn's ModelCallStarted id
        self._budget_reached: Callable[[], tuple[str, str] | None] = lambda: None  # (kind, why) once one is spent
        self._refuses: Callable[[int], str | None] = lambda prompts: None  # why n sub-LLM calls must not start

    def emit(self, cls: type[ev.Event], **fields: Any) -> ev.Event:
        event = cls(run_id=self.run_id, rollout_id=self.id, **fields)
        self._emit(event)
        return event

    async def _while_starting(self, call: Awaitable[T]) -> T:
        """`call`'s result; a sandbox that fails to start meanwhile cancels it and raises the start's error."""
        starting = self.starting
        if starting is not None and starting.done() and (starting.cancelled() or starting.exception()):
            if isinstance(call, Coroutine):
                call.close()  # never sent
            starting.result()
        if starting is None or starting.done():
            return await call
        task = asyncio.ensure_future(call)
        try:
            await asyncio.wait((task, starting), return_when=asyncio.FIRST_COMPLETED)
            if starting.done() and not starting.cancelled() and starting.exception() is not None:
                starting.result()
            return await task
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait((task,))

    async def call_model(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, recover: str | None = None
    ) -> tuple[ModelReply, str]:
        """One root-model turn; `recover`: the tool whose calls are read from the text when none came natively."""
        if self.turn >= self.settings.max_turns:
            raise Stop("done", "max_turns")
        self.turn += 1
        started = self.emit(
            ev.ModelCallStarted,
            role=self.role,
            parent_id=self.turn_parent,
            model=self.settings.model,
            turn=self.turn,
            messages=len(messages),
        )
        self.turn_id = started.id

        def retried(*, attempt: int, max_attempts: int, reason: str, wait_s: float) -> None:
            self.emit(
                ev.ModelRetry,
                parent_id=started.id,
                role=self.role,
                attempt=attempt,
                max_attempts=max_attempts,
                reason=reason,
                wait_s=wait_s,
            )

        price = self.settings.price
        failed = {"parent_id": started.id, "role": self.role, "cost_usd": None if price is None else 0.0}
        try:
            reply = await self._while_starting(
                self.client.complete(
                    self.settings.model, messages, tools, on_retry=retried, generation=self.settings.generation
                )
            )
        except SandboxError as exc:  # the call was cancelled: its turn ends with the start's reason
            self.emit(ev.ModelCallFinished, **failed, outcome="error", error=str(exc))
            raise
        except ModelError as exc:
            outcome = "context_length" if exc.kind == "context_length" else "error"
            self.emit(ev.ModelCallFinished, **failed, outcome=outcome, error=str(exc))
            if exc.kind == "context_length":
                raise Stop("done", "context_length", str(exc)) from None
            if exc.kind == "tools_refused" and recover is not None:
                self.turn -= 1  # the turn is taken again, without tools
                raise ToolsRefused(str(exc)) from None
            raise Stop("failed", "error", str(exc)) from None
        if recover is not None and not reply.tool_calls:
            reply.tool_calls = recover_calls(reply.text, recover)
        self.emit(
            ev.ModelCallFinished,
            parent_id=started.id,
            role=self.role,
            text=reply.text,
            reasoning=reply.reasoning,
            tool_calls=reply.tool_calls,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            reasoning_tokens=reply.reasoning_tokens,
            cached_tokens=reply.cached_tokens,
            tokens_estimated=reply.tokens_estimated,
            latency_s=reply.latency_s,
            cost_usd=call_cost(reply, price),
        )
        return reply, started.id

    def no_repl(self, code: str) -> None:
        started = self.emit(ev.CellStarted, turn=self.turn, code=code, source="operator")
        note = "there is no REPL in llm mode"
        self.emit(
            ev.CellFinished,
            parent_id=started.id,
            turn=self.turn,
            output=note,
            shown=note,
            shown_chars=len(note),
            output_chars=len(note),
            truncated=False,
            elapsed_s=0.0,
            error=note,
            source="operator",
        )

    async def tool_call(
        self, sandbox: Sandbox, call: dict[str, Any], tool: str, reply: ModelReply, turn_id: str
    ) -> str:
        """Run one code-tool call; a malformed call is answered with what to fix, and recorded as rejected."""
        try:
            code = self._code_of(call, tool, cut=reply.finish_reason == "length")
        except ValueError as exc:
            self.emit(ev.ToolCallRejected, parent_id=turn_id, name=str(call["name"])[:200], reason=str(exc))
            return f"[error] {exc}"
        run, told = await self.vet(sandbox, code, turn_id)
        if run is None:
            return told
        return await self.run_cell(sandbox, run, self.source, proposed=code if run != code else None)

    async def vet(self, sandbox: Sandbox, code: str, turn_id: str) -> tuple[str | None, str]:
        """The code to run for the model's cell, or None and what the model is told instead (approve mode)."""
        return code, ""

    async def run_cells(
        self, sandbox: Sandbox, reply: ModelReply, turn_id: str, messages: list[dict[str, Any]]
    ) -> None:
        """Run a turn's code-tool calls in order, each answered in `messages` (calls read from the text together,
        in one user message); stop at the first that sets answer["ready"]."""
        reports = []
        for call in reply.tool_calls:
            content = await self.tool_call(sandbox, call, prompts.REPL_TOOL_NAME, reply, turn_id)
            if call.get("recovered"):
                reports.append(content)
            else:
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": content})
            if self.answer["ready"]:
                break
        if reports:
            messages.append({"role": "user", "content": prompts.text_reports(reports)})

    @staticmethod
    def _code_of(call: dict[str, Any], tool: str, cut: bool) -> str:
        if call["name"] != tool:
            raise ValueError(f'there is no tool named {call["name"]!r}; call {tool} with {{"code": "..."}}')
        try:
            code = parse_arguments(call["arguments"]).get("code")
        except ValueError as exc:
            why = (
                "; your reply was cut at the token limit in the middle of the call: write a shorter cell" if cut else ""
            )
            raise ValueError(f'malformed {tool} call: {exc}; send {{"code": "..."}}{why}') from None
        if not isinstance(code, str):
            raise ValueError(f'{tool} needs a string argument "code"')
        return code

    async def run_cell(
        self, sandbox: Sandbox, code: str, source: str, subs: Batches | None = None, proposed: str | None = None
    ) -> str:
        """Run one cell; `subs`: what answers its llm_batch calls instead of the sub-LLMs (a fork's rebuild);
        `proposed`: the model's code that the operator's `code` replaced."""
        s = self.settings
        if self.starting is not None:
            await self.starting  # raises the start's error
        nest = self.turn_id if self.role != "main" else None  # a child RLM's cells nest under its turn
        started = self.emit(ev.CellStarted, parent_id=nest, turn=self.turn, code=code, source=source, proposed=proposed)
        subs = subs or self.subs
        batch = (lambda ps, rlm=False: subs.batch(ps, started.id, rlm=rlm)) if subs is not None else None
        try:
            result = await sandbox.run(code, batch)
        except CpuBudgetSpent as exc:  # spent between cells, by code still running in the background
            self.emit(
                ev.CellFinished,
                parent_id=started.id,
                turn=self.turn,
                output="",
                shown="",
                shown_chars=0,
                output_chars=0,
                truncated=False,
                elapsed_s=0.0,
                error=f"not run: {exc}",
                source=source,
            )
            raise Stop("done", "budget_cpu", str(exc)) from None
        self.last_output = result.output
        shown = prompts.truncate(result.output, s.max_output_chars, result.output_chars)
        self.emit(
            ev.CellFinished,
            parent_id=started.id,
            turn=self.turn,
            output=result.output,
            shown=shown.text,
            shown_chars=shown.chars,
            output_chars=result.output_chars,
            truncated=shown.truncated,
            elapsed_s=result.elapsed_s,
            error=result.error,
            source=source,
        )
        if result.restarted:
            reason = "timeout" if result.error and result.error.startswith("timeout") else "crash"
            self.emit(ev.SandboxRestarted, parent_id=started.id, reason=reason, lost=result.lost or "")
        self.set_answer(str(result.answer.get("content", "")), bool(result.answer.get("ready", False)), source)
        if sandbox.spent:  # the answer stands as it is, and is scored
            raise Stop("done", "budget_cpu", sandbox.spent)
        return prompts.cell_report(shown.text, elapsed_s=result.elapsed_s, error=result.error, lost=result.lost)

    def set_answer(self, content: str, ready: bool, source: str = "model") -> None:
        if content != self.answer["content"] or ready != self.answer["ready"]:
            self.answer = {"content": content, "ready": ready}
            self.emit(ev.AnswerUpdated, content=content, ready=ready, source=source)
