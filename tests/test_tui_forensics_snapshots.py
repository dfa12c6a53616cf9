"""SVG snapshots of the answer's versions and the sub-LLM call window, at the smallest and a large terminal."""

from __future__ import annotations

import pytest

from pilot import until
from rlm_tui import events as ev
from rlm_tui.store import EventWriter, open_db
from rlm_tui.tui.app import RlmApp
from rlm_tui.tui.screens.answers import AnswerHistoryScreen
from rlm_tui.tui.screens.modals import CallScreen
from rlm_tui.tui.widgets.subtree import SubTree
from rlm_tui.tui.widgets.timeline import Timeline
from synthetic import T0, run_events

RUN = "0a1b2c3d4e5f6071"
CUT = "and this whole clause of fifty-two characters goes, "
SIZES = [(80, 24), (200, 50)]


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "snap.db"
    open_db(path).close()
    writer = EventWriter(path)
    writer.start()
    versions = [("The answer is 42, " + CUT + "really.", "model"), ("The answer is 42, really.", "operator")]
    versions.append(("The answer is 42, really. Sure.", "model"))
    k = 0
    for e in run_events(RUN, rollouts=1, turns=3, batch=2, tools=1):
        if isinstance(e, ev.AnswerUpdated):
            e = ev.AnswerUpdated(
                run_id=e.run_id,
                rollout_id=e.rollout_id,
                parent_id=e.parent_id,
                ts=e.ts,
                content=versions[k][0],
                ready=k == 2,
                source=versions[k][1],
            )
            k += 1
            rollout = e.rollout_id
        if isinstance(e, ev.ToolCalled):
            e = ev.ToolCalled(
                run_id=e.run_id,
                rollout_id=e.rollout_id,
                parent_id=e.parent_id,
                ts=e.ts,
                name="search",
                arguments={"query": "where the " + "long " * 20 + "road ends"},
                result="page text " + "lorem ipsum " * 20 + "THE END",
                elapsed_s=0.01,
            )
        writer.append(e)
    writer.close()
    return path, rollout


def _app(db):
    path, rollout = db
    return RlmApp(path, run_id=RUN, rollout_id=rollout, follow=False, clock=lambda: T0 + 60)


@pytest.mark.parametrize("size", SIZES)
def test_answer_versions(db, snap_compare, size):
    app = _app(db)

    async def ready(pilot):
        await until(pilot, lambda: app.screen.query(Timeline) and app.screen.query_one(Timeline).total > 0)
        await pilot.press("G", "v", "left")  # the operator's edit, with its 52-character deletion
        await until(pilot, lambda: isinstance(app.screen, AnswerHistoryScreen))
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES)
def test_call_window(db, snap_compare, size):
    app = _app(db)

    async def ready(pilot):
        await until(pilot, lambda: app.screen.query(Timeline) and app.screen.query_one(Timeline).total > 0)
        await pilot.press("G")
        tree = app.screen.query_one(SubTree)
        await until(pilot, lambda: tree.calls)
        app.push_screen(CallScreen(next(iter(tree.calls.values()))))
        await until(pilot, lambda: isinstance(app.screen, CallScreen))
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=ready)
