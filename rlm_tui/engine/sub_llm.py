"""Sub-LLM batches: the host side of `llm_batch`, with tool loops and a concurrency limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rlm_tui import events as ev
from rlm_tui.engine.failures import ModelError
from rlm_tui.engine.generation import Generation
from rlm_tui.engine.prices import Price, call_cost
from rlm_tui.engine.replies import ModelClient, parse_arguments, tool_call_message
from rlm_tui.env import Tool

# runs one child RLM for rlm_batch: (prompt, its SubCallStarted id, the call's stats to fill) -> its answer
ChildRunner = Callable[[str, str, dict[str, Any]], Awaitable[str]]
MAX_TOOL_TURNS = 5
TOOL_OUTPUT_CHARS = 20_000


async def run_tool(
    tools: dict[str, Tool],
    call: dict[str, Any],
    emit: Callable[[ev.Event], None],
    run_id: str,
    rollout_id: str,
    parent_id: str,
) -> str:
    """Run one tool call and log it; every failure becomes text the model can read."""
    start = time.perf_counter()
    arguments: dict[str, Any] = {}
    error = None
    tool = tools.get(call["name"])
    try:
        if tool is None:
            raise ValueError(f"there is no tool named {call['name']!r}; the tools are: {', '.join(tools)}")
        arguments = parse_arguments(call["arguments"])
        result = await tool.run(**arguments)
    except TypeError as exc:
        error = f"bad arguments for {call['name']}: {exc}"
    except Exception as exc:  # a tool's failure is the model's to read, never the rollout's end
        error = f"{type(exc).__name__}: {exc}"
    if error is not None:
        result = f"[tool error] {error}"
    if len(result) > TOOL_OUTPUT_CHARS:
        result = (
            result[:TOOL_OUTPUT_CHARS] + f"\n[truncated: showing {TOOL_OUTPUT_CHARS:,} of {len(result):,} characters]"
        )
    emit(
        ev.ToolCalled(
            run_id=run_id,
            rollout_id=rollout_id,
            parent_id=parent_id,
            name=call["name"],
            arguments=arguments,
            result=result,
            elapsed_s=time.perf_counter() - start,
            error=error,
        )
    )
    return result


class SubLLMs:
    """Runs the batches of one rollout: each prompt is its own sub-LLM, at most `concurrency` at a time."""

    def __init__(
        self,
        *,
        client: ModelClient,
        model: str,
        tools: list[Tool],
        concurrency: int,
        emit: Callable[[ev.Event], None],
        run_id: str,
        rollout_id: str,
        generation: Generation | None = None,
        price: Price | None = None,
        refuses: Callable[[int], str | None] = lambda prompts: None,
        depth: int = 1,
        child: ChildRunner | None = None,
    ) -> None:
        # an OpenAIClient lends its hot path for the fan-out; any other client serves the sub-LLMs itself
        self.client: ModelClient = getattr(client, "sub", client)
        self.model, self.emit, self.generation = model, emit, generation
        self.tools = {t.name: t for t in tools}
        self.schemas = [t.schema() for t in tools]
        self.concurrency = concurrency
        self.semaphore = asyncio.Semaphore(concurrency)  # shared by the batches that run at once (from threads)
        self.run_id, self.rollout_id = run_id, rollout_id
        self.price, self.refuses = price, refuses  # refuses(n): why a batch of n calls must not start, or None
        self.depth, self.child = depth, child  # child: runs one child RLM, for rlm_batch; None: not this deep
        self.batches = 0

    async def batch(self, prompts: list[str], parent_id: str | None, rlm: bool = False) -> list[str]:
        name = "rlm_batch" if rlm else "llm_batch"
        if rlm and self.child is None:
            why = f"rlm_batch is not available at depth {self.depth}: the run's --max-depth allows no deeper RLM"
            return self._refused(prompts, parent_id, rlm, f"[rlm_batch error] {why}; use llm_batch")
        refused = self.refuses(len(prompts))
        if refused is not None:  # a budget would be crossed: the REPL reads why, and nothing is started
            return self._refused(prompts, parent_id, rlm, f"[{name} error] not started: {refused}")
        number = self.batches
        self.batches += 1
        started = ev.SubBatchStarted(
            run_id=self.run_id,
            rollout_id=self.rollout_id,
            parent_id=parent_id,
            batch=number,
            size=len(prompts),
            rlm=rlm,
            depth=self.depth,
        )
        self.emit(started)
        t0 = time.perf_counter()
        results: list[tuple[str, bool]] = [("", False)] * len(prompts)
        todo = iter(enumerate(prompts))

        async def worker() -> None:  # a few workers pull prompts: never one coroutine per prompt of a huge batch
            for i, prompt in todo:
                results[i] = await self._call(number, i, str(prompt), started.id, rlm)

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(prompts)))))
        errors = sum(1 for _, failed in results if failed)
        self.emit(
            ev.SubBatchFinished(
                run_id=self.run_id,
                rollout_id=self.rollout_id,
                parent_id=started.id,
                batch=number,
                elapsed_s=time.perf_counter() - t0,
                errors=errors,
            )
        )
        return [text for text, _ in results]

    def _refused(self, prompts: list[str], parent_id: str | None, rlm: bool, response: str) -> list[str]:
        self.emit(
            ev.SubBatchRefused(
                run_id=self.run_id,
                rollout_id=self.rollout_id,
                parent_id=parent_id,
                size=len(prompts),
                response=response,
                rlm=rlm,
            )
        )
        return [response] * len(prompts)

    async def _call(self, batch: int, index: int, prompt: str, parent_id: str, rlm: bool) -> tuple[str, bool]:
        async with self.semaphore:
            started = ev.SubCallStarted(
                run_id=self.run_id,
                rollout_id=self.rollout_id,
                parent_id=parent_id,
                batch=batch,
                index=index,
                prompt=prompt,
                depth=self.depth,
            )
            self.emit(started)
            stats: dict[str, Any] = {"turns": 0, "tool_calls": 0, "prompt_tokens": 0, "completion_tokens": 0}
            stats["cost_usd"] = None if self.price is None else 0.0
            t0 = time.perf_counter()
            error = None
            try:
                if rlm and self.child is not None:
                    response = await self.child(prompt, started.id, stats)
                else:
                    response = await self._loop(prompt, started.id, stats)
            except ModelError as exc:
                error = str(exc)
                response = f"[sub-LLM error] {exc}"
            self.emit(
                ev.SubCallFinished(
                    run_id=self.run_id,
                    rollout_id=self.rollout_id,
                    parent_id=started.id,
                    batch=batch,
                    index=index,
                    response=response,
                    latency_s=time.perf_counter() - t0,
                    error=error,
                    turns=stats["turns"],
                    tool_calls=stats["tool_calls"],
                    prompt_tokens=stats["prompt_tokens"],
                    completion_tokens=stats["completion_tokens"],
                    cost_usd=stats["cost_usd"],
                    depth=self.depth,
                )
            )
            return response, error is not None

    async def _loop(self, prompt: str, call_id: str, stats: dict[str, Any]) -> str:
        messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
        for _ in range(MAX_TOOL_TURNS if self.tools else 1):
            reply = await self._complete(messages, self.schemas or None, stats, call_id)
            if not reply.tool_calls or not self.tools:
                return reply.text
            messages.append(tool_call_message(reply))
            for call in reply.tool_calls:
                stats["tool_calls"] += 1
                result = await run_tool(self.tools, call, self.emit, self.run_id, self.rollout_id, call_id)
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
        messages.append({"role": "user", "content": "Give your final answer now, without calling tools."})
        return (await self._complete(messages, None, stats, call_id)).text

    async def _complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, stats: dict[str, Any], call_id: str
    ):
        def on_retry(**retry: Any) -> None:
            self.emit(
                ev.ModelRetry(run_id=self.run_id, rollout_id=self.rollout_id, parent_id=call_id, role="sub", **retry)
            )

        t0 = time.perf_counter()
        reply = await self.client.complete(self.model, messages, tools, on_retry=on_retry, generation=self.generation)
        stats["turns"] += 1
        stats["prompt_tokens"] += reply.prompt_tokens
        stats["completion_tokens"] += reply.completion_tokens
        cost = call_cost(reply, self.price)
        stats["cost_usd"] = None if cost is None or stats["cost_usd"] is None else stats["cost_usd"] + cost
        # one event a turn, so a running call's header counts turns and tokens live; the text comes at the call's end
        self.emit(
            ev.ModelCallFinished(
                run_id=self.run_id,
                rollout_id=self.rollout_id,
                parent_id=call_id,
                role="sub",
                prompt_tokens=reply.prompt_tokens,
                completion_tokens=reply.completion_tokens,
                latency_s=time.perf_counter() - t0,
                cost_usd=cost,
            )
        )
        return reply
