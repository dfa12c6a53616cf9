"""deepdive end to end: the real engine, sandbox and SQLite store, with the scripted model and a local judge."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

import environments.deepdive as deepdive
from fake_openai import Fail, FakeOpenAI, Reply
from rlm_tui.env import load_environment
from runs import stored_run


def execute(tmp_path, env, *, mode="rlm", n=1):
    return stored_run(tmp_path, env, mode=mode, n=n, timeout=20)[1]


def tool_events(rollout):
    return [t for b in rollout.batches for c in b.calls for t in c.tools]


@pytest.mark.parametrize("mode", ["rlm", "rlm-tips"])
def test_scripted_rlm_modes_search_and_read_through_sub_llms(tmp_path, mode):
    stored = execute(tmp_path, load_environment("deepdive", {"source": "offline"}), mode=mode, n=3)
    assert stored.status == "done" and len(stored.rollouts) == 3
    for r in stored.rollouts.values():
        assert (r.status, r.stop_reason, r.reward) == ("done", "answer_ready", 1.0)
        assert len(r.batches) >= 2 and r.batches[0].size == 3  # two phrasings of the first hop and a summary
        for call in (c for b in r.batches for c in b.calls):
            assert [t.name for t in call.tools] == ["search", "open"] and call.response != "UNKNOWN"
            assert call.tools[1].result.startswith(call.tools[1].arguments["url"].rsplit("/", 1)[1].replace("_", " "))
        searches = [t for t in tool_events(r) if t.name == "search"]
        assert r.final_metrics["search_count"] == len(searches) >= 3
        assert 0.0 < r.final_metrics["search_query_redundancy"] < 1.0
        contents = [c for c, _, _ in r.answer_history]
        assert len(set(contents)) >= 2 and r.answer_history[-1][1] is True  # written, corrected, then ready
        assert r.answer["content"] == r.target["answer"]
        assert r.info["source"] == "offline" and r.info["hops"] == len(r.info["path"].split(" > "))
    assert ("<env_tips>" in next(iter(stored.rollouts.values())).user_prompt) == (mode == "rlm-tips")


def test_scripted_llm_mode_calls_the_tools_itself(tmp_path):
    stored = execute(tmp_path, load_environment("deepdive", {"source": "offline"}), mode="llm", n=3)
    for r in stored.rollouts.values():
        assert (r.status, r.reward) == ("done", 1.0) and not r.batches
        names = [c["name"] for t in r.turns for c in t.tool_calls]
        assert names == ["search", "open"] * r.info["hops"]
        assert r.final_metrics["search_count"] == r.info["hops"]


def judged(tmp_path, respond):
    with FakeOpenAI(respond) as server:
        env = load_environment(
            "deepdive", {"source": "offline", "judge_model": "judge-model", "judge_base_url": server.base_url}
        )
        stored = execute(tmp_path, env, mode="llm")
    (rollout,) = stored.rollouts.values()
    return rollout, server


def test_the_judge_decides_the_reward(tmp_path):
    rollout, server = judged(tmp_path, lambda body: Reply(content="Correct: yes\nExtracted final answer: x"))
    assert rollout.reward == 1.0 and rollout.final_metrics["judge"] == "llm judge judge-model"
    (request,) = server.requests
    prompt = request["messages"][0]["content"]
    assert request["model"] == "judge-model" and "tools" not in request
    assert f"Reference answer:\n{rollout.target['answer']}\n" in prompt
    assert f"Agent response:\n{rollout.answer['content']}\n" in prompt


def test_a_judge_saying_no_overrides_an_exact_match(tmp_path):
    rollout, _ = judged(tmp_path, lambda body: Reply(content="Correct: no"))
    assert rollout.reward == 0.0 and rollout.final_metrics["exact_match"] == 1.0


def test_a_failing_judge_fails_the_rollout_with_a_clear_error(tmp_path):
    rollout, server = judged(tmp_path, lambda body: Fail(500, "judge exploded", headers={"retry-after-ms": "1"}))
    assert (rollout.status, rollout.stop_reason, rollout.reward) == ("failed", "error", None)
    assert rollout.error.startswith("scoring failed: ModelError: judge-model request failed with HTTP 500")
    assert rollout.answer["content"] == rollout.target["answer"]  # the answer is kept in the log
    assert len(server.requests) == 3  # one call and two retries


def test_online_rollout_with_only_the_network_replaced(tmp_path, monkeypatch):
    serper = []

    def handler(request):
        if request.url.host == "google.serper.dev":
            serper.append(json.loads(request.content))
            return httpx.Response(
                200,
                json={
                    "organic": [
                        {
                            "title": "Difference Engine",
                            "link": "https://example.org/engine",
                            "snippet": "…",
                            "position": 1,
                        }
                    ]
                },
            )
        return httpx.Response(
            200,
            headers={"content-type": "text/html"},
            text="<title>Engine</title><nav>menu</nav><p>Charles Babbage</p><p>More text.</p>",
        )

    monkeypatch.setenv("SERPER_API_KEY", "test-key")
    rows = [{"id": 1, "question": "Who designed the Difference Engine?", "answer": "Charles Babbage"}]
    monkeypatch.setattr(deepdive, "load_rows", lambda: rows)
    env = load_environment("deepdive", {"eval_size": "1"})
    env.http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    stored = execute(tmp_path, env, mode="rlm")
    asyncio.run(env.http.aclose())
    (r,) = stored.rollouts.values()
    assert (r.status, r.reward, r.info["source"]) == ("done", 1.0, "online")
    assert [t.name for t in tool_events(r)] == ["search", "open"] * 3
    assert serper[0]["q"] == "Who designed the Difference Engine?"
    assert tool_events(r)[1].result.startswith("Engine\nhttps://example.org/engine\n\nCharles Babbage")
