"""Recursion deeper than one: rlm_batch starts child RLMs, each in a jail of its own, whose turns nest under the
call that started them (real CLI, engine, jails and client against a local server)."""

from __future__ import annotations

import json

import pytest

from fake_openai import FakeOpenAI, Reply, code_call, root_turn
from pilot import until
from rlm_tui import events as ev
from rlm_tui.store import open_db, read_events
from rlm_tui.tui.app import RlmApp
from rlm_tui.tui.screens.child import ChildScreen
from rlm_tui.tui.screens.rollout import RolloutScreen
from rlm_tui.tui.widgets.subtree import SubTree
from rlm_tui.tui.widgets.timeline import Timeline
from test_fork import cli, stored_runs
from test_tui_approve import transcript

ROOT = [
    'parts = rlm_batch(["abc", "hello"])\nprint(parts)',
    'answer.update(content="+".join(parts), ready=True)',
]
CHILD = [
    "word = context\nprint(len(word))",  # the child's own REPL holds its prompt
    "print(llm_batch([word])[0])\nanswer.update(content=word.upper(), ready=True)",
]
USAGE = {"root": (100, 10), "sub": (40, 4)}


def recursive(body):
    """The root runs ROOT; each child (the sub model, with the REPL tool) runs CHILD; plain sub-LLMs echo."""
    model, tools = body["model"], body.get("tools")
    prompt, completion = USAGE["root" if model == "root" else "sub"]
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    if tools:
        cells = ROOT if model == "root" else CHILD
        return Reply(tool_calls=code_call(cells[min(root_turn(body), len(cells) - 1)]).tool_calls, usage=usage)
    return Reply(content="echo " + body["messages"][-1]["content"], usage=usage)


def run(capsys, db, server, *extra):
    argv = ["run", "verbatim-copy", "--headless", "-n", "1", "--model", "root", "--sub-model", "sub"]
    return cli(capsys, *argv, "--base-url", server.base_url, "--timeout", "20", "--db", str(db), *extra)


def test_rlm_batch_runs_each_prompt_as_a_child_rlm_whose_turns_nest_under_its_call(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    db = tmp_path / "d.db"
    with FakeOpenAI(recursive) as server:
        code, _, err = run(capsys, db, server, "--max-depth", "2")
    assert code == 0, err
    ((r,),) = [list(s.rollouts.values()) for s in stored_runs(db)]
    assert r.answer == {"content": "ABC+HELLO", "ready": True}
    assert r.turns[0].cells[0].output == "['ABC', 'HELLO']\n"
    (batch, *inner) = r.batches
    assert (batch.rlm, batch.depth, batch.owner, [c.prompt for c in batch.calls]) == (True, 1, None, ["abc", "hello"])
    for call, word in zip(sorted(batch.calls, key=lambda c: c.index), ["abc", "hello"], strict=True):
        assert call.rlm and call.response == word.upper()
        outputs = [c.output for t in call.child_turns for c in t.cells]
        assert outputs == [f"{len(word)}\n", f"echo {word}\n"]  # its own jail, and its own llm_batch at depth 2
        assert (call.turns, call.prompt_tokens, call.completion_tokens) == (2, 80, 8)  # the child's 2 turns only
    assert sorted((b.depth, b.rlm, len(b.calls)) for b in inner) == [(2, False, 1), (2, False, 1)]
    assert {b.owner for b in inner} == {c.id for c in batch.calls}
    # the root's own turns and cells are the root's alone
    assert [len(t.cells) for t in r.turns] == [1, 1] and r.main_tokens == 2 * 110
    m = r.final_metrics
    assert (m["sub_rlm_call_count"], m["depth_0_tokens"], m["depth_1_tokens"], m["depth_2_tokens"]) == (
        2,
        220,
        2 * 88,  # two children, two turns of 44 tokens each
        2 * 44,  # each child's one plain sub-LLM call
    )

    code, out, _ = cli(capsys, "show", r.id, "--db", str(db))
    assert code == 0
    text = " ".join(out.split())
    assert "rlm_batch #0: 2 child RLMs" in text
    assert "child 1 · 2 turns · 80+8 tok · answer: HELLO" in text and "print(len(word))" in text

    code, out, _ = cli(capsys, "export", "--db", str(db))
    (record,) = [json.loads(line) for line in out.splitlines()]
    children = [c for c in record["sub_llm_calls"] if c["rlm"]]
    assert [c["child_turns"] for c in children] == [2, 2] and {c["depth"] for c in record["sub_llm_calls"]} == {1, 2}


def test_rlm_batch_at_depth_1_is_refused_in_the_repl_and_nothing_starts(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    db = tmp_path / "one.db"
    with FakeOpenAI(recursive) as server:
        code, _, err = run(capsys, db, server, "--max-turns", "1")
        requests = len(server.requests)
    assert code == 0, err
    ((r,),) = [list(s.rollouts.values()) for s in stored_runs(db)]
    refusal = "[rlm_batch error] rlm_batch is not available at depth 1: the run's --max-depth allows no deeper RLM; use llm_batch"
    assert r.turns[0].cells[0].output == f"[{refusal!r}, {refusal!r}]\n"
    assert requests == 1 and not r.batches


def test_a_fork_of_a_recursive_rollout_replays_the_childrens_answers_without_a_model_request(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    db = tmp_path / "f.db"
    with FakeOpenAI(recursive) as server:
        code, _, err = run(capsys, db, server, "--max-depth", "2")
        assert code == 0, err
        ((parent,),) = [list(s.rollouts.values()) for s in stored_runs(db)]
        before = len(server.requests)
        code, _, err = cli(capsys, "fork", parent.id, "--at-turn", "2", "--db", str(db))
        assert code == 0, err
        after = len(server.requests)
    fork_run = stored_runs(db)[1]
    (fork,) = fork_run.rollouts.values()
    assert fork.forked_from is not None and fork.forked_from.diverged == []
    assert fork.turns[0].cells[0].output == "['ABC', 'HELLO']\n"  # rebuilt from the recorded answers
    assert after - before == 1  # turn 2, live; the children were not asked again
    events = [e for _, e in read_events(open_db(db), run_id=fork_run.id)]
    assert not any(isinstance(e, ev.CellStarted) and e.source == "child" for e in events)


def test_the_offline_model_hands_its_chunks_to_child_rlms_at_depth_2(tmp_path, capsys):
    db = tmp_path / "s.db"
    argv = ["run", "verbatim-copy", "--headless", "-n", "1", "--max-depth", "2", "--scripted-errors", "0"]
    code, _, err = cli(capsys, *argv, "--db", str(db))
    assert code == 0, err
    ((r,),) = [list(s.rollouts.values()) for s in stored_runs(db)]
    (children,) = [b for b in r.batches if b.rlm]
    assert children.size == 4 and all(len(c.child_turns) == 2 for c in children.calls)
    assert r.reward == 1.0 and r.final_metrics["sub_rlm_call_count"] == 4


@pytest.fixture
def offline_depth_2(tmp_path, capsys):
    db = tmp_path / "a.db"
    argv = ["run", "verbatim-copy", "--headless", "-n", "1", "--max-depth", "2", "--scripted-errors", "0"]
    code, _, err = cli(capsys, *argv, "--db", str(db))
    assert code == 0, err
    (state,) = stored_runs(db)
    return db, state


async def test_the_app_opens_a_child_rlms_transcript_from_the_sub_llm_tree(offline_depth_2):
    db, state = offline_depth_2
    (r,) = state.rollouts.values()
    app = RlmApp(db, run_id=state.id, rollout_id=r.id, follow=False)
    async with app.run_test(size=(150, 45)) as pilot:
        await until(pilot, lambda: app.session.replay is not None)
        await pilot.press("G")
        tree = app.screen.query_one(SubTree)
        await until(pilot, lambda: len(tree.root.children) == 1)  # the children's own batches are theirs to show
        (batch,) = tree.root.children
        assert "rlm_batch #0" in str(batch.label) and "4/4 done" in str(batch.label)
        batch.expand()
        await until(pilot, lambda: len(batch.children) == 4)
        assert "child RLM · 2 turns" in str(batch.children[1].label)
        tree.focus()
        tree.select_node(batch.children[1])
        await until(pilot, lambda: isinstance(app.screen, ChildScreen))
        timeline = app.screen.query_one(Timeline)
        await until(pilot, lambda: timeline.turn_count == 2)
        shown = " ".join(transcript(timeline).split())
        assert "print(len(context))" in shown and "llm_batch #0 · 1 prompts" in shown
        assert "child RLM #1 of rlm_batch #0 · depth 1 · 2 turns" in str(app.screen.query_one("#child-head").render())
        await pilot.press("escape")
        assert isinstance(app.screen, RolloutScreen)


def test_a_damaged_stored_depth_or_approve_is_read_as_the_default():
    from rlm_tui.engine.run import RunConfig

    for depth, approve in (("2", "yes"), (True, 1), (9, None), (0, [])):
        config = RunConfig.from_dict({"env": "verbatim-copy", "rollout": {"max_depth": depth, "approve": approve}})
        assert (config.rollout.max_depth, config.rollout.approve) == (1, False)
    config = RunConfig.from_dict({"env": "verbatim-copy", "rollout": {"max_depth": 3, "approve": True}})
    assert (config.rollout.max_depth, config.rollout.approve) == (3, True)
