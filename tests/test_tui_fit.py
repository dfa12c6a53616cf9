"""The app tells the truth about a dead engine, fits small terminals, and keeps its keys where they belong."""

from __future__ import annotations

import os
import signal

from textual.widgets import Static
from textual.widgets._footer import FooterKey

from pilot import until
from rlm_tui.tui.app import RlmApp
from rlm_tui.tui.screens.modals import CallScreen
from rlm_tui.tui.screens.rollout import RolloutScreen
from rlm_tui.tui.screens.run import RunScreen
from rlm_tui.tui.widgets.subtree import SubTree
from test_tui_live import Engine, asking, rollout
from test_tui_snapshots import RUN, app_for, db  # noqa: F401  (the synthetic run in a temporary database)


def footer_keys(app) -> dict[str, FooterKey]:
    return {k.key: k for k in app.screen.query(FooterKey)}


async def test_a_killed_engine_shows_a_banner_with_the_resume_command_and_nothing_runs(tmp_path):
    engine = Engine(tmp_path, delay="600")  # the run cannot end on its own
    app = RlmApp(engine.db, run_id=engine.run_id, follow=True)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: rollout(app) is not None and rollout(app).status == "running")
            # a run of one rollout opens on its rollout
            await until(pilot, lambda: isinstance(app.screen, RolloutScreen) and app.screen.ready)
            os.kill(engine.proc.pid, signal.SIGKILL)
            engine.proc.wait(30)
            await until(pilot, lambda: app.session.interrupted)
            await until(pilot, lambda: "interrupted" in str(app.screen.query_one("#ro-title", Static).content))
            await until(pilot, lambda: "rlm-tui resume" in str(app.screen.query_one("#replay-bar", Static).content))
            banner = str(app.screen.query_one("#replay-bar", Static).content)
            assert f"run {engine.run_id} was interrupted" in banner
            assert f"rlm-tui resume {engine.run_id}" in banner
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.ready)
            await until(pilot, lambda: "interrupted" in str(app.screen.query_one("#run-title", Static).content))
            title = str(app.screen.query_one("#run-title", Static).content)
            assert "interrupted" in title and "running" not in title
            assert "rlm-tui resume" in str(app.screen.query_one("#replay-bar", Static).content)
    finally:
        engine.stop()


async def test_ctrl_c_asks_the_same_stop_or_leave_question_as_q(tmp_path):
    engine = Engine(tmp_path, delay="600")
    app = RlmApp(engine.db, run_id=engine.run_id, follow=True, engine=engine.proc, engine_log=engine.log)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: rollout(app) is not None and rollout(app).status == "running")
            await pilot.press("ctrl+c")
            await until(pilot, lambda: asking(app, "quit"))
            assert app.return_code is None and engine.proc.poll() is None
    finally:
        engine.stop()


async def open_replayed_rollout(app, pilot):
    await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.ready and app.session.replay)
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, RolloutScreen) and app.screen.ready)
    await pilot.pause()


async def test_at_80x24_quit_and_help_show_and_the_panes_stack_under_a_full_width_transcript(db):  # noqa: F811
    app = app_for(db, run_id=RUN, follow=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.ready and app.session.replay)
        keys = footer_keys(app)
        for key in ("q", "question_mark"):
            assert keys[key].region.right <= 80, key
        await open_replayed_rollout(app, pilot)
        keys = footer_keys(app)
        assert keys["q"].region.right <= 80 and keys["question_mark"].region.right <= 80
        timeline, side = app.screen.query_one("#timeline"), app.screen.query_one("#ro-side")
        assert timeline.region.width == 80
        assert side.region.y >= timeline.region.bottom  # under the transcript, not beside it
        await pilot.press("w")
        await pilot.pause()
        assert not side.display and timeline.region.width == 80
        assert timeline.region.height > 10


async def test_at_200x50_the_panes_sit_beside_the_transcript_and_w_gives_it_the_whole_width(db):  # noqa: F811
    app = app_for(db, run_id=RUN, follow=False)
    async with app.run_test(size=(200, 50)) as pilot:
        await open_replayed_rollout(app, pilot)
        timeline, side = app.screen.query_one("#timeline"), app.screen.query_one("#ro-side")
        assert side.region.x >= timeline.region.right and timeline.region.width < 200
        await pilot.press("w")
        await pilot.pause()
        assert not side.display and timeline.region.width == 200
        await pilot.press("w")
        await pilot.pause()
        assert side.display and timeline.region.width < 200


async def test_tab_into_the_sub_llm_tree_highlights_a_node_and_a_pop_up_footer_has_no_follow_key(db):  # noqa: F811
    app = app_for(db, run_id=RUN, follow=False)
    async with app.run_test(size=(130, 36)) as pilot:
        await open_replayed_rollout(app, pilot)
        assert "end" in footer_keys(app)  # the transcript's own key, in its own view
        await pilot.press("tab")
        await pilot.pause()
        tree = app.screen.query_one(SubTree)
        assert tree.has_focus and tree.cursor_line == 0
        batch = tree.cursor_node
        await pilot.press("enter")  # the first enter acts on the highlighted batch: it opens
        await until(pilot, lambda: batch.is_expanded and batch.children)
        await pilot.press("down", "enter")
        await until(pilot, lambda: isinstance(app.screen, CallScreen))
        await pilot.pause()
        keys = footer_keys(app)
        assert "end" not in keys and "escape" in keys


async def test_a_screenshot_is_saved_beside_the_database_and_the_toast_says_where(db):  # noqa: F811
    app = app_for(db)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.save_screenshot_here()
        saved = [p for p in db.parent.iterdir() if p.suffix == ".svg"]
        assert len(saved) == 1
        await until(pilot, lambda: any(str(saved[0].resolve()) in n.message for n in app._notifications))


async def test_a_mean_reward_of_zero_is_labelled_0_000_and_the_tables_come_before_the_charts(tmp_path):
    from textual_plotext import PlotextPlot

    from test_report import metrics, write_runs
    from test_tui_report import report_view

    # hand-made: two rollouts scoring 0 and 0 (mean 0.000), two scoring 1 and 0 (mean 0.500)
    path = write_runs(
        tmp_path / "zero.db",
        [
            ("z-llm", "oolong", "llm", "m", {"grid": "z"}, [(0.0, metrics(100, 10, 0, 0, 0, 1.0, 0.5, 0.1), {})] * 2),
            (
                "z-rlm",
                "oolong",
                "rlm",
                "m",
                {"grid": "z"},
                [
                    (1.0, metrics(100, 10, 0, 0, 0, 1.0, 0.5, 0.1), {}),
                    (0.0, metrics(100, 10, 0, 0, 0, 1.0, 0.5, 0.1), {}),
                ],
            ),
        ],
    )
    async with report_view(path) as (app, pilot):
        chart = app.screen.query_one("#chart-reward", PlotextPlot).plt.build()
        assert "oolong 0.000/0.500" in chart
        body = app.screen.query_one("#report-body")
        assert body.children[0].id == "report-tables"


async def test_escape_closes_the_inspect_console_and_the_next_keys_reach_the_rollout_view(tmp_path):
    from textual.widgets import TextArea

    from rlm_tui.tui.screens.modals import InspectScreen
    from test_tui_live import open_rollout, pause

    engine = Engine(tmp_path)
    app = RlmApp(engine.db, run_id=engine.run_id, follow=True)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            r = await open_rollout(app, pilot)
            await pause(app, pilot, r)
            await pilot.press("i")
            await until(pilot, lambda: isinstance(app.screen, InspectScreen) and app.screen.ready)
            console = app.screen
            await pilot.press("x", "=", "1")
            code = console.query_one(TextArea)
            assert code.text == "x=1"
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, RolloutScreen))
            await pilot.press("w", "2")
            await pilot.pause()
            assert code.text == "x=1"  # nothing more went into the closed console
            assert app.screen.has_class("-transcript-wide")  # w reached the rollout view
            assert not any(isinstance(s, InspectScreen) for s in app.screen_stack)
    finally:
        engine.stop()


async def test_after_a_burst_of_resizes_the_transcript_is_wrapped_at_the_last_width(db):  # noqa: F811
    from rlm_tui.tui.widgets.timeline import Timeline

    app = app_for(db, run_id=RUN, follow=False)
    async with app.run_test(size=(200, 50)) as pilot:
        await open_replayed_rollout(app, pilot)
        timeline = app.screen.query_one(Timeline)
        widths: list[int] = []
        relayout = timeline._relayout
        timeline._relayout = lambda keep=0: (widths.append(timeline._width), relayout(keep))  # type: ignore[method-assign]
        for size in [(180, 50), (150, 40), (120, 40), (80, 24)]:
            await pilot.resize_terminal(*size)  # as a dragged terminal does: sizes faster than a wrap
        await until(pilot, lambda: widths and timeline._width == timeline.scrollable_content_region.width)
        assert widths[-1] == timeline.scrollable_content_region.width == 76  # 80 less its border and gutter
        assert timeline.total == timeline._starts[-1] and timeline.virtual_size.width == 76
