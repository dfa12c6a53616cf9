"""Forks end to end: a stored rollout forked at a turn, its REPL rebuilt in a real jail with no model request
(counted at a real local server), then going on live; lineage in show, runs and export."""

from __future__ import annotations

import json

import pytest

from fake_openai import FakeOpenAI, Reply, code_call, is_root, root_turn
from rlm_tui.cli import main
from rlm_tui.state import fold
from rlm_tui.store import open_db, read_events

CELLS = [
    'x = 41\nparts = llm_batch(["one", "two"])\nprint(x, parts)',
    "x += 1\nprint(x, parts[1])",
    'answer.update(content=f"{x} {parts[0]}", ready=True)',
]


def three_turns(body):
    """A root model that runs CELLS in order; each sub-LLM answers with its prompt reversed."""
    if is_root(body):
        return code_call(CELLS[min(root_turn(body), len(CELLS) - 1)])
    return Reply(content=body["messages"][-1]["content"][::-1])


def cli(capsys, *argv):
    code = main([*argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_parent(capsys, server, db, cells_fn=three_turns):
    code, _, err = cli(
        capsys,
        "run",
        "verbatim-copy",
        "--headless",
        "-n",
        "1",
        "--model",
        "fake-root",
        "--sub-model",
        "fake-sub",
        "--base-url",
        server.base_url,
        "--timeout",
        "20",
        "--db",
        str(db),
    )
    assert code == 0, err
    (run_id,) = {e.run_id for _, e in read_events(open_db(db))}
    state = fold([e for _, e in read_events(open_db(db), run_id=run_id)], run_id)
    (rollout,) = state.rollouts.values()
    return state, rollout


def stored_runs(db):
    events = [e for _, e in read_events(open_db(db))]
    run_ids = list(dict.fromkeys(e.run_id for e in events))
    return [fold([e for e in events if e.run_id == rid], rid) for rid in run_ids]


def test_a_fork_at_turn_3_rebuilds_the_repl_without_a_model_request_then_goes_on_live(tmp_path, capsys):
    db = tmp_path / "t.db"
    with FakeOpenAI(three_turns) as server:
        parent_run, parent = run_parent(capsys, server, db)
        assert [c.output for t in parent.turns for c in t.cells] == ["41 ['eno', 'owt']\n", "42 owt\n", ""]
        parent_requests = list(server.requests)
        code, _, err = cli(
            capsys, "fork", parent.id[:6], "--at-turn", "3", "--message", "check x first", "--headless", "--db", str(db)
        )
        assert code == 0, err
        live = server.requests[len(parent_requests) :]
    # the rebuild asked nothing: the one request is the root's live turn 3, with the parent's context plus the message
    assert len(live) == 1 and is_root(live[0])
    parent_turn_3 = [r for r in parent_requests if is_root(r)][2]["messages"]
    assert live[0]["messages"] == parent_turn_3 + [{"role": "user", "content": "check x first"}]
    assert "warning" not in err
    _, fork_run = stored_runs(db)
    (fork,) = fork_run.rollouts.values()
    assert fork_run.config["forked_from"] == {"rollout_id": parent.id, "run_id": parent_run.id, "turn": 3}
    assert fork.forked_from is not None and fork.forked_from.diverged == [] and fork.forked_from.cells == 2
    assert [c.output for t in fork.turns[:2] for c in t.cells] == ["41 ['eno', 'owt']\n", "42 owt\n"]
    assert [t.prompt_tokens for t in fork.turns[:2]] == [0, 0]  # replayed, not paid for again
    assert (fork.status, fork.answer) == ("done", {"content": "42 eno", "ready": True})
    assert fork.example_id == parent.example_id

    code, out, _ = cli(capsys, "show", fork.id, "--db", str(db))
    assert code == 0 and f"forked from rollout {parent.id} of run {parent_run.id} at turn 3" in out
    code, out, _ = cli(capsys, "runs", "--db", str(db))
    assert code == 0 and f"run {fork_run.id} forks rollout {parent.id} of run {parent_run.id} at turn 3" in out
    code, out, _ = cli(capsys, "export", fork_run.id, parent_run.id, "--db", str(db))
    records = {r["rollout_id"]: r for r in map(json.loads, out.splitlines())}
    assert records[fork.id]["forked_from"] == {"rollout_id": parent.id, "run_id": parent_run.id, "turn": 3}
    assert records[parent.id]["forked_from"] is None


def test_a_fork_of_a_fork_finds_the_replayed_sub_llm_answers_in_its_parent(tmp_path, capsys):
    db = tmp_path / "t.db"
    with FakeOpenAI(three_turns) as server:
        _, parent = run_parent(capsys, server, db)
        assert cli(capsys, "fork", parent.id, "--at-turn", "3", "--db", str(db))[0] == 0
        (first,) = stored_runs(db)[1].rollouts.values()
        before = len(server.requests)
        code, _, err = cli(capsys, "fork", first.id, "--at-turn", "3", "--db", str(db))
        assert code == 0, err
        assert len(server.requests) - before == 1
    (second,) = stored_runs(db)[2].rollouts.values()
    assert second.forked_from is not None and second.forked_from.diverged == []
    assert [c.response for b in second.batches for c in b.calls] == ["eno", "owt"]
    assert [(b.batch, b.size) for b in second.batches] == [(0, 2)]
    assert second.sub_prompt_tokens == 0 and second.answer == {"content": "42 eno", "ready": True}


def test_edited_code_replaces_the_turns_cell_and_runs_in_the_rebuilt_repl(tmp_path, capsys):
    db = tmp_path / "t.db"
    edit = tmp_path / "edit.py"
    edit.write_text("x = x * 100\nprint(x)")
    with FakeOpenAI(three_turns) as server:
        _, parent = run_parent(capsys, server, db)
        before = len(server.requests)
        code, _, err = cli(capsys, "fork", parent.id, "--at-turn", "2", "--edit-code", str(edit), "--db", str(db))
        assert code == 0, err
        assert len(server.requests) - before == 1  # turn 2 ran the edit; only turn 3 asked the model
    (fork,) = stored_runs(db)[1].rollouts.values()
    assert [c.output for t in fork.turns for c in t.cells] == ["41 ['eno', 'owt']\n", "4100\n", ""]
    assert fork.answer == {"content": "4100 eno", "ready": True}


def test_a_cell_whose_output_differs_on_rebuild_is_named(tmp_path, capsys):
    db = tmp_path / "t.db"
    cells = ["import os\nprint(os.urandom(8).hex())", "print('same')", 'answer.update(content="x", ready=True)']

    def random_first(body):
        return code_call(cells[min(root_turn(body), 2)]) if is_root(body) else Reply(content="sub")

    with FakeOpenAI(random_first) as server:
        _, parent = run_parent(capsys, server, db, random_first)
        code, _, err = cli(capsys, "fork", parent.id, "--at-turn", "3", "--db", str(db))
    assert code == 0
    assert "diverged from the parent at turn 1:" in err
    (fork,) = stored_runs(db)[1].rollouts.values()
    assert fork.forked_from is not None and fork.forked_from.diverged == [1]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--at-turn", "9"], "has turns 1 to 3; --at-turn 9 is not one of them"),
        (["--at-turn", "2", "--edit-code", "/nonexistent/x.py"], "cannot read --edit-code"),
        (["--at-turn", "2", "--edit-code", "/dev/zero"], "is over 1,000,000 bytes"),  # refused, not read whole
    ],
)
def test_a_fork_that_cannot_be_made_is_one_line_and_exit_2(tmp_path, capsys, argv, says):
    db = tmp_path / "t.db"
    with FakeOpenAI(three_turns) as server:
        _, parent = run_parent(capsys, server, db)
        before = len(server.requests)
        code, out, err = cli(capsys, "fork", parent.id, *argv, "--db", str(db))
        assert len(server.requests) == before
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(capsys, "fork", "ffffffffffff", "--at-turn", "1", "--db", str(db))
    assert code == 2 and "no rollout" in err.lower()


def test_the_scripted_model_forks_offline_and_finishes(tmp_path, capsys):
    db = tmp_path / "t.db"
    code, _, err = cli(capsys, "run", "verbatim-copy", "--headless", "-n", "1", "--model", "scripted", "--db", str(db))
    assert code == 0, err
    ((parent,),) = [list(r.rollouts.values()) for r in stored_runs(db)]
    assert len(parent.turns) >= 3
    code, _, err = cli(capsys, "fork", parent.id, "--at-turn", "3", "--message", "check every chunk", "--db", str(db))
    assert code == 0, err
    (fork,) = stored_runs(db)[1].rollouts.values()
    rebuilt = [(c.code, c.output) for t in fork.turns[:2] for c in t.cells]
    assert rebuilt == [(c.code, c.output) for t in parent.turns[:2] for c in t.cells]
    assert fork.status == "done" and fork.reward is not None


def test_a_damaged_stored_cell_is_one_line_and_exit_2(tmp_path, capsys):
    from rlm_tui import events as ev
    from runs import store_events

    run, rollout = "r" * 16, "a" * 16
    db = store_events(
        tmp_path / "t.db",
        [
            ev.RunStarted(
                run_id=run,
                env="verbatim-copy",
                mode="rlm",
                model="scripted",
                sub_model="scripted",
                num_rollouts=1,
                config={"env": "verbatim-copy"},
            ),
            ev.RolloutQueued(run_id=run, rollout_id=rollout, index=0, example_id="vc-0-0"),
            ev.RolloutStarted(run_id=run, rollout_id=rollout, system_prompt="s", user_prompt="u"),
            ev.ModelCallStarted(run_id=run, rollout_id=rollout, role="main", model="scripted", turn=1, messages=2),
            ev.CellStarted(run_id=run, rollout_id=rollout, turn=1, code=12345),  # type: ignore[arg-type]
            ev.ModelCallStarted(run_id=run, rollout_id=rollout, role="main", model="scripted", turn=2, messages=4),
        ],
    )
    code, _, err = cli(capsys, "fork", "aaaa", "--at-turn", "2", "--db", str(db))
    assert code == 2 and "events are damaged" in err and len(err.strip().splitlines()) == 1


def test_the_forks_context_is_the_parents_through_a_reminder_a_rejected_call_and_a_cell_read_from_text(
    tmp_path, capsys
):
    db = tmp_path / "t.db"
    replies = [
        Reply(content="let me think first"),  # no code: the reminder follows
        Reply(tool_calls=[("call_python_repl", "{not json")]),  # rejected: the model is told what to fix
        Reply(content="```repl\nx = 5\nprint(x * 2)\n```"),  # a cell read from the text: its output as a user message
        code_call("answer.update(content=str(x), ready=True)"),
    ]

    def varied(body):
        return replies[min(root_turn(body), 3)] if is_root(body) else Reply(content="sub")

    with FakeOpenAI(varied) as server:
        _, parent = run_parent(capsys, server, db, varied)
        assert parent.nudges == 1 and parent.rejected_calls == 1 and parent.recovered_calls == 1
        parent_turn_4 = [r for r in server.requests if is_root(r)][3]["messages"]
        before = len(server.requests)
        code, _, err = cli(capsys, "fork", parent.id, "--at-turn", "4", "--db", str(db))
        assert code == 0, err
        (live,) = server.requests[before:]
    assert live["messages"] == parent_turn_4
    (fork,) = stored_runs(db)[1].rollouts.values()
    assert fork.answer == {"content": "5", "ready": True} and fork.forked_from.diverged == []


def test_operator_cells_and_messages_before_the_turn_are_part_of_the_rebuild(tmp_path, capsys):
    import asyncio

    from rlm_tui import events as ev
    from rlm_tui.engine.clients import OpenAIClient
    from rlm_tui.engine.control import Command
    from rlm_tui.engine.rollout import RolloutSettings
    from rlm_tui.engine.run import Run, RunConfig
    from rlm_tui.env import load_environment
    from rlm_tui.store import EventWriter

    db = tmp_path / "t.db"
    cells = ["print(y)", "y += 1\nprint(y)", "answer.update(content=str(y), ready=True)"]

    def model(body):
        return code_call(cells[min(root_turn(body), 2)]) if is_root(body) else Reply(content="sub")

    with FakeOpenAI(model) as server:
        env = load_environment("verbatim-copy", {"target_length": "100"})
        config = RunConfig(
            env="verbatim-copy",
            env_args={"target_length": "100"},
            num_examples=1,
            base_url=server.base_url,
            rollout=RolloutSettings(model="root", sub_model="sub", timeout=20),
        )
        writer = EventWriter(db)
        writer.start()

        def operator(e):  # at the rollout's first safe point: state the model's cells rely on, and a message
            if isinstance(e, ev.RolloutStarted):
                run.submit(Command("exec", e.rollout_id, "y = 7"))
                run.submit(Command("inject", e.rollout_id, "y is set for you"))

        client = OpenAIClient(base_url=server.base_url, api_key="k", max_retries=0)
        run = Run(config, env, client, [writer.append, operator])

        async def go():
            try:
                return await run.execute()
            finally:
                await client.close()

        (parent,) = asyncio.run(go()).rollouts.values()
        writer.close()
        assert [c.output for c in parent.operator_cells] == [""] and parent.answer["content"] == "8"
        parent_turn_3 = [r for r in server.requests if is_root(r)][2]["messages"]
        before = len(server.requests)
        code, _, err = cli(capsys, "fork", parent.id, "--at-turn", "3", "--db", str(db))
        assert code == 0, err
        (live,) = server.requests[before:]
    assert live["messages"] == parent_turn_3
    assert {"role": "user", "content": "y is set for you"} in live["messages"]
    (fork,) = stored_runs(db)[1].rollouts.values()
    assert [c.code for c in fork.operator_cells] == ["y = 7"]
    assert fork.answer == {"content": "8", "ready": True} and fork.forked_from.diverged == []
