"""The rollout loop end to end: real sandbox, real SQLite, the real openai client against a local server."""

from __future__ import annotations

import json
import os

import pytest

from fake_openai import Fail, FakeOpenAI, Hang, Reply, code_call, is_root, root_turn
from rlm_tui import events as ev
from rlm_tui.engine.clients import OpenAIClient
from rlm_tui.engine.scripted import ScriptedClient
from rlm_tui.env import load_environment
from rlm_tui.store import open_db, read_events
from runs import stored_run

ROOT_USAGE = {
    "prompt_tokens": 100,
    "completion_tokens": 10,
    "completion_tokens_details": {"reasoning_tokens": 4},
    "prompt_tokens_details": {"cached_tokens": 50},
}
SUB_USAGE = {"prompt_tokens": 7, "completion_tokens": 3}


def execute(tmp_path, client, *, mode="rlm", n=1, env_args=None, **settings):
    env = load_environment("verbatim-copy", {"target_length": "200", **(env_args or {})})
    settings.setdefault("timeout", 10)
    return stored_run(tmp_path, env, client, mode=mode, n=n, **settings)


def served(tmp_path, respond, **kw):
    with FakeOpenAI(respond) as server:
        client = OpenAIClient(base_url=server.base_url, api_key="test-key", max_retries=2)
        state, stored = execute(tmp_path, client, **kw)
    return state, stored, server


def only(state):
    (rollout,) = state.rollouts.values()
    return rollout


def test_rlm_rollout_through_the_openai_client(tmp_path):
    cells = [
        'parts = llm_batch(["alpha", "beta", "gamma"])\nprint(parts)',
        'answer["content"] = "|".join(parts)\nanswer["content"]',
        'answer["ready"] = True',
    ]

    def respond(body):
        if is_root(body):
            reply = code_call(cells[root_turn(body)])
            reply.usage = ROOT_USAGE
            return reply
        return Reply(content="X-" + body["messages"][0]["content"], usage=SUB_USAGE)

    state, stored, server = served(tmp_path, respond)
    r = only(stored)
    assert (r.status, r.stop_reason) == ("done", "answer_ready")
    assert r.answer == {"content": "X-alpha|X-beta|X-gamma", "ready": True}
    m = r.final_metrics
    assert (m["main_rlm_turns"], m["main_rlm_prompt_tokens"], m["main_rlm_completion_tokens"]) == (3, 300, 30)
    assert (m["sub_llm_call_count"], m["sub_llm_prompt_tokens"], m["sub_llm_completion_tokens"]) == (3, 21, 9)
    assert (m["sub_llm_batch_count"], m["sub_llm_max_batch_size"], m["repl_call_count"]) == (1, 3, 3)
    assert r.main_cached_tokens == 150 and r.main_reasoning_tokens == 12
    roots = [b for b in server.requests if is_root(b)]
    subs = [b for b in server.requests if not is_root(b)]
    assert len(roots) == 3 and len(subs) == 3
    assert {b["model"] for b in subs} == {"fake-sub"} and {b["model"] for b in roots} == {"fake-root"}
    assert [t["function"]["name"] for t in roots[0]["tools"]] == ["call_python_repl"]
    tool_msg = roots[1]["messages"][-1]
    assert tool_msg["role"] == "tool" and "['X-alpha', 'X-beta', 'X-gamma']" in tool_msg["content"]
    assert "cell took" in tool_msg["content"]
    assert "Out[2]: 'X-alpha|X-beta|X-gamma'" in roots[2]["messages"][-1]["content"]
    assert stored.rollouts[r.id].final_metrics == only(state).final_metrics  # the log holds what the engine saw


def test_tokens_are_estimated_when_the_server_reports_none(tmp_path):
    def respond(body):
        if is_root(body):
            return code_call('answer.update(content="x", ready=True)')
        return Reply(content="sub")

    _, stored, _ = served(tmp_path, respond)
    r = only(stored)
    assert r.main_prompt_tokens > 50 and r.main_completion_tokens > 5


def test_malformed_tool_call_is_answered_and_the_loop_goes_on(tmp_path):
    def respond(body):
        if root_turn(body) == 0:
            return Reply(tool_calls=[("call_python_repl", "{not json")])
        if root_turn(body) == 1:
            return Reply(tool_calls=[("run_shell", json.dumps({"cmd": "ls"}))])
        return code_call('answer["content"] = "ok"; answer["ready"] = True')

    _, stored, server = served(tmp_path, respond)
    assert "malformed call_python_repl call" in server.requests[1]["messages"][-1]["content"]
    assert "no tool named 'run_shell'" in server.requests[2]["messages"][-1]["content"]
    assert only(stored).answer["content"] == "ok"


def test_context_length_rejection_is_its_own_outcome(tmp_path):
    def respond(body):
        return Fail(400, "This model's maximum context length is 128000 tokens.", code="context_length_exceeded")

    _, stored, _ = served(tmp_path, respond)
    r = only(stored)
    assert (r.status, r.stop_reason, r.reward) == ("done", "context_length", 0.0)
    assert r.turns[0].outcome == "context_length"


def test_rate_limits_and_server_errors_are_retried(tmp_path):
    seen = {"n": 0}

    def respond(body):
        seen["n"] += 1
        if seen["n"] == 1:
            return Fail(429, "slow down", headers={"retry-after-ms": "10"})
        if seen["n"] == 2:
            return Fail(503, "overloaded", headers={"retry-after-ms": "10"})
        return code_call('answer.update(content="fine", ready=True)')

    _, stored, server = served(tmp_path, respond)
    assert only(stored).answer["content"] == "fine" and len(server.requests) == 3


def test_a_failed_sub_call_is_an_error_string_in_its_slot(tmp_path):
    def respond(body):
        if is_root(body):
            if root_turn(body) == 0:
                return code_call('out = llm_batch(["ok 1", "boom", "ok 2"])\nanswer["content"] = repr(out)')
            return code_call('answer["ready"] = True')
        prompt = body["messages"][0]["content"]
        if prompt == "boom":
            return Fail(500, "internal", headers={"retry-after-ms": "1"})
        return Reply(content=prompt.upper())

    _, stored, _ = served(tmp_path, respond)
    r = only(stored)
    out = eval(r.answer["content"])
    assert out[0] == "OK 1" and out[2] == "OK 2" and out[1].startswith("[sub-LLM error]")
    (batch,) = r.batches
    assert batch.errors == 1 and batch.calls and r.status == "done"


def test_a_turn_without_a_tool_call_ends_the_rollout(tmp_path):
    def respond(body):
        if root_turn(body) == 0:
            return code_call('answer["content"] = "draft"')
        return Reply(content="I am done.")

    _, stored, _ = served(tmp_path, respond)
    r = only(stored)
    assert (r.stop_reason, r.answer) == ("no_tool_call", {"content": "draft", "ready": False})


def test_max_turns(tmp_path):
    _, stored, server = served(tmp_path, lambda body: code_call("print(1)"), max_turns=3)
    assert only(stored).stop_reason == "max_turns" and len(server.requests) == 3


def test_llm_mode_sends_the_text_and_scores_the_reply(tmp_path):
    def respond(body):
        text = body["messages"][1]["content"]
        return Reply(content=text.split("<text>", 1)[1].rsplit("</text>", 1)[0], usage=ROOT_USAGE)

    _, stored, server = served(tmp_path, respond, mode="llm")
    r = only(stored)
    assert r.reward == 1.0 and r.answer["ready"] and "tools" not in server.requests[0]


def test_a_crash_is_reported_to_the_model_and_the_answer_survives(tmp_path):
    def respond(body):
        turn = root_turn(body)
        if turn == 0:
            return code_call('answer["content"] = "kept"\nscratch = 42')
        if turn == 1:
            return code_call("import os\nos._exit(3)")
        if turn == 2:
            return code_call("print(answer['content'], 'scratch' in globals())")
        return code_call('answer["ready"] = True')

    _, stored, server = served(tmp_path, respond)
    after_crash = server.requests[2]["messages"][-1]["content"]
    assert "[REPL restarted]" in after_crash
    assert "kept False" in server.requests[3]["messages"][-1]["content"]
    r = only(stored)
    assert r.restarts and r.restarts[0].reason == "crash" and r.answer["content"] == "kept"


def test_cell_output_is_truncated_with_a_marker(tmp_path):
    def respond(body):
        if root_turn(body) == 0:
            return code_call('print("y" * 20000)')
        return code_call('answer["ready"] = True')

    _, stored, server = served(tmp_path, respond, max_output_chars=1000)
    seen = server.requests[1]["messages"][-1]["content"]
    assert "showing 1,000 of 20,001 characters; 19,001 cut" in seen
    cell = only(stored).turns[0].cells[0]
    assert cell.truncated and cell.output_chars == 20001 and len(cell.output) == 20001
    assert cell.shown_chars == 1000 and cell.shown.startswith("y" * 1000 + "\n[output truncated:")


@pytest.mark.parametrize("mode", ["rlm", "rlm-tips"])
def test_scripted_model_plays_verbatim_copy(tmp_path, mode):
    env = load_environment("verbatim-copy", {"target_length": "400"})
    state, stored = execute(tmp_path, ScriptedClient(env), mode=mode, n=3, env_args={"target_length": "400"})
    assert stored.status == "done" and len(stored.rollouts) == 3
    for r in stored.rollouts.values():
        assert r.reward == 1.0 and r.stop_reason == "answer_ready"
        assert len(r.turns) >= 3 and r.batches and r.batches[0].size >= 4
        contents = [c for c, ready, _ in r.answer_history]
        assert len(set(contents)) >= 2 and r.answer_history[-1][1] is True  # written, corrected, then ready
    assert ("<env_tips>" in next(iter(stored.rollouts.values())).user_prompt) == (mode == "rlm-tips")


def test_scripted_llm_mode(tmp_path):
    env = load_environment("verbatim-copy")
    _, stored = execute(tmp_path, ScriptedClient(env), mode="llm", n=2)
    assert [r.reward for r in stored.rollouts.values()] == [1.0, 1.0]


def test_events_are_ordered_and_linked(tmp_path):
    env = load_environment("verbatim-copy")
    state, _ = execute(tmp_path, ScriptedClient(env), n=1)
    events = read_events(open_db(tmp_path / "t.db"), run_id=state.id)
    kinds = [e.kind for _, e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    ids = {e.id for _, e in events}
    assert all(e.parent_id in ids for _, e in events if e.parent_id)
    subs = [e for _, e in events if isinstance(e, ev.SubCallStarted)]
    batches = {e.id for _, e in events if isinstance(e, ev.SubBatchStarted)}
    assert subs and all(s.parent_id in batches for s in subs)


def jails_below(pid: int) -> list[int]:
    """Every process under `pid` running the REPL server."""
    from rlm_tui.sandbox.nsjail import children

    found, todo = [], children(pid)
    while todo:
        child = todo.pop()
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                if b"repl_server.py" in f.read():
                    found.append(child)
        except OSError:
            continue
        todo += children(child)
    return found


def test_a_sandbox_that_fails_to_start_during_the_first_call_cancels_it(tmp_path, monkeypatch):
    monkeypatch.setenv("RLM_TUI_NSJAIL", "/usr/bin/false")  # there, but no jail comes up from it
    with FakeOpenAI(lambda body: Hang()) as server:  # the first call would never come back
        client = OpenAIClient(base_url=server.base_url, api_key="test-key", max_retries=0)
        state, stored = execute(tmp_path, client)
    r = only(stored)
    assert (state.status, r.status, r.stop_reason) == ("failed", "failed", "error")
    assert r.error.startswith("could not start the nsjail sandbox") and state.error.startswith(r.error)
    (call,) = [e for _, e in read_events(open_db(tmp_path / "t.db")) if e.kind == "model_call_finished"]
    assert (call.outcome, call.error) == ("error", r.error)  # the call in flight ends with the start's reason


def test_a_model_call_that_fails_while_the_jail_starts_closes_the_jail(tmp_path):
    state, stored, server = served(tmp_path, lambda body: Fail(400, "bad request"))
    r = only(stored)
    assert (r.status, r.stop_reason) == ("failed", "error") and "bad request" in r.error
    assert jails_below(os.getpid()) == []
