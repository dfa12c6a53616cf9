"""SVG snapshots of the mission-control run view, mid-run, at 200x50 and 80x24, with a frozen clock."""

from __future__ import annotations

import dataclasses

import pytest

from rlm_tui.tui.screens.run import RunScreen
from runs import store_events
from synthetic import run_events
from test_tui_snapshots import app_for, settle

RUN = "0a1b2c3d4e5f6071"


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = run_events(RUN, rollouts=6, turns=2, batch=3)
    # six more cut off mid-rollout: the "now" column has something to say
    running = [e for e in run_events(RUN, rollouts=12, turns=3, batch=4, finish=False) if e.rollout_id]
    cut = {f"{RUN}-r{i:03d}": 8 + 3 * i for i in range(6, 12)}
    seen: dict[str, int] = {}
    late = []
    for e in running:
        if e.rollout_id in cut:
            seen[e.rollout_id] = seen.get(e.rollout_id, 0) + 1
            if seen[e.rollout_id] <= cut[e.rollout_id]:
                late.append(e)
    head, body = done[0], [e for e in done[1:] if e.rollout_id]
    head = dataclasses.replace(head, num_rollouts=12)
    return store_events(tmp_path / "snap.db", [head, *body, *late])


def ready_for(app):
    async def ready(pilot):
        await settle(
            pilot,
            lambda: app.session.replay is not None and isinstance(app.screen, RunScreen) and len(app.screen._ids) == 12,
        )

    return ready


@pytest.mark.parametrize("size", [(200, 50), (80, 24)])
def test_mission_run_view(db, snap_compare, size):
    app = app_for(db, run_id=RUN, follow=False)
    ready = ready_for(app)

    async def marked_and_sorted(pilot):
        await ready(pilot)
        await pilot.press("down", "x", "x", "o", "o", "o", "O")  # two marked, highest reward first

    assert snap_compare(app, terminal_size=size, run_before=marked_and_sorted)
