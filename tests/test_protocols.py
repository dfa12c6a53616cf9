"""Models that write their cells as text, forget to run code, or sit behind a server that refuses tools."""

from __future__ import annotations

import asyncio
import json

from fake_openai import Fail, FakeOpenAI, Reply, code_call, is_root
from rlm_tui.engine.clients import OpenAIClient
from rlm_tui.engine.rollout import RolloutSettings
from rlm_tui.engine.run import Run, RunConfig
from rlm_tui.env import load_environment
from rlm_tui.state import RunState

FINISH = 'answer["content"] = "done"\nanswer["ready"] = True'


def run_once(respond, **settings) -> tuple[RunState, list, list]:
    """One verbatim-copy rollout against a local server answering with `respond`: its state, events, requests."""
    env = load_environment("verbatim-copy", {"target_length": "50"})
    events: list = []
    with FakeOpenAI(respond) as server:
        client = OpenAIClient(base_url=server.base_url, api_key="test-key", max_retries=0)
        cfg = RunConfig(
            env=env.name,
            env_args={k: str(v) for k, v in env.args.items()},
            num_examples=1,
            rollout=RolloutSettings(model="fake-root", sub_model="fake-sub", timeout=30, **settings),
        )
        run = Run(cfg, env, client, [events.append])

        async def main():
            try:
                return await run.execute()
            finally:
                await client.close()

        state = asyncio.run(main())
        roots = [r for r in server.requests if r["messages"][0]["role"] == "system"]
    return state, events, roots


def only(state: RunState):
    (rollout,) = state.rollouts.values()
    return rollout


def kinds(events, kind):
    return [e for e in events if e.kind == kind]


def test_a_fenced_block_runs_as_a_cell_and_its_output_comes_back_as_a_message():
    def respond(body):
        if any(m["role"] == "user" and m["content"].startswith("REPL output:") for m in body["messages"]):
            return Reply(content=f"Now I finish.\n```repl\n{FINISH}\n```")
        return Reply(content="Let me look first.\n```python\nprint(6 * 7)\n```")

    state, events, roots = run_once(respond)
    r = only(state)
    assert (r.status, r.stop_reason, r.answer["content"]) == ("done", "answer_ready", "done")
    cells = kinds(events, "cell_finished")
    assert len(cells) == 2 and cells[0].output == "42\n"
    calls = [c for e in kinds(events, "model_call_finished") for c in e.tool_calls]
    assert [c["recovered"] for c in calls] == ["fence", "fence"]
    second = roots[1]["messages"]
    assert second[-2] == {"role": "assistant", "content": "Let me look first.\n```python\nprint(6 * 7)\n```"}
    assert second[-1]["role"] == "user" and second[-1]["content"].startswith(f"REPL output:\n{cells[0].output.strip()}")
    assert r.metrics()["main_recovered_call_count"] == 2


def test_a_call_written_as_json_runs_like_a_native_one():
    def respond(body):
        return Reply(content=json.dumps({"name": "call_python_repl", "arguments": {"code": FINISH}}))

    state, events, _ = run_once(respond)
    assert only(state).stop_reason == "answer_ready"
    assert kinds(events, "model_call_finished")[0].tool_calls[0]["recovered"] == "json"


def test_a_turn_without_code_gets_one_reminder_and_then_ends():
    state, events, roots = run_once(lambda body: Reply(content="I think the answer is 4."))
    r = only(state)
    assert (r.status, r.stop_reason) == ("done", "no_tool_call")
    (nudge,) = kinds(events, "model_nudged")
    assert nudge.nudge == 1 and "call_python_repl" in nudge.text
    assert len(roots) == 2 and roots[1]["messages"][-1] == {"role": "user", "content": nudge.text}
    assert r.metrics()["main_nudge_count"] == 1


def test_the_reminder_is_answered_and_the_rollout_goes_on():
    def respond(body):
        nudged = any(m["role"] == "user" and "ran no code" in m["content"] for m in body["messages"])
        return code_call(FINISH) if nudged else Reply(content="Hmm.")

    state, events, _ = run_once(respond, max_nudges=2)
    assert only(state).stop_reason == "answer_ready" and len(kinds(events, "model_nudged")) == 1


def test_no_reminder_keeps_the_first_versions_semantics():
    state, events, roots = run_once(lambda body: Reply(content="4"), max_nudges=0, tool_protocol="native")
    assert only(state).stop_reason == "no_tool_call" and len(roots) == 1 and not kinds(events, "model_nudged")


def test_native_protocol_reads_no_calls_from_text():
    state, events, _ = run_once(
        lambda body: Reply(content=f"```repl\n{FINISH}\n```"), tool_protocol="native", max_nudges=0
    )
    assert only(state).stop_reason == "no_tool_call" and not kinds(events, "cell_started")


def test_text_protocol_sends_no_tools_and_says_how_to_write_cells():
    state, _, roots = run_once(lambda body: Reply(content=f"```repl\n{FINISH}\n```"), tool_protocol="text")
    assert only(state).stop_reason == "answer_ready"
    assert "tools" not in roots[0] and "```repl" in roots[0]["messages"][0]["content"]


def test_a_server_that_refuses_tools_gets_text_from_then_on():
    def respond(body):
        if body.get("tools"):
            return Fail(400, "tools param requires --jinja flag")  # llama.cpp's server without a chat template
        if is_root(body) or body["messages"][0]["role"] == "system":
            return Reply(content=f"```repl\n{FINISH}\n```")
        return Reply(content="sub")

    state, events, roots = run_once(respond)
    r = only(state)
    assert (r.status, r.stop_reason) == ("done", "answer_ready")
    (change,) = kinds(events, "tool_protocol_changed")
    assert change.protocol == "text" and "HTTP 400: tools param requires --jinja flag" in change.reason
    assert [("tools" in b) for b in roots] == [True, False]
    assert roots[1]["messages"][0]["content"] == change.system_prompt and "```repl" in change.system_prompt
    assert r.protocol_change == change


def context_window(**server):
    async def ask():
        client = OpenAIClient(base_url=fake.base_url, api_key="k", max_retries=0)
        try:
            return await client.context_window("m")
        finally:
            await client.close()

    with FakeOpenAI(lambda body: Reply(content="x"), **server) as fake:
        return asyncio.run(ask())


def test_the_run_records_the_servers_context_window():
    env = load_environment("verbatim-copy", {"target_length": "50"})
    events: list = []

    async def main(url):
        client = OpenAIClient(base_url=url, api_key="k", max_retries=0)
        try:
            cfg = RunConfig(
                env=env.name,
                num_examples=1,
                context_limit=128_000,
                rollout=RolloutSettings(model="m", sub_model="m", timeout=30),
            )
            await Run(cfg, env, client, [events.append]).execute()
        finally:
            await client.close()

    with FakeOpenAI(lambda body: code_call(FINISH), props={"default_generation_settings": {"n_ctx": 8192}}) as fake:
        asyncio.run(main(fake.base_url))
    assert events[0].kind == "run_started" and events[0].config["context_limit"] == 8192


def test_the_context_window_comes_from_the_server_when_it_says():
    assert context_window(models=[{"id": "other", "max_model_len": 8192}, {"id": "m", "max_model_len": 32768}]) == 32768
    assert context_window(props={"default_generation_settings": {"n_ctx": 4096}}) == 4096  # llama.cpp
    assert context_window() is None  # OpenAI's /v1/models says nothing of it
    assert context_window(models=[{"id": "a", "max_model_len": 8192}, {"id": "b", "max_model_len": 4096}]) is None
    assert context_window(models=[{"id": "m", "max_model_len": "huge"}], props={"n_ctx": -5}) is None
