"""The run view as mission control: sort, filter, marks and the controls on the marked rollouts, the "now" column."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from pilot import until
from rlm_tui import events as ev
from rlm_tui.env import load_environment
from rlm_tui.state import fold
from rlm_tui.tui.app import RlmApp
from rlm_tui.tui.now import bar, doing
from rlm_tui.tui.rollout_query import matches, parse_filter
from rlm_tui.tui.screens.modals import ChoiceScreen
from rlm_tui.tui.screens.rollout import RolloutScreen
from rlm_tui.tui.screens.run import RunScreen
from rlm_tui.tui.widgets.table import VimTable
from runs import store_events, stored_run
from synthetic import T0, run_events
from test_tui_live import Engine

RUN = "synthetic-run"


def shown(app) -> list[int]:
    """The rollouts' indices in the order the table shows them."""
    rollouts = app.session.feed.state.rollouts
    return [rollouts[rid].index for rid in app.screen._ids]


def cell(app, rid, column):
    return str(app.screen.query_one(VimTable).get_cell(rid, column))


async def opened(pilot, app) -> RunScreen:
    await until(pilot, lambda: app.session.replay is not None and isinstance(app.screen, RunScreen))
    await until(pilot, lambda: len(app.screen._ids) == len(app.session.feed.state.rollouts))
    return app.screen


def test_bars_fill_eighths_hand_computed():
    assert bar(0.0, 4) == "    "
    assert bar(1.0, 4) == "████"
    assert bar(0.5, 4) == "██  "
    assert bar(0.3, 2) == "▋ "  # 0.3 * 16 = 4.8 → 5 eighths: ▋
    assert bar(7.0, 2) == "██"  # a value past the maximum is a full bar, never wider


def test_now_says_what_the_rollout_waits_on():
    events = run_events(RUN, rollouts=1, turns=2, batch=4, finish=False)
    rid = f"{RUN}-r000"
    first_batch = next(i for i, e in enumerate(events) if isinstance(e, ev.SubBatchStarted))
    state = fold(events[: first_batch + 1], RUN).rollouts[rid]
    assert doing(state, T0 + 100) == "llm_batch 0/4"
    second_call = [i for i, e in enumerate(events) if isinstance(e, ev.SubCallFinished)][1]
    assert doing(fold(events[: second_call + 1], RUN).rollouts[rid], T0) == "llm_batch 2/4"
    cell_at = next(i for i, e in enumerate(events) if isinstance(e, ev.CellStarted))
    state = fold(events[: cell_at + 1], RUN).rollouts[rid]
    assert doing(state, events[cell_at].ts + 12.4) == "running cell 1 · 12s"
    call_at = next(i for i, e in enumerate(events) if isinstance(e, ev.ModelCallStarted))
    state = fold(events[: call_at + 1], RUN).rollouts[rid]
    assert doing(state, events[call_at].ts + 3) == "waiting for the model · 3s"
    assert doing(state, T0, paused=True) == "paused"
    done = fold(run_events(RUN, rollouts=1), RUN).rollouts[rid]
    assert doing(done, T0) == "done"


def test_filter_terms_match_status_reason_and_words():
    state = fold(run_events(RUN, rollouts=2), RUN).rollouts[f"{RUN}-r001"]
    state.stop_reason = "max_turns"
    assert matches(state, parse_filter("status:done reason:max"), "done")
    assert not matches(state, parse_filter("status:running"), "done")
    assert matches(state, parse_filter("ex-1"), "done") and matches(state, parse_filter("turns"), "done")
    assert not matches(state, parse_filter("ex-9"), "done")
    assert parse_filter("other:x") == [("", "other:x")]  # an unknown field is a plain word


@pytest.fixture
def stored(tmp_path):
    """Six rollouts of verbatim-copy run by the real engine on the scripted model, stored in t.db."""
    return stored_run(tmp_path, load_environment("verbatim-copy"), n=6)[1]


async def test_a_real_run_sorts_filters_and_marks(tmp_path, stored):
    app = RlmApp(tmp_path / "t.db", run_id=stored.id, follow=False, clock=lambda: T0)
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await opened(pilot, app)
        assert shown(app) == [0, 1, 2, 3, 4, 5]
        rewards = {r.index: r.reward for r in stored.rollouts.values()}
        await pilot.press("o", "o", "o")  # # → status → stop reason → reward
        assert screen.sort_by == "reward"
        assert shown(app) == sorted(range(6), key=lambda i: (rewards[i], i))
        await pilot.press("O")
        assert shown(app) == sorted(range(6), key=lambda i: (-rewards[i], i))
        assert "sort reward ↓" in str(screen.query_one("#run-view").render())
        await pilot.press("o", "o", "o", "o")  # tokens, turns, time, back to #
        assert screen.sort_by == "#" and shown(app) == [5, 4, 3, 2, 1, 0]
        await pilot.press("O", "slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"status:done  zz", "enter")  # the space is the filter's, not the run's pause
        assert screen.filter_text == "status:done zz" and screen._ids == []
        assert not screen.query_one(Input).display and isinstance(app.focused, VimTable)
        example = next(r.example_id for r in stored.rollouts.values() if r.index == 3)
        await pilot.press("slash", *("backspace",) * 2, *example, "enter")
        assert [stored.rollouts[i].example_id for i in screen._ids] == [
            r.example_id for r in sorted(stored.rollouts.values(), key=lambda r: r.index) if example in r.example_id
        ]
        assert f"{len(screen._ids)}/6 shown" in str(screen.query_one("#run-view").render())
        await pilot.press("escape")  # clears the filter first
        assert screen.filter_text == "" and shown(app) == [0, 1, 2, 3, 4, 5] and isinstance(app.screen, RunScreen)
        assert screen.target().index == 3  # the rollout the filter showed stays highlighted
        await pilot.press("down", "x", "x")  # marks #4 and #5; the cursor moves on after each
        assert {stored.rollouts[i].index for i in screen.marked} == {4, 5}
        assert cell(app, screen._ids[4], "✓") == "●" and cell(app, screen._ids[3], "✓") == ""
        await pilot.press("O")  # a new order keeps the highlighted rollout highlighted
        assert screen.target().index == 5 and screen.query_one(VimTable).cursor_row == 0
        await pilot.press("X")
        assert len(screen.marked) == 6
        await pilot.press("X")
        assert screen.marked == set()


async def test_512_stored_rollouts_open_sort_and_filter(tmp_path):
    db = store_events(tmp_path / "big.db", run_events(RUN, rollouts=512, turns=1, batch=1))
    app = RlmApp(db, run_id=RUN, follow=False, clock=lambda: T0)
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await opened(pilot, app)
        assert shown(app)[:3] == [0, 1, 2] and len(shown(app)) == 512
        await pilot.press("o", "o", "o", "O")  # reward, highest first: index % 3 == 0 scored 0.5
        assert shown(app)[:2] == [1, 2] and shown(app)[-1] == 510
        await pilot.press("slash", *"ex-51", "enter")
        assert sorted(shown(app)) == [51, *range(510, 512)]
        assert "3/512 shown" in str(screen.query_one("#run-view").render())


async def test_marked_rollouts_pause_step_and_kill_together(tmp_path):
    engine = Engine(tmp_path, "-n", "3", "--concurrency", "3")
    app = RlmApp(engine.db, run_id=engine.run_id, follow=True)
    try:
        async with app.run_test(size=(200, 50)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.ready)
            screen = app.screen
            rollouts = app.session.feed.state.rollouts
            await until(pilot, lambda: len(screen._ids) == 3 and all(r.status == "running" for r in rollouts.values()))
            await pilot.press("x", "x")  # #0 and #1; #2 runs on
            first, second = (rollouts[i] for i in screen._ids[:2])
            await pilot.press("p")
            await until(pilot, lambda: first.paused and second.paused)
            await until(pilot, lambda: cell(app, first.id, "now") == "paused")
            third = rollouts[screen._ids[2]]
            assert not third.paused
            turns = len(first.turns), len(second.turns)
            await pilot.press("s")
            await until(pilot, lambda: (len(first.turns), len(second.turns)) == (turns[0] + 1, turns[1] + 1))
            await until(pilot, lambda: first.paused and second.paused)
            await pilot.press("K")
            await until(pilot, lambda: isinstance(app.screen, ChoiceScreen))
            await pilot.press("y")
            await until(pilot, lambda: first.status == "killed" and second.status == "killed")
            assert third.status != "killed"
    finally:
        engine.stop()


async def test_a_run_of_one_rollout_opens_on_it_and_escape_shows_the_run(tmp_path):
    db = store_events(tmp_path / "one.db", run_events(RUN, rollouts=1))
    app = RlmApp(db, run_id=RUN, follow=False, clock=lambda: T0)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RolloutScreen) and app.screen.ready)
        assert app.screen.rollout_id == f"{RUN}-r000"
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen._ids == [f"{RUN}-r000"])
        await pilot.press("o")  # the run view stays: it opened on the rollout once
        assert isinstance(app.screen, RunScreen)
