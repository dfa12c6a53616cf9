"""Untrusted model servers: broken replies, rate limits, server errors, hangs and cut connections, through both
real clients (the openai SDK's and the sub-LLMs' aiohttp one) against a real local server, the real engine and
the real command line."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from fake_openai import Fail, FakeOpenAI, Hang, Raw, Reply, code_call, is_root, root_turn
from rlm_tui import events as ev
from rlm_tui.engine.clients import OpenAIClient
from rlm_tui.engine.failures import MAX_REPLY_BYTES, MAX_RETRY_AFTER, ModelError, retry_delay
from rlm_tui.engine.wire import WireClient
from rlm_tui.env import load_environment
from rlm_tui.state import fold
from rlm_tui.store import open_db, read_events
from runs import stored_run

RLM_TUI = str(Path(sys.executable).parent / "rlm-tui")
QUICK = {"retry-after-ms": "1"}  # retried at once, so that tests do not wait out a backoff


@pytest.fixture(params=[OpenAIClient, WireClient], ids=["sdk", "wire"])
def client(request):
    """Each client in turn: every fault is held by both."""
    return request.param


def complete(client, respond, *, max_retries=0, request_timeout=30.0, messages=None, tools=None):
    """(the reply or the ModelError, the retries reported, the server) of one call through a real client."""
    retries: list[dict] = []
    with FakeOpenAI(respond) as server:

        async def call():
            made = client(
                base_url=server.base_url, api_key="k", max_retries=max_retries, request_timeout=request_timeout
            )
            hook = {"on_retry": lambda **retry: retries.append(retry)} if max_retries else {}
            try:
                return await made.complete("m", messages or [{"role": "user", "content": "hi"}], tools, **hook)
            finally:
                await made.close()

        try:
            result = asyncio.run(call())
        except ModelError as exc:
            result = exc
    return result, retries, server


def completion(message, usage=None):
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def call(function, **extra):
    return completion(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": function, **extra}],
        }
    )


MALFORMED = {
    "truncated JSON": Raw(b'{"choices": [{"message": {"content": "hel'),
    "text/plain": Raw(b"all good, trust me", content_type="text/plain"),
    "HTML error page": Raw(b"<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html"),
    "empty body": Raw(b""),
    "JSON null": Raw(b"null"),
    "a JSON list": Raw(b"[1, 2]"),
    "message null": completion(None),
    "choices not a list": {"choices": {"0": {"message": {"content": "x"}}}},
    "no choices": {"choices": []},
    "a choice not an object": {"choices": ["x"]},
    "content a number": completion({"role": "assistant", "content": 42}),
    "content parts not text": completion({"role": "assistant", "content": [1, 2]}),
    "tool_calls not a list": completion({"role": "assistant", "content": None, "tool_calls": {"id": "c1"}}),
    "tool call without function": completion({"role": "assistant", "tool_calls": [{"id": "c1", "type": "function"}]}),
    "tool call name not a string": call({"name": 5, "arguments": "{}"}),
    "tool call arguments a number": call({"name": "call_python_repl", "arguments": 7}),
    "an error object on a 200": {"error": {"message": "upstream overloaded", "type": "server_error"}},
}


@pytest.mark.parametrize("respond", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_reply_is_a_model_error(respond, client):
    error, _, _ = complete(client, lambda body: respond)
    assert isinstance(error, ModelError), error
    message = str(error)
    assert "\n" not in message and len(message) < 400 and "malformed reply" in message


def test_the_reason_says_what_was_wrong(client):
    error, _, _ = complete(client, lambda body: completion(None))
    assert "choices[0].message is null" in str(error)
    error, _, _ = complete(client, lambda body: Raw(b"<html>oops</html>", content_type="text/html"))
    assert "not JSON" in str(error) and "text/html" in str(error) and "<html>oops" in str(error)
    error, _, _ = complete(client, lambda body: MALFORMED["an error object on a 200"])
    assert "upstream overloaded" in str(error)


def test_a_gigantic_reply_is_refused_without_reading_it_all(client):
    chunk = b" " * (1 << 20)
    error, _, _ = complete(client, lambda body: Raw(chunk, repeat=MAX_REPLY_BYTES // len(chunk) + 8))
    assert isinstance(error, ModelError) and "larger than" in str(error)


def test_a_reply_cut_off_mid_body_is_retried_then_a_connection_error(client):
    body = json.dumps(completion({"role": "assistant", "content": "x" * 1000})).encode()
    error, retries, server = complete(client, lambda body_: Raw(body[:300], cut=True), max_retries=1)
    assert isinstance(error, ModelError) and error.kind == "connection", error
    assert len(server.requests) == 2 and len(retries) == 1


def test_tolerable_oddities_are_read(client):
    args = {"code": "print(1)"}
    reply, _, _ = complete(client, lambda body: call({"name": "call_python_repl", "arguments": args}))
    assert json.loads(reply.tool_calls[0]["arguments"]) == args  # an object where a string belongs

    parts = [{"type": "text", "text": "hel"}, {"type": "text", "text": "lo"}]
    reply, _, _ = complete(client, lambda body: completion({"role": "assistant", "content": parts}))
    assert reply.text == "hello"

    reply, _, _ = complete(
        client,
        lambda body: completion(
            {
                "role": "assistant",
                "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": None}}],
                "reasoning_content": {"x": 1},
            }
        ),
    )
    assert reply.tool_calls[0]["id"] and reply.tool_calls[0]["arguments"] == "" and reply.reasoning == ""


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": "12", "completion_tokens": "3"},
        {"prompt_tokens": -5, "completion_tokens": 3},
        {"prompt_tokens": 10**15, "completion_tokens": 3},
        {"prompt_tokens": True, "completion_tokens": 3},
        "lots",
    ],
    ids=["strings", "negative", "huge", "bool", "not an object"],
)
def test_bad_usage_is_estimated_instead(usage, client):
    reply, _, _ = complete(client, lambda body: completion({"role": "assistant", "content": "hello there"}, usage))
    assert reply.tokens_estimated and 0 < reply.prompt_tokens < 1000 and 0 < reply.completion_tokens < 1000


def test_bad_usage_details_are_dropped(client):
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 3,
        "completion_tokens_details": {"reasoning_tokens": "x"},
        "prompt_tokens_details": [1],
    }
    reply, _, _ = complete(client, lambda body: completion({"role": "assistant", "content": "hi"}, usage))
    assert (reply.prompt_tokens, reply.completion_tokens, reply.reasoning_tokens, reply.cached_tokens) == (10, 3, 0, 0)
    assert not reply.tokens_estimated


def test_an_unexpected_failure_is_wrapped_with_its_type(client):
    error, _, _ = complete(client, lambda body: Reply(content="never"), messages=[{"role": "user", "content": {1, 2}}])
    assert isinstance(error, ModelError) and "TypeError" in str(error)


# --- retries --------------------------------------------------------------------------------------


def failing_then(*failures):
    """A responder that fails with each of `failures` in turn, then answers."""
    left = list(failures)
    return lambda body: left.pop(0) if left else Reply(content="fine")


def test_429_honours_retry_after_in_seconds(client):
    reply, retries, server = complete(
        client, failing_then(Fail(429, "slow down", headers={"Retry-After": "1"})), max_retries=2
    )
    assert reply.text == "fine" and len(server.requests) == 2
    (retry,) = retries
    assert retry["attempt"] == 1 and retry["max_attempts"] == 3 and retry["wait_s"] == 1.0
    assert "HTTP 429" in retry["reason"] and "slow down" in retry["reason"]


def test_a_burst_of_server_errors_then_success(client):
    burst = [Fail(status, "bad day", headers=QUICK) for status in (500, 502, 503, 504)]
    reply, retries, server = complete(client, failing_then(*burst), max_retries=4)
    assert reply.text == "fine" and len(server.requests) == 5
    assert [r["attempt"] for r in retries] == [1, 2, 3, 4]
    assert all(f"HTTP {status}: bad day" in r["reason"] for r, status in zip(retries, (500, 502, 503, 504)))


@pytest.mark.parametrize("status", [408, 409])
def test_timeout_and_conflict_statuses_are_retried(status, client):
    reply, retries, _ = complete(client, failing_then(Fail(status, "again", headers=QUICK)), max_retries=1)
    assert reply.text == "fine" and len(retries) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_client_errors_are_not_retried(status, client):
    error, retries, server = complete(client, failing_then(Fail(status, "no", headers=QUICK)), max_retries=3)
    assert isinstance(error, ModelError) and f"HTTP {status}" in str(error)
    assert len(server.requests) == 1 and retries == []


def test_the_transport_does_not_retry_behind_our_back(client):
    error, _, server = complete(client, lambda body: Fail(503, "down", headers=QUICK), max_retries=0)
    assert isinstance(error, ModelError) and len(server.requests) == 1


def test_a_malformed_reply_is_retried(client):
    reply, retries, _ = complete(client, failing_then(completion(None)), max_retries=1)
    assert reply.text == "fine" and "message is null" in retries[0]["reason"]


def test_a_server_that_never_answers_times_out_each_attempt(client):
    error, retries, server = complete(client, lambda body: Hang(), max_retries=1, request_timeout=1.0)
    assert isinstance(error, ModelError) and error.kind == "timeout", error
    assert "no reply within 1 s" in str(error) and "2 attempts" in str(error)
    assert len(server.requests) == 2 and "no reply within 1 s" in retries[0]["reason"]


def test_a_server_that_is_gone_is_a_connection_error(client):
    with FakeOpenAI(lambda body: Reply()) as gone:
        pass

    async def call():
        made = client(base_url=gone.base_url, api_key="k", max_retries=1)
        try:
            return await made.complete(
                "m", [{"role": "user", "content": "hi"}], None, on_retry=lambda **r: seen.append(r)
            )
        finally:
            await made.close()

    seen: list = []
    with pytest.raises(ModelError) as raised:
        asyncio.run(call())
    assert raised.value.kind == "connection" and len(seen) == 1 and gone.base_url in str(raised.value)


def test_backoff_grows_with_jitter_and_retry_after_is_capped():
    for attempt in range(1, 8):
        wait = retry_delay(attempt, None)
        assert 0 < wait <= 2 ** (attempt - 1) and wait <= 30
    assert retry_delay(1, 2.5) == 2.5
    assert retry_delay(1, 10_000.0) == MAX_RETRY_AFTER
    assert 0 < retry_delay(3, -1.0) <= 4  # a negative Retry-After falls back to the backoff


# --- the engine -----------------------------------------------------------------------------------


def engine_run(tmp_path, respond, n=1, **settings):
    env = load_environment("verbatim-copy", {"target_length": "100"})
    with FakeOpenAI(respond) as server:
        client = OpenAIClient(base_url=server.base_url, api_key="k", max_retries=1)
        _, stored = stored_run(tmp_path, env, client, n=n, timeout=10, **settings)
    events = [e for _, e in read_events(open_db(tmp_path / "t.db"), run_id=stored.id)]
    return stored, events, server


def test_a_malformed_sub_reply_is_an_error_string_and_a_retry_event(tmp_path):
    def respond(body):
        if is_root(body):
            cells = ['out = llm_batch(["good", "bad"])\nanswer["content"] = repr(out)', 'answer["ready"] = True']
            return code_call(cells[root_turn(body)])
        return Reply(content="ok") if body["messages"][0]["content"] == "good" else completion(None)

    stored, events, _ = engine_run(tmp_path, respond)
    (r,) = stored.rollouts.values()
    out = eval(r.answer["content"])
    assert out[0] == "ok" and out[1].startswith("[sub-LLM error]") and "message is null" in out[1]
    assert r.status == "done"
    (retry,) = [e for e in events if isinstance(e, ev.ModelRetry)]
    bad = next(e for e in events if isinstance(e, ev.SubCallStarted) and e.prompt == "bad")
    assert (retry.role, retry.parent_id, retry.attempt) == ("sub", bad.id, 1)
    (call,) = [c for c in r.batches[0].calls if c.prompt == "bad"]
    assert call.retries == 1 and r.retries == [retry]


def test_a_root_that_keeps_sending_garbage_fails_its_rollout_and_the_other_goes_on(tmp_path):
    env = load_environment("verbatim-copy", {"target_length": "100"})
    first = env.examples(2, 0)[0]
    marker = first.target[:20]  # the first example's prompt is told apart by its text

    def routed(body):
        if is_root(body) and marker in body["messages"][1]["content"]:
            return Raw(b"<html>gateway</html>", content_type="text/html")
        return finishing(body)

    stored, events, _ = engine_run(tmp_path, routed, n=2)
    bad = next(r for r in stored.rollouts.values() if r.example_id == first.id)
    good = next(r for r in stored.rollouts.values() if r.example_id != first.id)
    assert (bad.status, bad.stop_reason) == ("failed", "error")
    assert "malformed reply" in bad.error and "text/html" in bad.error and "2 attempts" in bad.error
    assert good.status == "done" and stored.status == "done"
    retries = [e for e in events if isinstance(e, ev.ModelRetry)]
    assert [(e.role, e.rollout_id, e.parent_id) for e in retries] == [("main", bad.id, bad.turns[0].call_id)]
    assert bad.turns[0].retries == retries


def test_retries_fold_into_the_state():
    e = dict(run_id="r", rollout_id="x")
    events = [
        ev.RolloutQueued(index=0, example_id="a", **e),
        ev.ModelCallStarted(role="main", model="m", turn=1, messages=2, id="c", **e),
        ev.ModelRetry(parent_id="c", role="main", attempt=1, max_attempts=5, reason="HTTP 503", wait_s=1.0, **e),
        ev.ModelRetry(parent_id="c", role="main", attempt=2, max_attempts=5, reason="HTTP 503", wait_s=2.0, **e),
    ]
    state = fold(events, "r")
    assert state.retries == 2 and len(state.rollouts["x"].turns[0].retries) == 2


# --- the command line -----------------------------------------------------------------------------


def cli(tmp_path, server, *args):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RLM_TUI_"))}
    environ["OPENAI_API_KEY"] = "k"
    return subprocess.run(
        [
            RLM_TUI,
            "run",
            "verbatim-copy",
            "--headless",
            "--model",
            "m",
            "--base-url",
            server.base_url,
            "--db",
            "f.db",
            "--env-arg",
            "target_length=100",
            *args,
        ],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def stored_events(tmp_path):
    return [e for _, e in read_events(open_db(tmp_path / "f.db"))]


def finishing(body):
    return code_call('answer.update(content="done", ready=True)') if is_root(body) else Reply(content="s")


def hang_once():
    """A server whose first request never gets an answer; every later one finishes the rollout."""
    held = []

    def respond(body):
        if not held:
            held.append(body)
            return Hang()
        return finishing(body)

    return respond


def test_cli_a_hanging_server_times_out_retries_and_the_run_finishes(tmp_path):
    respond = hang_once()
    with FakeOpenAI(respond) as server:
        proc = cli(tmp_path, server, "-n", "1", "--request-timeout", "2")
    assert proc.returncode == 0, proc.stderr
    (retry,) = [e for e in stored_events(tmp_path) if isinstance(e, ev.ModelRetry)]
    assert retry.role == "main" and "no reply within 2 s" in retry.reason
    assert len(server.requests) == 2


def test_cli_429_then_success(tmp_path):
    with FakeOpenAI(failing_then(Fail(429, "rate limited", headers={"Retry-After": "0"}))) as server:
        proc = cli(tmp_path, server, "-n", "1")
    assert proc.returncode == 0, proc.stderr
    (retry,) = [e for e in stored_events(tmp_path) if isinstance(e, ev.ModelRetry)]
    assert "HTTP 429" in retry.reason


@pytest.mark.parametrize(
    "garbage",
    [completion(None), Raw(b'{"choices": [', content_type="application/json"), call({"name": None, "arguments": "{}"})],
    ids=["message null", "truncated", "nameless tool call"],
)
def test_cli_garbage_from_the_server_fails_one_rollout_not_the_engine(tmp_path, garbage):
    env = load_environment("verbatim-copy", {"target_length": "100"})
    marker = env.examples(2, 0)[0].target[:20]

    def respond(body):
        if is_root(body) and marker in body["messages"][1]["content"]:
            return garbage
        return finishing(body)

    with FakeOpenAI(respond) as server:
        proc = cli(tmp_path, server, "-n", "2")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    events = stored_events(tmp_path)
    state = fold(events, events[0].run_id)
    assert state.status == "done"
    statuses = sorted((r.status, r.error or "") for r in state.rollouts.values())
    assert statuses[0] == ("done", "") and statuses[1][0] == "failed" and "malformed reply" in statuses[1][1]
    assert len([e for e in events if isinstance(e, ev.ModelRetry)]) == 4  # the default: 4 retries


def test_cli_rejects_a_bad_request_timeout(tmp_path):
    with FakeOpenAI(finishing) as server:
        for bad in ("0", "-1", "nan", "soon"):
            proc = cli(tmp_path, server, "--request-timeout", bad)
            assert proc.returncode == 2 and "--request-timeout" in proc.stderr, proc.stderr


def test_the_progress_line_counts_retries(monkeypatch, tmp_path):
    from rlm_tui import headless
    from rlm_tui.engine.rollout import RolloutSettings
    from rlm_tui.engine.run import Run, RunConfig

    out = io.StringIO()
    monkeypatch.setattr(headless, "err", Console(file=out, force_terminal=True, width=200))
    env = load_environment("verbatim-copy", {"target_length": "100"})
    burst = failing_then(*[Fail(503, "busy", headers=QUICK)] * 3)
    with FakeOpenAI(lambda body: burst(body) if is_root(body) else Reply(content="s")) as server:
        client = OpenAIClient(base_url=server.base_url, api_key="k", max_retries=4)
        config = RunConfig(env="verbatim-copy", num_examples=1, rollout=RolloutSettings(model="m", sub_model="m"))
        run = Run(config, env, client, sinks=[])
        state = headless.run_headless(run, client)
    assert state.retries == 3 and "3 retries" in out.getvalue()


# --- the app --------------------------------------------------------------------------------------


async def test_the_app_shows_retries_in_the_timeline_and_the_sub_llm_tree(tmp_path):
    from pilot import until
    from rlm_tui.tui.app import RlmApp
    from rlm_tui.tui.screens.rollout import RolloutScreen
    from rlm_tui.tui.screens.runs import RunsScreen
    from rlm_tui.tui.widgets.subtree import SubTree
    from rlm_tui.tui.widgets.timeline import Timeline
    from runs import store_events
    from synthetic import run_events

    def shown(widget) -> str:
        return "\n".join(widget.render_line(y).text for y in range(widget.size.height))

    events, placed = [], set()
    for e in run_events("retry-run", rollouts=1, turns=2, batch=2):
        events.append(e)
        role = "main" if isinstance(e, ev.ModelCallStarted) else "sub" if isinstance(e, ev.SubCallStarted) else None
        if role and role not in placed:
            placed.add(role)
            events.append(
                ev.ModelRetry(
                    run_id=e.run_id,
                    rollout_id=e.rollout_id,
                    parent_id=e.id,
                    ts=e.ts,
                    role=role,
                    attempt=1,
                    max_attempts=5,
                    reason=f"HTTP 503: {role} [b]busy[/b]",
                    wait_s=0.5,
                )
            )
    db = store_events(tmp_path / "r.db", events)
    app = RlmApp(db)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen._ids)
        await pilot.press("enter")
        # a run of one rollout opens on it
        await until(pilot, lambda: isinstance(app.screen, RolloutScreen) and app.screen.query_one(Timeline).total)
        await pilot.pause()
        timeline = shown(app.screen.query_one(Timeline))
        assert "⟳ attempt 1 of 5 failed: HTTP 503: main [b]busy[/b] · next try in 0.50 s" in timeline
        tree = app.screen.query_one(SubTree)
        tree.root.children[0].expand()
        await until(pilot, lambda: tree.calls)
        await pilot.pause()
        assert "· 1 retry" in shown(tree)


def test_ablate_passes_the_request_timeout_on(tmp_path):
    respond = hang_once()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RLM_TUI_"))}
    environ["OPENAI_API_KEY"] = "k"
    with FakeOpenAI(respond) as server:
        proc = subprocess.run(
            [
                RLM_TUI,
                "ablate",
                "verbatim-copy",
                "--modes",
                "rlm",
                "-n",
                "1",
                "--model",
                "m",
                "--base-url",
                server.base_url,
                "--db",
                "f.db",
                "--env-arg",
                "target_length=100",
                "--request-timeout",
                "2",
            ],
            cwd=tmp_path,
            env=environ,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert proc.returncode == 0, proc.stderr
    (retry,) = [e for e in stored_events(tmp_path) if isinstance(e, ev.ModelRetry)]
    assert "no reply within 2 s" in retry.reason
