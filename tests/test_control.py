"""Operator controls on a live engine: real sandbox, real openai client, real local server."""

from __future__ import annotations

from fake_openai import FakeOpenAI, looping
from live import Live, paused
from rlm_tui import events as ev
from rlm_tui.engine.control import Command
from rlm_tui.store import open_db, send_command


async def test_pause_stops_model_calls_and_inspect_runs_in_the_sandbox():
    with FakeOpenAI(looping) as server:
        live = await Live(server).start()
        await live.until(lambda e: isinstance(e, ev.CellFinished))
        live.run.submit(Command("pause", live.rollout_id))
        await live.until(paused)
        calls = len(server.requests)
        live.run.submit(Command("exec", live.rollout_id, "secret = 6 * 7\nprint(secret, answer)"))
        cell = await live.until(lambda e: isinstance(e, ev.CellFinished) and e.source == "operator")
        assert "42 {'content': '', 'ready': False}" in cell.output
        assert len(server.requests) == calls  # paused: the operator's cell ran, the model was not called
        live.run.submit(Command("exec", live.rollout_id, "secret + 1"))
        cell = await live.until(
            lambda e: isinstance(e, ev.CellFinished) and e.source == "operator" and "43" in e.output
        )
        live.run.submit(Command("inject", live.rollout_id, "please finish now"))
        live.run.submit(Command("resume", live.rollout_id))
        state = await live.finish()
    r = state.rollouts[live.rollout_id]
    assert r.answer == {"content": "stopped on request", "ready": True}
    after = server.requests[calls]
    assert after["messages"][-1] == {"role": "user", "content": "please finish now"}
    assert all(
        "secret" not in str(m.get("content")) for m in after["messages"]
    )  # the model never saw the inspect cells
    assert r.repl_calls == len([c for t in r.turns for c in t.cells])  # operator cells are not the model's
    assert [a.action for a in r.operator] == ["pause", "exec", "exec", "inject", "resume"]


async def test_step_runs_one_turn_then_pauses_again():
    with FakeOpenAI(looping) as server:
        live = await Live(server).start()
        live.run.submit(Command("pause", live.rollout_id))
        await live.until(paused)
        before = len(server.requests)
        live.run.submit(Command("step", live.rollout_id))
        await live.until(
            lambda e: (
                isinstance(e, ev.RolloutPaused)
                and e.paused
                and e is not live.events[0]
                and sum(isinstance(x, ev.RolloutPaused) and x.paused for x in live.events) == 2
            )
        )
        assert len(server.requests) == before + 1
        live.run.submit(Command("finish", live.rollout_id))
        state = await live.finish()
    assert state.rollouts[live.rollout_id].stop_reason == "operator_finished"


async def test_edit_answer_reaches_the_sandbox_and_kill_ends_the_rollout():
    with FakeOpenAI(looping) as server:
        live = await Live(server).start()
        live.run.submit(Command("pause", live.rollout_id))
        await live.until(paused)
        live.run.submit(Command("edit_answer", live.rollout_id, "edited by hand"))
        update = await live.until(lambda e: isinstance(e, ev.AnswerUpdated))
        assert (update.content, update.source) == ("edited by hand", "operator")
        live.run.submit(Command("exec", live.rollout_id, "answer['content']"))
        cell = await live.until(lambda e: isinstance(e, ev.CellFinished) and "Out[" in e.output)
        assert "'edited by hand'" in cell.output
        live.run.submit(Command("kill", live.rollout_id))
        state = await live.finish()
    r = state.rollouts[live.rollout_id]
    assert (r.status, r.stop_reason, r.reward) == ("killed", "killed", None)
    assert r.answer["content"] == "edited by hand" and state.status == "killed"


async def test_run_pause_holds_every_rollout_and_commands_arrive_through_the_store(tmp_path):
    db_path = tmp_path / "c.db"
    db = open_db(db_path)
    from rlm_tui.engine.control import queued_commands

    with FakeOpenAI(looping, latency=0.01) as server:
        # max_turns high enough that no rollout can use up its turns before the polled pause lands
        live = await Live(
            server, n=3, db=db_path, commands=lambda run_id: queued_commands(db, run_id), max_turns=1000
        ).start()
        send_command(db, live.run.id, "pause")
        for rid in live.run.controls:
            await live.until(lambda e, rid=rid: paused(e) and e.rollout_id == rid)
        calls = len(server.requests)
        for rid in live.run.controls:
            send_command(db, live.run.id, "inject", rid, "please finish")
        send_command(db, live.run.id, "resume")
        state = await live.finish()
    assert len(server.requests) == calls + 3
    assert all(r.answer["content"] == "stopped on request" for r in state.rollouts.values())
    assert state.paused is False and state.status == "done"


async def test_a_failing_command_source_does_not_stop_the_polling():
    calls = {"n": 0}
    handed_out_on: list[int] = []  # the polls that returned a command

    def flaky(run_id):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("database is locked")
        if handed_out_on:
            return []
        handed_out_on.append(calls["n"])
        return [Command("inject", next(iter(live.run.controls)), "please finish")]

    with FakeOpenAI(looping, latency=0.05) as server:  # the rollout outlasts many polls: it can only end on the command
        live = Live(server, commands=flaky, max_turns=200)
        await live.start()
        state = await live.finish()
    r = next(iter(state.rollouts.values()))
    assert handed_out_on == [2]  # the poll right after the failed one
    assert [a.action for a in r.operator] == ["inject"] and r.answer["content"] == "stopped on request"
