"""One rollout: ask the root model, run its cells in the sandbox, feed back the output, score."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from rlm_tui import events as ev
from rlm_tui.engine import prompts
from rlm_tui.engine.clients import ModelClient, ModelError, ModelReply, parse_arguments, tool_call_message
from rlm_tui.engine.control import Command, RolloutControl
from rlm_tui.engine.generation import Generation
from rlm_tui.engine.judge import ask_judge
from rlm_tui.engine.sub_llm import SubLLMs, run_tool
from rlm_tui.engine.textcalls import recover_calls
from rlm_tui.env import Environment, Example
from rlm_tui.sandbox import CpuBudgetSpent, Limits, Sandbox, SandboxError


@dataclass(frozen=True)
class RolloutSettings:
    mode: str = "rlm"
    model: str = "scripted"
    sub_model: str = "scripted"
    max_turns: int = 30
    timeout: float = 120.0
    max_output_chars: int = 8192
    output_cap: int = 1_000_000
    sub_concurrency: int = 16
    limits: Limits = Limits()
    tool_protocol: str = "auto"  # native: tool calls only; text: cells in fenced blocks; auto: either
    max_nudges: int = 1  # reminders after a turn that ran no code, before the rollout ends with no_tool_call
    generation: Generation = Generation()  # the root model's sampling knobs
    sub_generation: Generation = Generation()


class FatalRunError(Exception):
    """A failure that stops the whole run (no sandbox can start at all); the message is one line."""


def one_line(exc: BaseException, limit: int = 500) -> str:
    """An unexpected exception as one line: its type and message."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Stop(Exception):
    def __init__(self, status: str, reason: str, error: str | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.error = status, reason, error


class _ToolsRefused(Exception):
    """The server refused the tools parameter (the message says how)."""


class Rollout:
    def __init__(
        self,
        *,
        run_id: str,
        rollout_id: str,
        example: Example,
        env: Environment,
        client: ModelClient,
        settings: RolloutSettings,
        emit: Callable[[ev.Event], None],
        metrics: Callable[[], dict[str, Any]],
        control: RolloutControl | None = None,
        state: Callable[[], Any] = lambda: None,
        sandbox_started: Callable[[], bool] = lambda: True,
    ) -> None:
        self.run_id, self.id, self.example, self.env = run_id, rollout_id, example, env
        self.client, self.settings, self._emit, self._metrics = client, settings, emit, metrics
        self.control = control or RolloutControl()
        self.subs: SubLLMs | None = None
        self._state = state
        self._sandbox_started = sandbox_started  # whether any sandbox of the run has started yet
        self.engine_error = False  # ended on an unexpected exception, not on the model or the operator
        self.answer: dict[str, Any] = {"content": "", "ready": False}
        self.turn = 0

    def emit(self, cls: type[ev.Event], **fields: Any) -> ev.Event:
        event = cls(run_id=self.run_id, rollout_id=self.id, **fields)
        self._emit(event)
        return event

    async def run(self) -> None:
        mode = self.settings.mode
        status, reason, error = "done", "answer_ready", None
        try:
            if mode == "llm":
                await self._llm_loop()
            else:
                await self._rlm_loop()
        except _Stop as stop:
            status, reason, error = stop.status, stop.reason, stop.error
        except FatalRunError:
            raise
        except SandboxError as exc:
            status, reason, error = "failed", "error", " ".join(str(exc).split())
            self.engine_error = True
        except Exception as exc:  # a bug or a bad input in this rollout fails it, never the other rollouts
            status, reason, error = "failed", "error", one_line(exc)
            self.engine_error = True
        await self._finish(status, reason, error)

    async def _finish(self, status: str, reason: str, error: str | None) -> None:
        reward, metrics = None, dict(self._metrics())
        if status == "done":
            try:
                score = await self.env.score_async(
                    self.example, self.answer.get("content", ""), self._state(), judge=ask_judge
                )
            except Exception as exc:  # a scorer that fails (a judge that is down) must not lose the rollout
                status, reason, error = "failed", "error", f"scoring failed: {type(exc).__name__}: {exc}"
            else:
                reward = score.reward
                metrics.update(score.metrics)
        self.emit(
            ev.RolloutFinished,
            status=status,
            stop_reason=reason,
            answer=dict(self.answer),
            reward=reward,
            metrics=metrics,
            error=error,
        )

    # --- model calls --------------------------------------------------------------------------

    async def _call_model(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, recover: str | None = None
    ) -> tuple[ModelReply, str]:
        """One root-model turn; `recover`: the tool whose calls are read from the text when none came natively."""
        if self.turn >= self.settings.max_turns:
            raise _Stop("done", "max_turns")
        self.turn += 1
        started = self.emit(
            ev.ModelCallStarted, role="main", model=self.settings.model, turn=self.turn, messages=len(messages)
        )

        def retried(*, attempt: int, max_attempts: int, reason: str, wait_s: float) -> None:
            self.emit(
                ev.ModelRetry,
                parent_id=started.id,
                role="main",
                attempt=attempt,
                max_attempts=max_attempts,
                reason=reason,
                wait_s=wait_s,
            )

        try:
            reply = await self.client.complete(
                self.settings.model, messages, tools, on_retry=retried, generation=self.settings.generation
            )
        except ModelError as exc:
            outcome = "context_length" if exc.kind == "context_length" else "error"
            self.emit(ev.ModelCallFinished, parent_id=started.id, role="main", outcome=outcome, error=str(exc))
            if exc.kind == "context_length":
                raise _Stop("done", "context_length", str(exc)) from None
            if exc.kind == "tools_refused" and recover is not None:
                self.turn -= 1  # the turn is taken again, without tools
                raise _ToolsRefused(str(exc)) from None
            raise _Stop("failed", "error", str(exc)) from None
        if recover is not None and not reply.tool_calls:
            reply.tool_calls = recover_calls(reply.text, recover)
        self.emit(
            ev.ModelCallFinished,
            parent_id=started.id,
            role="main",
            text=reply.text,
            reasoning=reply.reasoning,
            tool_calls=reply.tool_calls,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            reasoning_tokens=reply.reasoning_tokens,
            cached_tokens=reply.cached_tokens,
            tokens_estimated=reply.tokens_estimated,
            latency_s=reply.latency_s,
        )
        return reply, started.id

    # --- llm mode -----------------------------------------------------------------------------

    async def _llm_loop(self) -> None:
        tools = {t.name: t for t in self.env.llm_tools()}
        python = self.env.python_tool_in_llm_mode
        system = prompts.llm_system_prompt(list(tools) + (["python"] if python else []))
        user = self.env.user_prompt(self.example, "llm")
        self.emit(ev.RolloutStarted, system_prompt=system, user_prompt=user)
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        schemas = [t.schema() for t in tools.values()] + ([prompts.PYTHON_TOOL] if python else [])
        async with AsyncExitStack() as stack:
            sandbox = None
            if python:
                sandbox = await stack.enter_async_context(self._sandbox())
                await self._start(sandbox)
            while True:
                await self._checkpoint(messages, sandbox)
                reply, call_id = await self._call_model(messages, schemas or None)
                if not reply.tool_calls:
                    self._set_answer(reply.text, True)
                    return
                messages.append(tool_call_message(reply))
                for call in reply.tool_calls:
                    if sandbox is not None and call["name"] == prompts.PYTHON_TOOL_NAME:
                        content = await self._tool_call(sandbox, call, prompts.PYTHON_TOOL_NAME, reply, call_id)
                    else:
                        content = await run_tool(tools, call, self._emit, self.run_id, self.id, call_id)
                    messages.append({"role": "tool", "tool_call_id": call["id"], "content": content})

    def _sandbox(self) -> Sandbox:
        s = self.settings
        return Sandbox(limits=s.limits, timeout=s.timeout, output_cap=s.output_cap)

    async def _start(self, sandbox: Sandbox, context: Any = None) -> None:
        try:
            await sandbox.start(context=context, answer=self.answer)
        except SandboxError as exc:
            if not self._sandbox_started():  # the first start fails: no rollout of this run can have a REPL
                self.engine_error = True
                await self._finish("failed", "error", str(exc))
                raise FatalRunError(str(exc)) from None
            raise

    # --- rlm modes ----------------------------------------------------------------------------

    async def _rlm_loop(self) -> None:
        s = self.settings
        context = self.example.context
        context_chars = len(context if isinstance(context, str) else json.dumps(context)) if context is not None else 0
        sub_tools = self.env.sub_tools()
        protocol = s.tool_protocol

        def system_prompt() -> str:
            return prompts.rlm_system_prompt(
                has_context=context is not None,
                context_chars=context_chars,
                timeout=s.timeout,
                max_output_chars=s.max_output_chars,
                sub_tools=[t.name for t in sub_tools],
                tips=self.env.tips if s.mode == "rlm-tips" else "",
                protocol="text" if protocol == "text" else "native",
            )

        user = self.env.user_prompt(self.example, s.mode)
        self.emit(ev.RolloutStarted, system_prompt=system_prompt(), user_prompt=user, context_chars=context_chars)
        self.subs = SubLLMs(
            client=self.client,
            model=s.sub_model,
            tools=sub_tools,
            concurrency=s.sub_concurrency,
            emit=self._emit,
            run_id=self.run_id,
            rollout_id=self.id,
            generation=s.sub_generation,
        )
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": system_prompt()},
            {"role": "user", "content": user},
        ]
        nudges = 0
        async with self._sandbox() as sandbox:
            await self._start(sandbox, context=context)
            while not self.answer["ready"]:
                await self._checkpoint(messages, sandbox)
                if self.answer["ready"]:
                    break
                try:
                    reply, call_id = await self._call_model(
                        messages,
                        None if protocol == "text" else [prompts.REPL_TOOL],
                        recover=None if protocol == "native" else prompts.REPL_TOOL_NAME,
                    )
                except _ToolsRefused as exc:
                    protocol = "text"
                    messages[0] = {"role": "system", "content": system_prompt()}
                    self.emit(
                        ev.ToolProtocolChanged, protocol=protocol, reason=str(exc), system_prompt=messages[0]["content"]
                    )
                    continue
                messages.append(tool_call_message(reply))
                if not reply.tool_calls:
                    if nudges >= s.max_nudges:
                        raise _Stop("done", "no_tool_call")
                    nudges += 1
                    text = prompts.nudge(protocol)
                    messages.append({"role": "user", "content": text})
                    self.emit(ev.ModelNudged, parent_id=call_id, nudge=nudges, text=text)
                    continue
                reports = []
                for call in reply.tool_calls:
                    content = await self._tool_call(sandbox, call, prompts.REPL_TOOL_NAME, reply, call_id)
                    if call.get("recovered"):
                        reports.append(content)
                    else:
                        messages.append({"role": "tool", "tool_call_id": call["id"], "content": content})
                    if self.answer["ready"]:
                        break
                if reports:
                    messages.append({"role": "user", "content": prompts.text_reports(reports)})

    # --- the operator -------------------------------------------------------------------------

    async def _checkpoint(self, messages: list[dict[str, Any]], sandbox: Sandbox | None) -> None:
        """The safe point before each model call: apply operator commands, and wait here while paused."""
        control, stopped = self.control, False
        while True:
            while control.queue:
                await self._apply(control.queue.popleft(), messages, sandbox)
            if not control.paused:
                break
            if control.steps:
                control.steps -= 1
                break
            if not stopped:
                stopped = True
                self.emit(ev.RolloutPaused, paused=True)
            await control.wait()
        if stopped:
            self.emit(ev.RolloutPaused, paused=False)

    async def _apply(self, command: Command, messages: list[dict[str, Any]], sandbox: Sandbox | None) -> None:
        self.emit(ev.OperatorAction, action=command.action, text=command.text, command_id=command.id)
        control, action = self.control, command.action
        if action == "pause":
            control.paused = True
        elif action == "resume":
            control.paused, control.steps = False, 0
        elif action == "step":
            control.paused, control.steps = True, control.steps + 1
        elif action == "inject":
            messages.append({"role": "user", "content": command.text})
        elif action == "exec":
            if sandbox is None:
                self._no_repl(command.text)
            else:
                await self.run_cell(sandbox, command.text, "operator")
        elif action == "edit_answer":
            if sandbox is None:
                self._set_answer(command.text, self.answer["ready"], "operator")
            else:
                await self.run_cell(sandbox, f'answer["content"] = {command.text!r}', "operator")
        elif action == "finish":
            raise _Stop("done", "operator_finished")
        elif action == "kill":
            raise _Stop("killed", "killed")

    def _no_repl(self, code: str) -> None:
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

    # --- cells --------------------------------------------------------------------------------

    async def _tool_call(
        self, sandbox: Sandbox, call: dict[str, Any], tool: str, reply: ModelReply, turn_id: str
    ) -> str:
        """Run one code-tool call; a malformed call is answered with what to fix, and recorded as rejected."""
        try:
            code = self._code_of(call, tool, cut=reply.finish_reason == "length")
        except ValueError as exc:
            self.emit(ev.ToolCallRejected, parent_id=turn_id, name=str(call["name"])[:200], reason=str(exc))
            return f"[error] {exc}"
        return await self.run_cell(sandbox, code, "model")

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

    async def run_cell(self, sandbox: Sandbox, code: str, source: str) -> str:
        s = self.settings
        started = self.emit(ev.CellStarted, turn=self.turn, code=code, source=source)
        subs = self.subs
        batch = (lambda ps: subs.batch(ps, started.id)) if subs is not None else None
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
            raise _Stop("done", "budget_cpu", str(exc)) from None
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
        self._set_answer(str(result.answer.get("content", "")), bool(result.answer.get("ready", False)), source)
        if sandbox.spent:  # the answer stands as it is, and is scored
            raise _Stop("done", "budget_cpu", sandbox.spent)
        return prompts.cell_report(shown.text, elapsed_s=result.elapsed_s, error=result.error, lost=result.lost)

    def _set_answer(self, content: str, ready: bool, source: str = "model") -> None:
        if content != self.answer["content"] or ready != self.answer["ready"]:
            self.answer = {"content": content, "ready": ready}
            self.emit(ev.AnswerUpdated, content=content, ready=ready, source=source)
