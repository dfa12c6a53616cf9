"""Child RLMs: what rlm_batch starts, one per prompt, each with a jail of its own holding the prompt as `context`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from rlm_tui import events as ev
from rlm_tui.engine import prompts
from rlm_tui.engine.failures import ModelError
from rlm_tui.engine.prices import call_cost
from rlm_tui.engine.replies import ModelClient, tool_call_message
from rlm_tui.engine.steps import RolloutSettings, Steps, Stop, ToolsRefused
from rlm_tui.engine.sub_llm import ChildRunner, SubLLMs
from rlm_tui.env import Tool
from rlm_tui.sandbox import Sandbox


class ChildRLM(Steps):
    """One child RLM on the sub model, under the rollout's limits and budgets; its turns and cells are events of
    the rollout that nest under the rlm_batch call (`call_id`) that started it, and its answer is the call's
    response. Its own answer never touches the rollout's."""

    def __init__(
        self,
        *,
        run_id: str,
        rollout_id: str,
        client: ModelClient,
        settings: RolloutSettings,
        emit: Callable[[ev.Event], None],
        call_id: str,
        depth: int,
        tools: list[Tool],
        budget_reached: Callable[[], tuple[str, str] | None],
        refuses: Callable[[int], str | None],
    ) -> None:
        own = replace(settings, model=settings.sub_model, price=settings.sub_price, generation=settings.sub_generation)
        super().__init__(run_id=run_id, rollout_id=rollout_id, client=client, settings=own, emit=emit)
        self.role, self.source, self.turn_parent = "child", "child", call_id
        self.depth, self.tools = depth, tools  # depth: of the call this child answers (1 under the root)
        self._budget_reached, self._refuses = budget_reached, refuses

    def set_answer(self, content: str, ready: bool, source: str = "model") -> None:
        self.answer = {"content": content, "ready": ready}  # returned to the parent's REPL, not the rollout's

    async def run(self, prompt: str, stats: dict[str, Any]) -> str:
        s = self.settings
        deeper = self.depth + 1 < s.max_depth
        self.subs = sub_llms(self, self.tools, self.depth + 1)

        def system(protocol: str) -> dict[str, str]:
            text = prompts.rlm_system_prompt(
                has_context=True,
                context_chars=len(prompt),
                timeout=s.timeout,
                max_output_chars=s.max_output_chars,
                sub_tools=[t.name for t in self.tools],
                protocol="text" if protocol == "text" else "native",
                recursive=deeper,
            )
            return {"role": "system", "content": text}

        user = {"role": "user", "content": prompts.child_user_prompt(len(prompt))}
        messages: list[dict[str, Any]] = [system(s.tool_protocol), user]
        try:
            async with Sandbox(limits=s.limits, timeout=s.timeout, output_cap=s.output_cap) as sandbox:
                await sandbox.start(context=prompt, answer=self.answer)
                await self._turns(sandbox, messages, system, stats)
        finally:
            stats["turns"] = self.turn
        return str(self.answer["content"])

    async def _turns(
        self, sandbox: Sandbox, messages: list[dict[str, Any]], system: Callable[[str], dict], stats: dict[str, Any]
    ) -> None:
        protocol, nudged = self.settings.tool_protocol, False
        while not self.answer["ready"] and self._budget_reached() is None:
            try:
                reply, turn_id = await self.call_model(
                    messages,
                    None if protocol == "text" else [prompts.REPL_TOOL],
                    recover=None if protocol == "native" else prompts.REPL_TOOL_NAME,
                )
            except ToolsRefused:
                protocol = "text"
                messages[0] = system(protocol)
                continue
            except Stop as stop:  # out of turns, or the model failed: the child answers what it has
                if stop.status == "failed":
                    raise ModelError("child", f"the child RLM's model failed: {stop.error}") from None
                return
            _count(stats, reply, self.settings)
            messages.append(tool_call_message(reply))
            if not reply.tool_calls:
                if nudged:
                    return
                nudged = True
                messages.append({"role": "user", "content": prompts.nudge(protocol)})
                continue
            stats["tool_calls"] += len(reply.tool_calls)
            try:
                await self.run_cells(sandbox, reply, turn_id, messages)
            except Stop:  # its REPL spent its CPU budget: the answer stands as it is
                return


def _count(stats: dict[str, Any], reply: Any, s: RolloutSettings) -> None:
    """The child's own root-model calls, as its rlm_batch call reports them (its sub-LLM calls report theirs)."""
    if reply is None:
        return
    stats["prompt_tokens"] += reply.prompt_tokens
    stats["completion_tokens"] += reply.completion_tokens
    cost = call_cost(reply, s.price)
    stats["cost_usd"] = None if cost is None or stats["cost_usd"] is None else stats["cost_usd"] + cost


def sub_llms(steps: Steps, tools: list[Tool], depth: int) -> SubLLMs:
    """What answers a REPL's llm_batch at `depth` (1 under the root), and its rlm_batch while the run goes deeper."""
    s = steps.settings
    return SubLLMs(
        client=steps.client,
        model=s.sub_model,
        tools=tools,
        concurrency=s.sub_concurrency,
        emit=steps._emit,
        run_id=steps.run_id,
        rollout_id=steps.id,
        generation=s.sub_generation,
        price=s.sub_price,
        refuses=steps._refuses,
        depth=depth,
        child=children(steps, depth) if depth < s.max_depth else None,
    )


def children(parent: Steps, depth: int) -> ChildRunner:
    """rlm_batch's runner at `depth`: a child RLM per prompt, on the parent's client, settings and budgets."""

    async def run_child(prompt: str, call_id: str, stats: dict[str, Any]) -> str:
        child = ChildRLM(
            run_id=parent.run_id,
            rollout_id=parent.id,
            client=parent.client,
            settings=parent.settings,  # a child's are the root's on the sub model: a grandchild's are the same
            emit=parent._emit,
            call_id=call_id,
            depth=depth,
            tools=list(parent.subs.tools.values()) if parent.subs is not None else [],
            budget_reached=parent._budget_reached,
            refuses=parent._refuses,
        )
        return await child.run(prompt, stats)

    return run_child
