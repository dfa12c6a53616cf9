"""SVG snapshots of the key screens, from a synthetic run in a temporary database, with a frozen clock."""

from __future__ import annotations

import time

import pytest

from pilot import until
from rlm_tui.store import EventWriter, open_db
from rlm_tui.tui.app import RlmApp
from rlm_tui.tui.screens.rollout import RolloutScreen
from rlm_tui.tui.screens.run import RunScreen
from rlm_tui.tui.widgets.timeline import Timeline
from synthetic import T0, run_events

RUN = "0a1b2c3d4e5f6071"
SIZE = (130, 36)


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the runs view shows the database path relative to here
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    path = tmp_path / "snap.db"
    open_db(path).close()
    writer = EventWriter(path)
    writer.start()
    for e in run_events(RUN, rollouts=4, turns=3, batch=3, output_chars=9000):
        writer.append(e)
    writer.close()
    yield path
    monkeypatch.delenv("TZ")
    time.tzset()


def app_for(db, **kw):
    return RlmApp(db, clock=lambda: T0 + 60, **kw)


async def settle(pilot, predicate):
    await until(pilot, predicate)
    await pilot.pause()


def test_runs_screen(db, snap_compare):
    app = app_for(db)

    async def ready(pilot):
        await settle(pilot, lambda: app.screen.query("DataTable") and app.screen.query_one("DataTable").row_count)

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_run_screen(db, snap_compare):
    app = app_for(db, run_id=RUN, follow=False)

    async def ready(pilot):
        await settle(
            pilot,
            lambda: (
                app.session.replay is not None
                and isinstance(app.screen, RunScreen)
                and app.screen.query_one("DataTable").row_count == 4
            ),
        )

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)


def test_rollout_screen(db, snap_compare):
    app = app_for(db, run_id=RUN, rollout_id=f"{RUN}-r001", follow=False)

    async def ready(pilot):
        await settle(
            pilot,
            lambda: (
                app.session.replay is not None
                and isinstance(app.screen, RolloutScreen)
                and app.screen.query_one(Timeline).total > 0
            ),
        )
        await pilot.press("H")  # back one turn: a running batch and a partial answer
        await settle(pilot, lambda: app.session.feed.state.rollouts[f"{RUN}-r001"].status == "running")

    assert snap_compare(app, terminal_size=SIZE, run_before=ready)
