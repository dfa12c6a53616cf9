"""Approve mode on a live engine: each proposed cell waits for the operator (real sandbox, client and server)."""

from __future__ import annotations

from fake_openai import FakeOpenAI, looping
from live import Live
from rlm_tui import events as ev
from rlm_tui.engine import prompts
from rlm_tui.engine.control import Command, ControlError, queued_commands
from rlm_tui.engine.fork import fork_point, parent_messages
from rlm_tui.store import open_db, send_command


def proposed(turn):
    return lambda e: isinstance(e, ev.CellProposed) and e.turn == turn


def tool_replies(body):
    return [m["content"] for m in body["messages"] if m["role"] == "tool"]


async def test_the_operator_edits_one_cell_skips_another_and_answers_a_third():
    with FakeOpenAI(looping) as server:
        live = await Live(server, max_turns=4, approve=True).start()
        rid = live.rollout_id

        first = await live.until(proposed(1))
        assert first.code == "print('turn 0')"  # the model counts its earlier turns
        assert not any(isinstance(e, ev.CellStarted) for e in live.events)  # it waits
        live.run.submit(Command("approve", rid, "print('edited by hand')"))
        cell = await live.until(lambda e: isinstance(e, ev.CellFinished))
        started = next(e for e in live.events if isinstance(e, ev.CellStarted))
        assert (started.code, started.proposed, started.source) == (
            "print('edited by hand')",
            "print('turn 0')",
            "model",
        )
        assert cell.output == "edited by hand\n"

        await live.until(proposed(2))
        live.run.submit(Command("skip", rid, "it would print again"))
        await live.until(proposed(3))
        assert tool_replies(server.requests[2])[-1] == "[not run] the operator skipped this cell: it would print again"
        live.run.submit(Command("reply", rid, "no need to print: x is 3"))
        await live.until(proposed(4))
        assert tool_replies(server.requests[3])[-1] == prompts.not_run("reply", "no need to print: x is 3")
        live.run.submit(Command("approval", rid, "off"))  # the waiting cell runs as proposed
        state = await live.finish()

    events = live.events
    cells = [e for e in events if isinstance(e, ev.CellStarted)]
    assert [(c.turn, c.code, c.proposed) for c in cells] == [
        (1, "print('edited by hand')", "print('turn 0')"),
        (4, "print('turn 3')", None),
    ]
    decisions = [(e.action, e.text) for e in events if isinstance(e, ev.OperatorAction)]
    assert decisions == [
        ("approve", "print('edited by hand')"),
        ("skip", "it would print again"),
        ("reply", "no need to print: x is 3"),
        ("approval", "off"),
    ]
    r = state.rollouts[rid]
    assert (r.status, r.stop_reason, r.approving, r.waiting) == ("done", "max_turns", False, None)
    assert [(p.turn, p.decision) for t in r.turns for p in t.proposals] == [
        (1, "approve"),
        (2, "skip"),
        (3, "reply"),
        (4, None),  # approval was turned off while it waited
    ]
    # a fork of this rollout rebuilds the very conversation the model was sent, skipped and answered cells included
    for turn in (3, 4):
        point = fork_point(events, rid, turn)
        assert parent_messages(point.history) == server.requests[turn - 1]["messages"]


async def test_a_message_sent_while_a_cell_waits_reaches_the_model_after_the_cells_reply():
    with FakeOpenAI(looping) as server:
        live = await Live(server, max_turns=5, approve=True).start()
        rid = live.rollout_id
        await live.until(proposed(1))
        live.run.submit(Command("inject", rid, "please finish"))
        live.run.submit(Command("approve", rid))  # no code: the proposed cell runs as it is
        await live.until(proposed(2))
        roles = [m["role"] for m in server.requests[1]["messages"]]
        assert roles[-3:] == ["assistant", "tool", "user"]  # the tool call is answered before the message
        assert server.requests[1]["messages"][-1]["content"] == "please finish"
        live.run.submit(Command("approve", rid))
        state = await live.finish()
    r = state.rollouts[rid]
    assert (r.stop_reason, r.answer["content"]) == ("answer_ready", "stopped on request")


async def test_finish_while_a_cell_waits_scores_the_answer_as_it_is():
    with FakeOpenAI(looping) as server:
        live = await Live(server, approve=True).start()
        await live.until(proposed(1))
        live.run.submit(Command("finish", live.rollout_id))
        state = await live.finish()
    r = state.rollouts[live.rollout_id]
    assert (r.status, r.stop_reason) == ("done", "operator_finished")
    assert not any(isinstance(e, ev.CellStarted) for e in live.events)


async def test_approval_turned_on_for_the_whole_run_through_the_store(tmp_path):
    db_path = tmp_path / "c.db"
    db = open_db(db_path)
    with FakeOpenAI(looping, latency=0.01) as server:
        # turns enough that no rollout ends before the polled switch lands
        live = Live(server, n=2, max_turns=1000, db=db_path, commands=lambda run_id: queued_commands(db, run_id))
        await live.start()
        send_command(db, live.run.id, "approval", text="on")
        for rid in live.run.controls:
            await live.until(lambda e, rid=rid: isinstance(e, ev.CellProposed) and e.rollout_id == rid)
        calls = len(server.requests)
        for rid in live.run.controls:
            send_command(db, live.run.id, "inject", rid, "please finish")
        send_command(db, live.run.id, "approval", text="off")
        state = await live.finish()
    assert len(server.requests) == calls + 2  # each waiting cell ran, then one turn read the message and answered
    for r in state.rollouts.values():
        assert (r.approving, r.answer["content"]) == (False, "stopped on request")
        assert sum(len(t.proposals) for t in r.turns) == 1


def test_approval_is_on_or_off():
    try:
        Command("approval", "r", "maybe")
    except ControlError as exc:
        assert "on or off" in str(exc)
    else:
        raise AssertionError("approval accepted 'maybe'")
    assert Command("approval", None, "on").rollout_id is None  # the whole run may be switched


def test_the_run_views_now_column_says_a_cell_waits_for_approval():
    from rlm_tui.state import fold
    from rlm_tui.tui.now import doing

    run, rid = "r" * 16, "a" * 16
    call = ev.ModelCallStarted(run_id=run, rollout_id=rid, role="main", model="m", turn=1, messages=2)
    events = [
        ev.RunStarted(run_id=run, env="verbatim-copy", mode="rlm", model="m", sub_model="m", num_rollouts=1),
        ev.RolloutQueued(run_id=run, rollout_id=rid, index=0, example_id="x"),
        ev.RolloutStarted(run_id=run, rollout_id=rid, system_prompt="s", user_prompt="u"),
        call,
        ev.ModelCallFinished(run_id=run, rollout_id=rid, parent_id=call.id, role="main"),
    ]
    proposed = ev.CellProposed(run_id=run, rollout_id=rid, parent_id=call.id, turn=1, code="print(1)")
    assert doing(fold(events, run).rollouts[rid], 0.0) == "between turns"
    assert doing(fold([*events, proposed], run).rollouts[rid], 0.0) == "cell of turn 1 waits for approval (d)"
    decided = ev.OperatorAction(run_id=run, rollout_id=rid, action="skip", text="no")
    assert fold([*events, proposed, decided], run).rollouts[rid].waiting is None
