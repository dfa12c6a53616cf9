"""The sub-LLM hot path (engine/wire.py) against a real local server: what it sends, how long it keeps its
connections, how wide its pool grows, and the server's waits and errors it shares with the SDK's client (the
faults both clients hold are in test_faults.py)."""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate

import pytest

from fake_openai import Fail, FakeOpenAI, Held, Reply
from rlm_tui.engine.clients import OpenAIClient
from rlm_tui.engine.failures import ModelError, retry_after
from rlm_tui.engine.generation import Generation
from rlm_tui.engine.wire import IDLE_S, WireClient

HI = [{"role": "user", "content": "hi"}]
BOTH = pytest.mark.parametrize("make", [OpenAIClient, WireClient], ids=["sdk", "wire"])


def calls(server, make, *batches, pause_s=0.0, **options):
    """Run `batches` (lists of message lists) one after another through one client; the replies or errors."""

    async def run():
        client = make(base_url=server.base_url, api_key="sk-test", **options)
        out = []
        try:
            for i, batch in enumerate(batches):
                if i and pause_s:
                    await asyncio.sleep(pause_s)  # the idle time under test, not a wait for something to happen
                out += await asyncio.gather(
                    *(client.complete("m", m, None, on_retry=retries.append_retry) for m in batch),
                    return_exceptions=True,
                )
        finally:
            await client.close()
        return out

    retries = Retries()
    return asyncio.run(run()), retries


class Retries(list):
    def append_retry(self, **retry):
        self.append(retry)


def test_the_request_carries_the_key_the_body_and_the_generation_knobs():
    with FakeOpenAI(lambda body: Reply(content="ok", usage={"prompt_tokens": 3, "completion_tokens": 1})) as server:

        async def run():
            client = WireClient(base_url=server.base_url, api_key="sk-test")
            tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
            try:
                return await client.complete("m", HI, tools, generation=Generation(max_tokens=7, temperature=0.5))
            finally:
                await client.close()

        reply = asyncio.run(run())
    assert (reply.text, reply.prompt_tokens, reply.completion_tokens) == ("ok", 3, 1)
    assert server.authorizations == ["Bearer sk-test"]
    (body,) = server.requests
    assert body["messages"] == HI and body["tools"][0]["function"]["name"] == "f"
    assert body["max_tokens"] == 7 and body["temperature"] == 0.5


def test_connections_are_kept_while_idle_for_as_long_as_the_limit_says():
    with FakeOpenAI(lambda body: Reply(content="ok")) as server:
        calls(server, WireClient, [HI], [HI], pause_s=0.5)
    assert len(server.peers) == 1 and IDLE_S >= 60  # the default keeps a connection for minutes
    with FakeOpenAI(lambda body: Reply(content="ok")) as server:
        calls(server, WireClient, [HI], [HI], pause_s=0.5, idle_s=0.1)
    assert len(server.peers) == 2  # past its idle limit a connection is closed and the next call opens another


def test_the_pool_grows_to_the_widest_batch_and_keeps_it():
    width = 100  # the server answers none of them until all are in flight at once
    with FakeOpenAI(lambda body: Held(Reply(content="ok"), until=width)) as server:
        (replies, _) = calls(server, WireClient, [HI] * width, [HI] * 10, request_timeout=60)
    assert [r.text for r in replies] == ["ok"] * (width + 10)
    assert len(server.peers) == width


@BOTH
def test_a_context_length_error_is_not_retried(make):
    fail = Fail(400, "This model's maximum context length is 8192 tokens.", code="context_length_exceeded")
    with FakeOpenAI(lambda body: fail) as server:
        (error,), retries = calls(server, make, [HI], max_retries=3)
    assert isinstance(error, ModelError) and error.kind == "context_length", error
    assert "8192" in str(error) and len(server.requests) == 1 and not retries


@BOTH
def test_a_refused_tools_parameter_is_its_own_kind(make):
    async def run(server):
        client = make(base_url=server.base_url, api_key="k", max_retries=2)
        tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
        try:
            return await client.complete("m", HI, tools)
        finally:
            await client.close()

    with FakeOpenAI(lambda body: Fail(400, "tools param requires --jinja flag")) as server:
        with pytest.raises(ModelError) as raised:
            asyncio.run(run(server))
    assert raised.value.kind == "tools_refused" and "--jinja" in str(raised.value)


@BOTH
def test_429_honours_retry_after_as_an_http_date(make):
    left = [Fail(429, "slow down", headers={"Retry-After": formatdate(time.time() + 2, usegmt=True)})]
    with FakeOpenAI(lambda body: left.pop() if left else Reply(content="fine")) as server:
        (reply,), retries = calls(server, make, [HI], max_retries=1)
    assert reply.text == "fine" and len(server.requests) == 2
    assert 0 < retries[0]["wait_s"] <= 2.0  # the date is to the second, so between one and two seconds off


def test_retry_after_reads_milliseconds_seconds_and_dates():
    assert retry_after({"retry-after-ms": "250"}) == 0.25
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"retry-after-ms": "x", "retry-after": "2"}) == 2.0
    assert retry_after({"retry-after": formatdate(time.time() - 60, usegmt=True)}) == 0.0  # already passed
    assert 8 < retry_after({"retry-after": formatdate(time.time() + 10, usegmt=True)}) <= 10  # dates drop the fraction
    for garbage in ("soon", "-1", "nan", "Mon, 99 Foo 2026 25:00:00 GMT", "x" * 10_000, None):
        assert retry_after({"retry-after": garbage}) is None, garbage


def test_the_sub_llms_of_an_sdk_client_take_the_hot_path():
    with FakeOpenAI(lambda body: Reply(content="ok")) as server:
        client = OpenAIClient(base_url=server.base_url, api_key="k", request_timeout=7.0)
        (reply,), _ = calls(server, lambda **options: client.sub, [HI])
    assert isinstance(client.sub, WireClient) and reply.text == "ok" and len(server.requests) == 1
    assert client.sub.base_url == server.base_url and client.sub.request_timeout == 7.0
    asyncio.run(client.close())
