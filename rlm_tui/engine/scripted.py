"""The built-in `scripted` model, a simulated model: it plays each environment's strategy offline, with no network,
and slips as a real model does (see rlm_tui.engine.simulated and docs/simulated-model.md)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import Any

from rlm_tui.engine.replies import ModelReply, RetryHook, estimate_usage
from rlm_tui.engine.simulated import (
    CELL_SLIP_RATE,
    COPY_ERROR_RATE,
    LABEL,
    SUB_FAILURE_RATE,
    Simulation,
    copy_with_errors,
    error_line,
    fit_window,
    prompt_digest,
    slip,
    sub_failure,
)
from rlm_tui.env import Environment, Example

REPL_TOOL = "call_python_repl"


class ScriptedClient:
    """Answers like a model would: the root runs the environment's cells, sub-LLMs its sub replies."""

    label = LABEL

    def __init__(self, env: Environment, *, delay: float = 0.0, simulation: Simulation | None = None) -> None:
        self.env = env
        self.delay = delay  # seconds per call, so that a person can watch an offline run unfold
        self.simulation = simulation or Simulation()

    def describe(self) -> str:
        s = self.simulation
        return f"{LABEL} (seed {s.seed}, {s.window:,}-token window, error scale {s.errors:g})"

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


def _repl_history(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The cells the root sent so far, each with the REPL output it got back ("" before it arrives)."""
    sent: dict[str, str] = {}
    outputs: dict[str, str] = {}
    for m in messages:
        for call in m.get("tool_calls") or ():
            if call.get("function", {}).get("name") == REPL_TOOL:
                try:
                    code = json.loads(call["function"].get("arguments") or "{}").get("code", "")
                except (ValueError, AttributeError):
                    code = ""
                sent[call.get("id", "")] = str(code)
        if m["role"] == "tool":
            outputs[m.get("tool_call_id") or ""] = m.get("content") or ""
    return [(code, outputs.get(call_id, "")) for call_id, code in sent.items()]


# a child RLM (rlm_batch) looks at its task, then hands it whole to one sub-LLM: the environment's sub replies
CHILD_CELLS = [
    "print(len(context))\nprint(context[:300])",
    "answer.update(content=llm_batch([context])[0], ready=True)",
]


def _is_child(messages: list[dict[str, Any]]) -> bool:
    user = next((m for m in messages if m["role"] == "user"), None)
    return user is not None and str(user.get("content", "")).startswith(
        "Your task, with any data it needs, is the text"
    )


def _deeper(cell: str) -> str:
    """Offered rlm_batch, the simulated root gives each part to a child RLM instead of a sub-LLM."""
    return cell.replace("llm_batch(", "rlm_batch(")


class ScriptedRollout:
    def __init__(self, parent: ScriptedClient, example: Example, mode: str) -> None:
        self.parent, self.example, self.mode = parent, example, mode
        self.sim = parent.simulation
        self.seen = replace(example, target=None)  # it plays from what it is shown, never from the gold answer
        self.cells = parent.env.scripted_cells(self.seen, mode) if mode != "llm" else []

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
        if REPL_TOOL in names and _is_child(messages):
            reply = self._root_turn(messages, CHILD_CELLS)
        elif REPL_TOOL in names:
            recursive = "rlm_batch(" in str(messages[0].get("content", ""))
            reply = self._root_turn(messages, [_deeper(c) for c in self.cells] if recursive else self.cells)
        elif messages[0]["role"] == "system":  # only the root has a system prompt: this is llm mode
            reply = self._llm_turn(messages, names)
        else:
            reply = self._sub_turn(messages, names)
        estimate_usage(reply, messages)
        reply.latency_s = time.perf_counter() - start
        return reply

    def _llm_turn(self, messages: list[dict[str, Any]], names: set[str]) -> ModelReply:
        """It reads what fits its window and answers from that; the answer it writes out has copy errors."""
        seen, _ = fit_window(self.seen, messages, self.sim.window)
        turn = len(messages)
        reply = _reply(*self.parent.env.scripted_llm_turn(seen, messages), names, turn)
        if not reply.tool_calls:
            rng = self.sim.rng(self.example.id, self.mode, "copy", turn)
            reply.text = copy_with_errors(reply.text, rng, self.sim.rate(COPY_ERROR_RATE))
        return reply

    def _sub_turn(self, messages: list[dict[str, Any]], names: set[str]) -> ModelReply:
        """The environment's sub reply; its final text sometimes fails, decided by the prompt, not by call order."""
        reply = _reply(*self.parent.env.scripted_sub_turn(messages), names, len(messages))
        if not reply.tool_calls:
            rng = self.sim.rng(self.example.id, self.mode, "sub", prompt_digest(messages))
            reply.text = sub_failure(reply.text, rng, self.sim.rate(SUB_FAILURE_RATE))
        return reply

    def _root_turn(self, messages: list[dict[str, Any]], cells: list[str]) -> ModelReply:
        """The next cell of the plan; a cell sometimes goes out with a mistake, and after one the fixed cell."""
        step, slipped = 0, False
        for code, _ in (history := _repl_history(messages)):
            if step < len(cells) and code == cells[step]:
                step, slipped = step + 1, False
            else:  # what was sent was not the plan's cell: a mistaken try at it
                slipped = True
        if step >= len(cells):
            return ModelReply(text="I have nothing more to run.")
        code, text = cells[step], f"Step {step + 1} of {len(cells)}."
        if slipped:
            seen = error_line(history[-1][1]) or "it did not run as meant"
            text = f"Step {step + 1} failed ({seen}); here it is fixed."
        else:
            rng = self.sim.rng(self.example.id, self.mode, "cell", step)
            if rng.random() < self.sim.rate(CELL_SLIP_RATE.get(self.mode, 0.0)):
                code = slip(code, rng) or code
        call_id = f"call_{sum(1 for m in messages if m['role'] == 'assistant')}"
        return ModelReply(
            text=text, tool_calls=[{"id": call_id, "name": REPL_TOOL, "arguments": json.dumps({"code": code})}]
        )

    async def close(self) -> None:
        pass
