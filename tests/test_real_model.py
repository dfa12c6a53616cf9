"""A real small model behind llama.cpp's real server runs rollouts in llm and rlm modes."""

from __future__ import annotations

import asyncio

import pytest

from llama_server import llama_server
from rlm_tui.engine.clients import OpenAIClient
from rlm_tui.engine.generation import Generation
from rlm_tui.engine.rollout import RolloutSettings
from rlm_tui.engine.run import Run, RunConfig
from rlm_tui.env import load_environment


@pytest.fixture(scope="module")
def server():
    with llama_server() as base_url:
        yield base_url


def run(base_url: str, mode: str, **settings):
    env = load_environment("math-python", {})
    events: list = []
    greedy = Generation(max_tokens=96, temperature=0.0, seed=1)

    async def main():
        client = OpenAIClient(base_url=base_url, api_key="none", max_retries=0, request_timeout=120)
        try:
            window = await client.context_window("smollm2")
            knobs = {"max_turns": 2, "timeout": 30, "generation": greedy, "sub_generation": greedy, **settings}
            cfg = RunConfig(
                env=env.name,
                num_examples=1,
                concurrency=1,
                rollout=RolloutSettings(mode=mode, model="smollm2", sub_model="smollm2", **knobs),
            )
            state = await Run(cfg, env, client, [events.append]).execute()
            return state, window
        finally:
            await client.close()

    state, window = asyncio.run(main())
    (rollout,) = state.rollouts.values()
    return rollout, events, window


def test_llm_mode_goes_through_the_real_server(server):
    rollout, events, window = run(server, "llm")
    assert window == 4096  # what llama.cpp's /props says
    (call,) = [e for e in events if e.kind == "model_call_finished"]
    assert call.outcome == "ok" and call.text and not call.tokens_estimated  # usage came from the server
    assert 0 < call.completion_tokens <= 96 and call.prompt_tokens > 50
    assert rollout.status == "done" and rollout.stop_reason == "answer_ready" and rollout.reward is not None


def test_rlm_mode_runs_a_block_the_model_wrote(server):
    rollout, events, _ = run(server, "rlm", tool_protocol="text")
    calls = [e for e in events if e.kind == "model_call_finished"]
    assert calls and all(c.outcome == "ok" and not c.tokens_estimated for c in calls)
    cells = [e for e in events if e.kind == "cell_finished" and e.source == "model"]
    assert cells, [c.text for c in calls]  # a fenced block from the model ran in the jail
    recovered = [t for c in calls for t in c.tool_calls]
    assert recovered and all(t["recovered"] == "fence" for t in recovered)
    assert rollout.status == "done" and rollout.stop_reason in ("answer_ready", "max_turns", "no_tool_call")
