"""Cost and budgets in the app: the rollout view's header says what it cost and how full each budget is."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from fake_openai import FakeOpenAI
from pilot import until
from rlm_tui.tui.app import RlmApp
from rlm_tui.tui.screens.rollout import RolloutScreen
from test_budgets import ROOT_CALL, TURN, costly, run
from test_fork import stored_runs


@pytest.fixture
def budgeted(tmp_path, capsys, monkeypatch):
    """A run a dollar budget stopped, with a sub-calls budget beside it (made outside the app's event loop)."""
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    db = tmp_path / "b.db"
    with FakeOpenAI(costly) as server:
        code, _, err = run(capsys, server, db, "--max-usd", "0.01", "--max-sub-calls", "20", n=1)
    assert code == 0, err
    (state,) = stored_runs(db)
    return db, state


async def test_the_rollout_header_shows_its_cost_and_a_bar_for_each_budget(budgeted):
    db, state = budgeted
    (rollout,) = state.rollouts.values()
    app = RlmApp(db, run_id=state.id, rollout_id=rollout.id, follow=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await until(pilot, lambda: app.session.replay is not None)
        await pilot.press("G")  # every event applied
        screen = app.screen
        assert isinstance(screen, RolloutScreen)
        gauge = screen.query_one("#ro-gauge", Static)
        await until(pilot, lambda: "budget" in str(gauge.render()))
        shown = " ".join(str(gauge.render()).split())
        cost = 3 * TURN + ROOT_CALL  # $0.01132: the 4th turn's batch was refused
        assert f"cost ${cost:.4f}" in shown
        assert f"$ ██████████ ${cost:.4f}/$0.0100" in shown  # spent: the bar is full
        assert "sub calls ███░░░░░░░ 6/20" in shown
        await pilot.press("g", "L")  # back to the first turn, its call not answered yet: nothing spent
        await until(pilot, lambda: "cost $0.0000" in " ".join(str(gauge.render()).split()))
        assert "$ ░░░░░░░░░░ $0.0000/$0.0100" in " ".join(str(gauge.render()).split())
