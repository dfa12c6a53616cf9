"""Replay and tail sources, and the replay keys, against runs stored in a temporary database."""

from __future__ import annotations

import threading

import pytest

from pilot import until
from rlm_tui import events as ev
from rlm_tui.store import EventWriter, open_db
from rlm_tui.tui.app import RlmApp
from rlm_tui.tui.screens.rollout import RolloutScreen
from rlm_tui.tui.screens.run import RunScreen
from rlm_tui.tui.sources import Feed, Replay, TailSource
from rlm_tui.tui.widgets.subtree import SubTree
from rlm_tui.tui.widgets.timeline import Timeline
from runs import store_events
from synthetic import run_events

RUN = "synthetic-run"


@pytest.fixture
def db(tmp_path):
    return store_events(tmp_path / "r.db", run_events(RUN, rollouts=3, turns=3, batch=4))


def test_replay_seeks_forward_by_applying_and_back_by_refolding():
    events = run_events(RUN, rollouts=2, turns=2, batch=2)
    feed = Feed(RUN)
    replay = Replay(events, feed)
    replay.seek(len(events))
    assert feed.state.status == "done" and feed.generation == 0
    replay.seek(3)
    assert feed.count == 3 and feed.generation == 1
    replay.step_turn(True)
    assert isinstance(events[replay.position - 1], ev.ModelCallStarted)
    first = replay.position
    replay.step_turn(True)
    assert replay.position > first and isinstance(events[replay.position - 1], ev.ModelCallStarted)
    replay.step_turn(False)
    assert replay.position == first


def test_replay_pace_follows_timestamps_and_caps_gaps():
    events = run_events(RUN, rollouts=1, turns=1, batch=0)
    late = ev.RunFinished(run_id=RUN, ts=events[-1].ts + 3600, status="done")
    events.append(late)
    feed = Feed(RUN)
    replay = Replay(events, feed)
    replay.toggle()
    replay.tick(0.001)
    assert 0 < replay.position < len(events)  # only the events due by then
    replay.faster(3)
    for _ in range(10):
        replay.tick(0.1)
    assert replay.at_end and not replay.playing  # the hour-long gap took at most a second of recorded time


def test_tail_delivers_each_poll_as_one_batch(tmp_path):
    path = tmp_path / "t.db"
    events = run_events(RUN, rollouts=2, turns=2, batch=50, finish=False)
    open_db(path).close()
    writer = EventWriter(path)
    writer.start()
    for e in events[:10]:
        writer.append(e)
    writer.flush() if hasattr(writer, "flush") else None
    got: list[list[ev.Event]] = []
    ended = threading.Event()

    def deliver(source, batch, over):
        got.append(batch)
        if over:
            ended.set()

    tail = TailSource(path, RUN, deliver, poll=0.02).start()
    for e in events[10:]:
        writer.append(e)
    writer.append(ev.RunFinished(run_id=RUN, status="done"))
    writer.close()
    assert ended.wait(20)
    tail.thread.join(5)
    flat = [e for batch in got for e in batch]
    assert [e.id for e in flat] == [e.id for e in events] + [flat[-1].id]
    assert len(got) < len(flat) / 10  # batches, not one message per event


async def test_replay_keys_move_the_position(db):
    now = [0.0]
    app = RlmApp(db, run_id=RUN, follow=False, clock=lambda: now[0])
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: app.session.replay is not None)
        replay = app.session.replay
        total = len(replay.events)
        assert replay.position == total and isinstance(app.screen, RunScreen)
        await pilot.press("g")
        assert replay.position == 0 and app.session.feed.count == 0
        await pilot.press("l", "l", "l")
        assert replay.position == 3
        await pilot.press("h")
        assert replay.position == 2
        await pilot.press("L")
        assert isinstance(replay.events[replay.position - 1], ev.ModelCallStarted)
        await pilot.press("plus", "plus")
        assert replay.speed == 4.0
        await pilot.press("minus")
        assert replay.speed == 2.0
        await pilot.press("minus", "minus")  # half speed: still playing when the test stops it below
        await pilot.press("space")
        assert replay.playing
        now[0] += 1.0  # one second of play at half speed: the next frame plays half a recorded second
        await until(pilot, lambda: replay.position > 40)
        await pilot.press("space")
        assert not replay.playing
        await pilot.press("G")
        assert replay.position == total and app.session.feed.state.status == "done"
        assert "event " + f"{total:,}/{total:,}" in str(app.screen.query_one("#replay-bar").render())


async def test_replay_of_one_rollout_opens_its_view_and_steps_its_turns(db):
    rollout = f"{RUN}-r001"
    app = RlmApp(db, run_id=RUN, rollout_id=rollout, follow=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: app.session.replay is not None)
        assert isinstance(app.screen, RolloutScreen) and app.session.scope == rollout
        assert {e.rollout_id for e in app.session.replay.events} == {None, rollout}
        timeline = app.screen.query_one(Timeline)
        await until(pilot, lambda: timeline.total > 0)
        assert "■ done" in "".join(s.text for s in (timeline.render_line(y) for y in range(timeline.size.height)))
        await pilot.press("g", "L", "L")
        r = app.session.feed.state.rollouts[rollout]
        assert len(r.turns) == 2 and r.turns[-1].outcome is None
        await pilot.press("G")
        tree = app.screen.query_one(SubTree)
        await until(pilot, lambda: len(tree.root.children) == 3)
        assert [node.is_expanded for node in tree.root.children] == [
            False,
            False,
            True,
        ]  # a later batch folds the earlier
        await pilot.press("g", "minus", "minus")  # from the start, slowly: playing cannot reach the end meanwhile
        tree.focus()
        await pilot.press("space")  # the view's key, though the focused tree has a space of its own
        assert app.session.replay.playing
        await pilot.press("space")
        await pilot.press("escape")
        assert isinstance(app.screen, RunScreen)
        await until(pilot, lambda: app.session.scope is None and app.session.replay is not None)
        assert len(app.session.feed.state.rollouts) == 3  # back on the run view, the whole run is loaded


async def test_every_key_of_a_view_is_in_the_palette_as_group_action(db):
    app = RlmApp(db, run_id=RUN, follow=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: app.session.replay is not None)
        names = {c.title for c in app.get_system_commands(app.screen)}
        assert {"replay: play", "replay: faster", "replay: start", "view: back", "app: quit", "app: help"} <= names
        assert not any(name.startswith("rollout:") for name in names)  # a replay takes no commands
        await pilot.press("question_mark")
        assert "Play the recorded events at their pace" in str(app.screen.query_one("#help-text").render())
        await pilot.press("escape")
        assert isinstance(app.screen, RunScreen)


async def test_a_database_the_runs_view_cannot_read_is_one_line_in_the_view(db, monkeypatch):
    import sqlite3

    from rlm_tui.tui.screens import runs

    def fail(*_):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(runs, "list_runs", fail)
    app = RlmApp(db)
    async with app.run_test(size=(140, 40)) as pilot:
        empty = app.screen.query_one("#runs-empty")
        await until(pilot, lambda: "locked" in str(empty.render()))
        assert str(empty.render()) == "cannot read the runs: OperationalError: database is locked"
