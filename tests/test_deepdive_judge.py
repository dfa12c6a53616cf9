"""deepdive's LLM judge: the DeepDive authors' prompt and verdict, on by default for a real model, exact match offline."""

from __future__ import annotations

import socket

import pytest

from environments.deepdive.scoring import judge_prompt, verdict
from fake_openai import FakeOpenAI, Reply
from rlm_tui.engine.clients import OpenAIClient
from rlm_tui.env import load_environment
from runs import stored_run

# Written out here on its own (not read from the module) so that a changed template fails the test.
AUTHORS_PROMPT = (
    "You are judging a DeepDive deep-search agent answer.\n\nQuestion:\n{question}\n\nReference answer:\n{answer}\n\n"
    "Agent response:\n{response}\n\nDecide whether the response answers the question correctly. Be strict about\n"
    "entity identity, dates, and numeric values, but accept equivalent wording.\n\nReturn exactly:\n"
    "Correct: yes/no\nExtracted final answer: <short answer>\nReason: <one sentence>\n"
)


def test_the_prompt_is_the_authors_template_with_the_labelled_answer():
    target = {"answer": "Ada Lovelace", "aliases": ["Augusta Ada King"]}
    prompt = judge_prompt("Who wrote {the} notes?", target, "It was Ada.")
    assert prompt == (
        "You are judging a DeepDive deep-search agent answer.\n\nQuestion:\nWho wrote {the} notes?\n\n"
        "Reference answer:\nAda Lovelace\n\nAgent response:\nIt was Ada.\n\nDecide whether the response answers the "
        "question correctly. Be strict about\nentity identity, dates, and numeric values, but accept equivalent "
        "wording.\n\nReturn exactly:\nCorrect: yes/no\nExtracted final answer: <short answer>\nReason: <one sentence>\n"
    )


@pytest.mark.parametrize(
    "reply, correct",
    [
        ("Correct: yes\nExtracted final answer: Ada Lovelace\nReason: same person.", True),
        ("Correct: no\nExtracted final answer: Byron\nReason: a different person.", False),
        ("correct:YES", True),
        ("Reason first.\nCORRECT :  no\nCorrect: yes", False),  # the first verdict counts
        ("Incorrect: yes", True),  # as the authors' pattern reads it: "correct: yes" inside "Incorrect"
    ],
)
def test_verdicts_are_read_as_the_authors_server_reads_them(reply, correct):
    assert verdict(reply) is correct


# "**Correct** : no" too: the authors' pattern wants the colon right after the word
@pytest.mark.parametrize("reply", ["Yes.", "", "I cannot judge this.\nReally.", "**Correct** : no"])
def test_a_reply_without_a_verdict_judges_nothing(reply):
    with pytest.raises(ValueError) as info:
        verdict(reply)
    assert "\n" not in str(info.value)


def real_run(tmp_path, monkeypatch, judge_reply, env_args=None, response=None):
    """One llm-mode rollout whose root and sub model are served by a local server that also judges."""
    given = {}

    def respond(body):
        if body.get("tools"):  # the root, in llm mode with search and open
            return Reply(content=given["answer"])
        return judge_reply if isinstance(judge_reply, Reply) else Reply(content=judge_reply)

    with FakeOpenAI(respond) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        env = load_environment("deepdive", {"source": "offline", **(env_args or {})})
        (example,) = env.examples(1, 0)
        given["answer"] = response if response is not None else example.target["answer"]
        client = OpenAIClient(base_url=server.base_url, api_key="k", max_retries=0)
        _, stored = stored_run(tmp_path, env, client, mode="llm", model="fake-root", sub_model="fake-sub")
    (rollout,) = stored.rollouts.values()
    judged = [r for r in server.requests if not r.get("tools")]
    return example, rollout, judged


@pytest.mark.parametrize(
    "reply, reward",
    [
        ("Correct: yes\nExtracted final answer: it\nReason: it matches.", 1.0),
        ("Correct: no\nExtracted final answer: other\nReason: it does not.", 0.0),
        ("correct : YES", 1.0),
    ],
)
def test_a_real_model_is_judged_by_its_sub_model_with_the_authors_prompt(tmp_path, monkeypatch, reply, reward):
    example, rollout, judged = real_run(tmp_path, monkeypatch, reply)
    (request,) = judged
    assert request["model"] == "fake-sub"
    assert request["messages"] == [
        {
            "role": "user",
            "content": AUTHORS_PROMPT.format(
                question=example.question, answer=example.target["answer"], response=example.target["answer"]
            ),
        }
    ]
    assert (rollout.status, rollout.reward) == ("done", reward)
    assert rollout.final_metrics["judge"] == "llm judge fake-sub" and rollout.final_metrics["exact_match"] == 1.0


def test_judge_model_names_another_judge_and_none_turns_it_off(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    _, rollout, judged = real_run(tmp_path / "a", monkeypatch, "Correct: no", {"judge_model": "big-judge"})
    assert [r["model"] for r in judged] == ["big-judge"] and rollout.reward == 0.0
    _, rollout, judged = real_run(tmp_path / "b", monkeypatch, "Correct: no", {"judge_model": "none"})
    assert not judged and rollout.reward == 1.0
    assert rollout.final_metrics["judge"] == "exact match (judge_model=none)"


def test_an_empty_answer_scores_zero_without_asking(tmp_path, monkeypatch):
    _, rollout, judged = real_run(tmp_path, monkeypatch, "Correct: yes", response="  ")
    assert not judged and (rollout.status, rollout.reward) == ("done", 0.0)


def test_a_garbage_verdict_fails_the_rollout_in_one_line(tmp_path, monkeypatch):
    _, rollout, judged = real_run(tmp_path, monkeypatch, "Looks right to me!\nSure.")
    assert len(judged) == 1 and (rollout.status, rollout.reward) == ("failed", None)
    assert (
        rollout.error
        == "scoring failed: EnvError: the judge's reply has no 'Correct: yes/no': 'Looks right to me! Sure.'"
    )


def test_a_judge_that_is_down_fails_the_rollout_in_one_line(tmp_path, monkeypatch):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    _, rollout, judged = real_run(tmp_path, monkeypatch, "Correct: yes", {"judge_base_url": dead})
    assert not judged and (rollout.status, rollout.reward) == ("failed", None)
    assert rollout.error.startswith("scoring failed: ModelError: ") and "\n" not in rollout.error


def test_the_scripted_model_scores_by_exact_match_and_says_so(tmp_path):
    env = load_environment("deepdive", {"source": "offline"})
    _, stored = stored_run(tmp_path, env, mode="llm", n=2)
    for r in stored.rollouts.values():
        assert (r.reward, r.final_metrics["judge"]) == (1.0, "exact match (offline)")


def test_the_run_summary_says_what_scored(tmp_path, monkeypatch, capfd):
    from rlm_tui.cli import main

    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SERPER_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    run = ["run", "deepdive", "--headless", "-n", "1", "--mode", "llm"]
    assert main([*run, "--model", "scripted", "--db", "offline.db"]) == 0
    assert "\nscored by: exact match (offline)\n" in capfd.readouterr().out

    def respond(body):
        return Reply(content="an answer") if body.get("tools") else Reply(content="Correct: no")

    with FakeOpenAI(respond) as server:  # the judge is found at the run's --base-url, with no OPENAI_BASE_URL set
        assert main([*run, "--model", "fake-model", "--base-url", server.base_url, "--db", "real.db"]) == 0
    assert "\nscored by: llm judge fake-model\n" in capfd.readouterr().out
    assert [r["model"] for r in server.requests if not r.get("tools")] == ["fake-model"]
