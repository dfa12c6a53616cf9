"""Scrubbing a rollout's view turn by turn: `[` and `]` step, `:` jumps to turn N, the title says which turn."""

from __future__ import annotations

from pilot import until
from rlm_tui.tui.app import RlmApp
from rlm_tui.tui.screens.modals import TextScreen
from rlm_tui.tui.widgets.timeline import Timeline
from runs import store_events
from synthetic import run_events

RUN = "scrub-run"


async def test_brackets_and_colon_move_the_view_between_turns(tmp_path):
    db = store_events(tmp_path / "s.db", run_events(RUN, rollouts=1, turns=6, batch=2))
    app = RlmApp(db, run_id=RUN, rollout_id=f"{RUN}-r000", follow=False)
    async with app.run_test(size=(140, 30)) as pilot:
        await until(pilot, lambda: app.session.replay is not None)
        await pilot.press("G")  # every recorded event applied
        timeline = app.screen.query_one(Timeline)
        await until(pilot, lambda: timeline.turn_count == 6 and timeline.turn_row(6) is not None)
        rows = [timeline.turn_row(t) for t in range(1, 7)]
        assert rows == sorted(rows) and len(set(rows)) == 6  # each turn starts further down
        await pilot.press("colon")
        await until(pilot, lambda: isinstance(app.screen, TextScreen))
        await pilot.press("1", "enter")  # typed as a user types it: enter goes
        await until(pilot, lambda: "turn 1 of 6" in app.screen.query_one(Timeline).border_title)
        assert timeline.turn_on_screen() == 1 and round(timeline.scroll_offset.y) == rows[0]
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert timeline.turn_on_screen() == 3 and "turn 3 of 6" in timeline.border_title
        assert round(timeline.scroll_offset.y) == min(rows[2], timeline.max_scroll_y)
        await pilot.press("left_square_bracket")
        assert timeline.turn_on_screen() == 2
        for _ in range(6):
            await pilot.press("right_square_bracket")
        assert timeline.turn_on_screen() == 6  # it stops at the last turn
        for _ in range(8):
            await pilot.press("left_square_bracket")
        assert timeline.turn_on_screen() == 1 and round(timeline.scroll_offset.y) == rows[0]
