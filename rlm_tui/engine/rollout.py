"""One rollout: ask the root model, run its cells in the sandbox, feed back the output, score."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from rlm_tui import events as ev
from rlm_tui.engine import prompts
from rlm_tui.engine.child import sub_llms
from rlm_tui.engine.control import DECISIONS, Command, RolloutControl
from rlm_tui.engine.fork import Fork, ForkPoint, edited_reply, parent_messages, rebuild, rebuild_quietly
from rlm_tui.engine.judge import RunJudge
from rlm_tui.engine.replies import ModelClient, tool_call_message
from rlm_tui.engine.steps import FatalRunError, RolloutSettings, Steps, Stop, ToolsRefused, one_line
from rlm_tui.engine.sub_llm import run_tool
from rlm_tui.env import Environment, Example, Judge
from rlm_tui.sandbox import Sandbox, SandboxError

__all__ = ["FatalRunError", "Rollout", "RolloutSettings", "one_line"]


async def _outlast_cancellation(task: asyncio.Future) -> None:
    """Wait for `task` to end even if cancelled again meanwhile (the run cancels every rollout as the first one
    ends), then let the cancellation through: a jail still starting must be killed before the loop closes."""
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait((task,))
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


class Rollout(Steps):
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
        sandbox_up: Callable[[], None] = lambda: None,
        judge: Judge | None = None,
        fork: Fork | None = None,
        budget_reached: Callable[[], tuple[str, str] | None] = lambda: None,
        refuses: Callable[[int], str | None] = lambda prompts: None,
        continued: ForkPoint | None = None,
    ) -> None:
        super().__init__(run_id=run_id, rollout_id=rollout_id, client=client, settings=settings, emit=emit)
        self.example, self.env, self._metrics = example, env, metrics
        self.control = control or RolloutControl()
        self._state = state
        self._sandbox_started = sandbox_started  # whether any sandbox of the run has started yet
        self._sandbox_up = sandbox_up  # tells the run that one has
        self.judge = judge or RunJudge(settings.sub_model)
        self.engine_error = False  # ended on an unexpected exception, not on the model or the operator
        self.fork = fork  # start at this turn of a stored rollout, its REPL rebuilt
        self._budget_reached, self._refuses = budget_reached, refuses  # the rollout's and its run's budgets
        self.continued = continued  # a budget stopped it here: it goes on, its REPL rebuilt from its own log

    async def run(self) -> None:
        mode = self.settings.mode
        status, reason, error = "done", "answer_ready", None
        try:
            if mode == "llm":
                await self._llm_loop()
            else:
                await self._rlm_loop()
        except Stop as stop:
            status, reason, error = stop.status, stop.reason, stop.error
        except SandboxError as exc:
            status, reason, error = "failed", "error", " ".join(str(exc).split())
            self.engine_error = True
            if not self._sandbox_started():  # the first start fails: no rollout of this run can have a REPL
                await self._finish(status, reason, error)
                raise FatalRunError(error) from None
        except Exception as exc:  # a bug or a bad input in this rollout fails it, never the other rollouts
            status, reason, error = "failed", "error", one_line(exc)
            self.engine_error = True
        await self._finish(status, reason, error)

    async def _finish(self, status: str, reason: str, error: str | None) -> None:
        reward, metrics = None, dict(self._metrics())
        if status == "done":
            try:
                score = await self.env.score_async(
                    self.example, self.answer.get("content", ""), self._state(), judge=self.judge
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

    # --- the sandbox ----------------------------------------------------------------------------

    @asynccontextmanager
    async def _sandbox(self, context: Any = None) -> AsyncIterator[Sandbox]:
        """A sandbox starting in the background, so that its start overlaps the first model call."""
        s = self.settings
        async with Sandbox(limits=s.limits, timeout=s.timeout, output_cap=s.output_cap) as sandbox:
            self.starting = asyncio.ensure_future(self._start(sandbox, context))
            try:
                yield sandbox
            finally:
                starting, self.starting = self.starting, None
                if not starting.done():  # the rollout ended first (the model failed, a kill): stop the start
                    starting.cancel()
                await _outlast_cancellation(starting)
                if not starting.cancelled():
                    starting.exception()  # seen: the rollout ended on its own reason

    async def _start(self, sandbox: Sandbox, context: Any) -> None:
        await sandbox.start(context=context, answer=self.answer)
        self._sandbox_up()

    # --- llm mode -----------------------------------------------------------------------------

    async def _llm_loop(self) -> None:
        tools = {t.name: t for t in self.env.llm_tools()}
        python = self.env.python_tool_in_llm_mode
        system = prompts.llm_system_prompt(list(tools) + (["python"] if python else []))
        user = self.env.user_prompt(self.example, "llm")
        self.emit(ev.RolloutStarted, system_prompt=system, user_prompt=user)
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        schemas = [t.schema() for t in tools.values()] + ([prompts.PYTHON_TOOL] if python else [])
        if python:
            async with self._sandbox() as sandbox:
                await self._llm_turns(tools, schemas, messages, sandbox)
        else:
            await self._llm_turns(tools, schemas, messages, None)

    async def _llm_turns(
        self,
        tools: dict[str, Any],
        schemas: list[dict[str, Any]],
        messages: list[dict[str, Any]],
        sandbox: Sandbox | None,
    ) -> None:
        while True:
            await self._checkpoint(messages, sandbox)
            reply, call_id = await self.call_model(messages, schemas or None)
            if not reply.tool_calls:
                self.set_answer(reply.text, True)
                return
            messages.append(tool_call_message(reply))
            for call in reply.tool_calls:
                if sandbox is not None and call["name"] == prompts.PYTHON_TOOL_NAME:
                    content = await self.tool_call(sandbox, call, prompts.PYTHON_TOOL_NAME, reply, call_id)
                else:
                    content = await run_tool(tools, call, self._emit, self.run_id, self.id, call_id)
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": content})

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
                protocol="text" if protocol == "text" else "native",
                recursive=s.max_depth > 1,
            )

        user = self.env.user_prompt(self.example, s.mode)
        if self.continued is None:
            self.emit(ev.RolloutStarted, system_prompt=system_prompt(), user_prompt=user, context_chars=context_chars)
        else:
            self.answer = dict(self._state().answer)  # as the budget left it: the rebuilt REPL starts from it
        self.subs = sub_llms(self, sub_tools, 1)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": system_prompt()},
            {"role": "user", "content": user},
        ]
        nudges = 0
        async with self._sandbox(context) as sandbox:
            if self.fork is not None:
                messages = await self._forked(sandbox, self.fork)
                if self.fork.point.text_protocol:
                    protocol = "text"
            elif self.continued is not None:
                messages = await self._continue(sandbox, self.continued)
                if self.continued.text_protocol:
                    protocol = "text"
            while not self.answer["ready"]:
                await self._checkpoint(messages, sandbox)
                if self.answer["ready"]:
                    break
                try:
                    reply, call_id = await self.call_model(
                        messages,
                        None if protocol == "text" else [prompts.REPL_TOOL],
                        recover=None if protocol == "native" else prompts.REPL_TOOL_NAME,
                    )
                except ToolsRefused as exc:
                    protocol = "text"
                    messages[0] = {"role": "system", "content": system_prompt()}
                    self.emit(
                        ev.ToolProtocolChanged, protocol=protocol, reason=str(exc), system_prompt=messages[0]["content"]
                    )
                    continue
                messages.append(tool_call_message(reply))
                if not reply.tool_calls:
                    if nudges >= s.max_nudges:
                        raise Stop("done", "no_tool_call")
                    nudges += 1
                    text = prompts.nudge(protocol)
                    messages.append({"role": "user", "content": text})
                    self.emit(ev.ModelNudged, parent_id=call_id, nudge=nudges, text=text)
                    continue
                await self.run_cells(sandbox, reply, call_id, messages)

    # --- a fork ----------------------------------------------------------------------------------

    async def _forked(self, sandbox: Sandbox, fork: Fork) -> list[dict[str, Any]]:
        """The parent's REPL and conversation at the fork's turn, then its edit: the loop goes on from there."""
        point = fork.point
        try:
            messages = await rebuild(self, sandbox, fork)
        finally:
            self.emit(
                ev.RolloutForked,
                parent_run_id=point.run_id,
                parent_rollout_id=point.rollout_id,
                turn=point.turn,
                cells=sum(isinstance(e, ev.CellStarted) for e in point.history),
                diverged=list(fork.diverged),
                message=fork.message,
                edited_code=fork.code,
            )
        if fork.code is not None:  # the turn's reply as the parent got it, with the operator's code in its cell
            reply = edited_reply(point, fork.code)
            self.turn = point.turn
            started = self.emit(
                ev.ModelCallStarted, role="main", model=self.settings.model, turn=self.turn, messages=len(messages)
            )
            self.emit(
                ev.ModelCallFinished,
                parent_id=started.id,
                role="main",
                text=reply.text,
                tool_calls=reply.tool_calls,
                cost_usd=0.0,  # the operator's code, not a model's reply
            )
            messages.append(tool_call_message(reply))
            call = reply.tool_calls[0]
            content = await self.run_cell(sandbox, fork.code, "model")
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": content})
        if fork.message is not None:
            self.emit(ev.OperatorAction, action="inject", text=fork.message)
            messages.append({"role": "user", "content": fork.message})
        return messages

    async def _continue(self, sandbox: Sandbox, point: ForkPoint) -> list[dict[str, Any]]:
        """The rollout's own REPL and conversation as a budget left them, rebuilt with no model call."""
        if self.starting is not None:
            await self.starting
        cells, diverged = await rebuild_quietly(sandbox, point)
        self.turn = point.turn - 1
        self.emit(ev.RolloutResumed, turn=point.turn, cells=cells, diverged=diverged)
        return parent_messages(point.history)

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
        hit = self._budget_reached()
        if hit is not None:  # the answer stands as it is, and is scored
            raise Stop("done", f"budget_{hit[0]}", hit[1])

    async def vet(self, sandbox: Sandbox, code: str, turn_id: str) -> tuple[str | None, str]:
        """In approve mode, wait for the operator's decision on the model's cell; other commands are applied
        meanwhile, except a message, which waits for the next turn (the model's tool calls are owed replies first)."""
        control = self.control
        if not control.approve:
            return code, ""
        self.emit(ev.CellProposed, parent_id=turn_id, turn=self.turn, code=code)
        later: list[Command] = []
        try:
            while True:
                while control.queue:
                    command = control.queue.popleft()
                    if command.action == "inject":
                        later.append(command)
                        continue
                    if command.action in DECISIONS:
                        self.emit(ev.OperatorAction, action=command.action, text=command.text, command_id=command.id)
                        if command.action == "approve":
                            return command.text or code, ""
                        return None, prompts.not_run(command.action, command.text)
                    await self._apply(command, [], sandbox)
                    if not control.approve:  # approval turned off while the cell waited: it runs as proposed
                        return code, ""
                await control.wait()
        finally:
            control.queue.extendleft(reversed(later))

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
                self.no_repl(command.text)
            else:
                await self.run_cell(sandbox, command.text, "operator")
        elif action == "edit_answer":
            if sandbox is None:
                self.set_answer(command.text, self.answer["ready"], "operator")
            else:
                await self.run_cell(sandbox, f'answer["content"] = {command.text!r}', "operator")
        elif action == "approval":
            control.approve = command.text == "on"
        elif action == "finish":
            raise Stop("done", "operator_finished")
        elif action == "kill":
            raise Stop("killed", "killed")
