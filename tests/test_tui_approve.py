"""Approving cells and forking from the app, against real engines in other processes."""

from __future__ import annotations

from textual.widgets import Input, TextArea

from fake_openai import FakeOpenAI, looping
from pilot import until
from rlm_tui import events as ev
from rlm_tui.engine import prompts
from rlm_tui.state import fold
from rlm_tui.store import list_runs, open_db, read_events
from rlm_tui.tui.app import RlmApp
from rlm_tui.tui.screens.approve import ApproveScreen
from rlm_tui.tui.screens.modals import TextScreen
from rlm_tui.tui.screens.rollout import RolloutScreen
from rlm_tui.tui.screens.runs import RunsScreen
from rlm_tui.tui.widgets.table import VimTable
from rlm_tui.tui.widgets.timeline import Timeline
from test_tui_live import SIZE, Engine, rollout


def transcript(timeline):
    """Every line the transcript holds, on screen or not."""
    width, console = timeline._width, timeline.app.console
    return "\n".join(
        block.line(y, width, console).text for block in timeline.blocks for y in range(block.height(width, console))
    )


def deciding(app, turn):
    return isinstance(app.screen, ApproveScreen) and app.screen.proposal.turn == turn


async def test_the_operator_edits_a_cell_skips_one_and_replies_to_another_from_the_app(tmp_path):
    with FakeOpenAI(looping) as server:
        engine = Engine(
            tmp_path,
            "--approve",
            "--model",
            "root",
            "--sub-model",
            "sub",
            "--base-url",
            server.base_url,
            "--max-turns",
            "1000",
            env={"OPENAI_API_KEY": "k"},
            delay=None,
        )
        app = RlmApp(engine.db, run_id=engine.run_id, follow=True)
        try:
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: rollout(app) is not None and rollout(app).status == "running")
                r = rollout(app)
                await until(
                    pilot, lambda: deciding(app, 1)
                )  # a one-rollout run opens on its rollout  # the dialog opens by itself on a proposed cell
                assert app.screen.query_one(TextArea).text == "print('turn 0')"
                app.screen.query_one(TextArea).load_text("print('edited in the app')")
                await pilot.press("ctrl+r")
                await until(pilot, lambda: r.turns[0].cells and r.turns[0].cells[0].output is not None)
                assert (r.turns[0].cells[0].code, r.turns[0].cells[0].proposed) == (
                    "print('edited in the app')",
                    "print('turn 0')",
                )
                assert r.turns[0].cells[0].output == "edited in the app\n"

                await until(pilot, lambda: deciding(app, 2))
                app.screen.query_one(Input).value = "no second print"
                await pilot.press("ctrl+s")
                await until(pilot, lambda: deciding(app, 3))
                await pilot.press("escape")  # later: the cell keeps waiting, and d brings it back
                assert isinstance(app.screen, RolloutScreen) and r.waiting is not None
                timeline = app.screen.query_one(Timeline)
                assert "waiting for your decision" in transcript(timeline)
                await pilot.press("d")
                await until(pilot, lambda: deciding(app, 3))
                app.screen.query_one(Input).value = "x is already 3"
                await pilot.press("ctrl+t")
                await until(pilot, lambda: deciding(app, 4))
                await pilot.press("escape", "a")  # stop approving: the waiting cell runs as proposed
                await until(pilot, lambda: not r.approving and len(r.turns) >= 5)
                await pilot.press("f")
                await until(pilot, lambda: r.status == "done")
                shown = " ".join(transcript(app.screen.query_one(Timeline)).split())
                assert "edited by the operator before it ran" in shown
                assert "skipped by the operator: no second print" in shown
                assert "the operator replied: x is already 3" in shown
        finally:
            engine.stop()
    events = engine.events()
    decisions = [(e.action, e.text) for e in events if isinstance(e, ev.OperatorAction)]
    assert decisions[:4] == [
        ("approve", "print('edited in the app')"),
        ("skip", "no second print"),
        ("reply", "x is already 3"),
        ("approval", "off"),
    ]
    told = [m["content"] for m in server.requests[3]["messages"] if m["role"] == "tool"]
    assert told[-2:] == [prompts.not_run("skip", "no second print"), prompts.not_run("reply", "x is already 3")]
    assert fold(events, engine.run_id).rollouts[r.id].stop_reason == "operator_finished"


async def test_fork_from_the_turn_on_screen_opens_the_fork_and_it_finishes(tmp_path):
    engine = Engine(tmp_path, "--model", "scripted", delay="0")
    assert engine.proc.wait(120) == 0
    parent = next(iter(fold(engine.events(), engine.run_id).rollouts.values()))
    assert len(parent.turns) >= 3
    app = RlmApp(engine.db, run_id=engine.run_id, rollout_id=parent.id, follow=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session.replay is not None)
        await pilot.press("G")
        timeline = app.screen.query_one(Timeline)
        await until(pilot, lambda: timeline.turn_row(3) is not None)
        timeline.go_to_turn(3)
        await pilot.press("F")
        await until(pilot, lambda: isinstance(app.screen, TextScreen))
        assert "at turn 3" in app.screen.title_text
        app.screen.query_one(TextArea).load_text("check every chunk")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.session.feed is not None and app.session.feed.run_id != engine.run_id)
        fork_run = app.session.feed.run_id
        # the parent's views gave way to the fork's run, which shows live
        await until(pilot, lambda: app.session.feed.state.status == "done", timeout=300)
        while not isinstance(app.screen, RunsScreen):
            await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and fork_run in app.screen._ids)
        table = app.screen.query_one(VimTable)
        assert str(table.get_row(fork_run)[-1]) == f"⑂ rollout {parent.id[:8]} · turn 3"
        assert str(table.get_row(engine.run_id)[-1]) == ""
    (fork,) = fold([e for _, e in read_events(open_db(engine.db), run_id=fork_run)], fork_run).rollouts.values()
    assert fork.forked_from is not None
    assert (fork.forked_from.parent_rollout_id, fork.forked_from.turn) == (parent.id, 3)
    assert fork.forked_from.message == "check every chunk" and fork.status == "done"
    rebuilt = [(c.code, c.output) for t in fork.turns[:2] for c in t.cells]
    assert rebuilt == [(c.code, c.output) for t in parent.turns[:2] for c in t.cells]
    assert {row["id"] for row in list_runs(open_db(engine.db))} == {engine.run_id, fork_run}
