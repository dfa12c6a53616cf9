"""The run and rollout views at 80x24 (panes stacked, quit and help first in the footer) and at 200x50."""

from __future__ import annotations

import pytest

from rlm_tui.tui.screens.rollout import RolloutScreen
from rlm_tui.tui.screens.run import RunScreen
from rlm_tui.tui.widgets.timeline import Timeline
from test_tui_snapshots import RUN, app_for, db, settle  # noqa: F401  (the synthetic run in a temporary database)

SIZES = [(80, 24), (200, 50)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_run_view_fits(db, snap_compare, size):  # noqa: F811
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

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_rollout_view_fits(db, snap_compare, size):  # noqa: F811
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

    assert snap_compare(app, terminal_size=size, run_before=ready)
