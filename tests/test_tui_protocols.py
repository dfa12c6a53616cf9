"""The app marks what a weak model or a strict server made the rollout do: calls read from text, calls that
could not run, reminders, and the switch to fenced text."""

from __future__ import annotations

import json

import pytest

from fake_openai import Fail, Reply
from pilot import until
from rlm_tui.tui.app import RlmApp
from rlm_tui.tui.screens.rollout import RolloutScreen
from rlm_tui.tui.widgets.timeline import Timeline
from runs import store_events
from test_protocols import run_once

FENCE = '```repl\nanswer["content"] = "done"\nanswer["ready"] = True\n```'


def respond(body):
    if body.get("tools"):
        return Fail(400, "tools param requires --jinja flag")
    turns = sum(1 for m in body["messages"] if m["role"] == "assistant")
    replies = ["I would rather think.", json.dumps({"name": "find_answer", "arguments": {}}), FENCE]
    return Reply(content=replies[min(turns, 2)])


def text_of(timeline: Timeline) -> str:
    """What the transcript shows, wrapped lines joined again."""
    return " ".join(" ".join(timeline.render_line(y).text for y in range(timeline.size.height)).split())


@pytest.fixture
def stored(tmp_path):
    """A real rollout against a server that refuses tools and a model that does everything wrong once."""
    state, events, _ = run_once(respond, max_nudges=3)
    (rollout,) = state.rollouts.values()
    assert rollout.stop_reason == "answer_ready"
    return store_events(tmp_path / "p.db", events), state.id, rollout.id


async def test_the_transcript_says_how_each_turn_reached_the_repl(stored):
    db, run_id, rollout_id = stored
    app = RlmApp(db, run_id=run_id, rollout_id=rollout_id)
    async with app.run_test(size=(160, 80)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RolloutScreen) and app.screen.query_one(Timeline).total)
        await pilot.pause()
        shown = text_of(app.screen.query_one(Timeline))
    assert "tools param requires --jinja flag; the model writes its cells as fenced text from here on" in shown
    assert "no code ran: reminder 1 sent" in shown
    assert "call not run: there is no tool named 'find_answer'" in shown
    assert "1 call read from the model's text (fence), not sent as tool calls" in shown
