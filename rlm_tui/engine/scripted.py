"""The built-in `scripted` model: plays each environment's strategy offline, with no network."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from rlm_tui.engine.replies import ModelReply, RetryHook, estimate_usage
from rlm_tui.env import Environment, Example

REPL_TOOL = "call_python_repl"


class ScriptedClient:
    """Answers like a model would: the root runs the environment's cells, sub-LLMs its sub replies."""

    def __init__(self, env: Environment, *, delay: float = 0.0) -> None:
        self.env = env
        self.delay = delay  # seconds per call, so that a person can watch an offline run unfold

    def for_rollout(self, example: Example, mode: str) -> ScriptedRollout:
        return ScriptedRollout(self, example, mode)

    async def close(self) -> None:
        pass


def _reply(text: str, calls: list[tuple[str, dict[str, Any]]], offered: set[str], turn: int) -> ModelReply:
    """A reply with only the tool calls that were offered; past the tool budget the model must answer in text."""
    tool_calls = [
        {"id": f"call_{turn}_{i}", "name": name, "arguments": json.dumps(args)}
        for i, (name, args) in enumerate(calls)
        if name in offered
    ]
    return ModelReply(text=text, tool_calls=tool_calls)


class ScriptedRollout:
    def __init__(self, parent: ScriptedClient, example: Example, mode: str) -> None:
        self.parent, self.example, self.mode = parent, example, mode
        self.cells = parent.env.scripted_cells(example, mode) if mode != "llm" else []

    async def complete(
        self,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        on_retry: RetryHook | None = None,
        generation: Any = None,
    ) -> ModelReply:
        start = time.perf_counter()
        if self.parent.delay:
            await asyncio.sleep(self.parent.delay)
        names = {t["function"]["name"] for t in tools or ()}
        env = self.parent.env
        if REPL_TOOL in names:
            reply = self._root_turn(messages)
        elif messages[0]["role"] == "system":  # only the root has a system prompt: this is llm mode
            reply = _reply(*env.scripted_llm_turn(self.example, messages), names, len(messages))
        else:
            reply = _reply(*env.scripted_sub_turn(messages), names, len(messages))
        estimate_usage(reply, messages)
        reply.latency_s = time.perf_counter() - start
        return reply

    def _root_turn(self, messages: list[dict[str, Any]]) -> ModelReply:
        turn = sum(1 for m in messages if m["role"] == "assistant")
        if turn >= len(self.cells):
            return ModelReply(text="I have nothing more to run.")
        arguments = json.dumps({"code": self.cells[turn]})
        return ModelReply(
            text=f"Step {turn + 1} of {len(self.cells)}.",
            tool_calls=[{"id": f"call_{turn}", "name": REPL_TOOL, "arguments": arguments}],
        )

    async def close(self) -> None:
        pass
