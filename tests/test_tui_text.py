"""Text from models, cells, errors and the database is shown as it is, never read as markup."""

from __future__ import annotations

import dataclasses
import sys

from textual.widgets import DataTable
from textual.widgets._toast import Toast

from pilot import until
from rlm_tui import events as ev
from rlm_tui.tui.app import RlmApp
from rlm_tui.tui.screens.modals import CallScreen
from rlm_tui.tui.screens.rollout import RolloutScreen
from rlm_tui.tui.screens.run import RunScreen
from rlm_tui.tui.screens.runs import RunsScreen
from rlm_tui.tui.widgets.answer import AnswerView
from rlm_tui.tui.widgets.subtree import SubTree
from rlm_tui.tui.widgets.timeline import Timeline
from runs import store_events
from synthetic import run_events

RUN = "markup-run"
MARKUP = " [/INST] [b]x[/b] [online]"
TEXT_FIELDS = {
    "env",
    "mode",
    "model",
    "example_id",
    "user_prompt",
    "text",
    "reasoning",
    "code",
    "output",
    "shown",
    "content",
    "prompt",
    "response",
    "result",
    "name",
}


def with_markup(events: list[ev.Event], suffix: str = MARKUP) -> list[ev.Event]:
    """Every text field of a synthetic run with `suffix` appended, and errors that carry it too."""
    out = []
    for e in events:
        changes = {
            f.name: getattr(e, f.name) + suffix
            for f in dataclasses.fields(e)
            if f.name in TEXT_FIELDS and isinstance(getattr(e, f.name), str)
        }
        if isinstance(e, (ev.RunFinished, ev.RolloutFinished, ev.SubCallFinished)):
            changes["error"] = "boom" + suffix
        if isinstance(getattr(e, "answer", None), dict):
            changes["answer"] = {**e.answer, "content": e.answer["content"] + suffix}
        out.append(dataclasses.replace(e, **changes))
    return out


def shown(widget) -> str:
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


async def test_every_view_shows_markup_like_text_literally(tmp_path):
    db = store_events(tmp_path / "m.db", with_markup(run_events(RUN, rollouts=2, turns=2, batch=2)))
    app = RlmApp(db)
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen._ids)
        await pilot.pause()
        assert "verbatim-copy" + MARKUP in shown(app.screen.query_one(DataTable))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.session.replay is not None)
        await pilot.pause()
        assert "synthetic" + MARKUP in shown(app.screen.query_one("#run-title"))
        assert "boom" + MARKUP in shown(app.screen.query_one("#run-totals"))
        assert "ex-0" + MARKUP in shown(app.screen.query_one(DataTable))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RolloutScreen) and app.screen.query_one(Timeline).total)
        await pilot.press("G")
        await pilot.pause()
        screen = app.screen
        assert "ex-0" + MARKUP in shown(screen.query_one("#ro-title"))
        timeline = shown(screen.query_one(Timeline))
        assert "boom" + MARKUP in timeline and "Turn 2: split and copy." + MARKUP in timeline
        assert MARKUP.strip() in shown(screen.query_one(AnswerView))
        tree = screen.query_one(SubTree)
        tree.root.children[0].expand()
        await until(pilot, lambda: tree.calls)
        await pilot.pause()
        assert "#0 ✗ boom" + MARKUP in shown(tree)  # filled when expanded, though nothing else changed
        app.push_screen(CallScreen(next(iter(tree.calls.values()))))
        await until(pilot, lambda: isinstance(app.screen, CallScreen))
        await pilot.pause()
        assert "boom" + MARKUP in shown(app.screen.query_one("#console"))


async def test_an_engine_error_is_shown_once_and_as_it_is(tmp_path):
    import subprocess

    from rlm_tui.store import open_db

    db, log = tmp_path / "e.db", tmp_path / "engine.log"
    open_db(db).close()
    with open(log, "wb") as out:
        # an engine that fails as a missing package does, in the engine's own words
        engine = subprocess.Popen(
            [
                sys.executable,
                "-c",
                'import sys; sys.exit("rlm-tui: error: loading x needs '
                "the `datasets` package: pip install 'rlm-tui[online]'\")",
            ],
            stderr=out,
        )
    app = RlmApp(db, run_id="no-such-run", follow=True, engine=engine, engine_log=log)
    async with app.run_test(size=(150, 40), notifications=True) as pilot:
        await until(pilot, lambda: app.engine_rc is not None and app.screen.query(Toast))
        await pilot.pause()
        (toast,) = app.screen.query(Toast)
        text = str(toast.render())
        assert "pip install 'rlm-tui[online]'" in text and "rlm-tui: error:" not in text


def screen_text(app) -> str:
    """Every character the screen would draw, from the compositor's strips."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def test_no_view_draws_a_control_character(tmp_path):
    from test_display import FORBIDDEN, SEQUENCES

    db = store_events(tmp_path / "c.db", with_markup(run_events(RUN, rollouts=2, turns=2, batch=2), SEQUENCES))
    app = RlmApp(db)
    seen = []

    def check(where: str) -> None:
        text = screen_text(app)
        assert not [c for c in FORBIDDEN if c in text], (where, text)
        seen.append(text)

    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen._ids)
        await pilot.pause()
        check("runs")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.session.replay is not None)
        await pilot.pause()
        check("run")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RolloutScreen) and app.screen.query_one(Timeline).total)
        await pilot.press("G")
        await pilot.pause()
        check("rollout")
        tree = app.screen.query_one(SubTree)
        tree.root.children[0].expand()
        await until(pilot, lambda: tree.calls)
        await pilot.pause()
        check("sub-LLM tree")
        app.push_screen(CallScreen(next(iter(tree.calls.values()))))
        await until(pilot, lambda: isinstance(app.screen, CallScreen))
        await pilot.pause()
        check("call")
    assert all("\\x1b]52;c;" in text for text in seen)  # shown as visible escapes, not dropped


def test_events_read_for_the_screen_spell_out_every_unsafe_character(tmp_path):
    from rlm_tui.store import read_events
    from rlm_tui.text import printable_event

    unsafe = ["\x1b[31m", "a\rb", "\x08", "\x0c", "\x7f", "\x85", "\u202e", "\u2067", "\x00"]
    events = run_events(RUN, rollouts=1, turns=1, batch=len(unsafe), tools=0)
    events = [
        dataclasses.replace(e, prompt=f"part {unsafe[e.index]} {e.index}") if isinstance(e, ev.SubCallStarted) else e
        for e in events
    ]
    db = store_events(tmp_path / "u.db", events)
    plain = [e for _, e in read_events(db, run_id=RUN)]
    shown = [e for _, e in read_events(db, run_id=RUN, printable=True)]
    assert shown == [printable_event(e) for e in plain]
    prompts = [e.prompt for e in shown if isinstance(e, ev.SubCallStarted)]
    assert len(prompts) == len(unsafe) and all(p.isprintable() for p in prompts)


def test_a_row_cannot_carry_an_unsafe_character_into_the_next_row_s_event(tmp_path):
    """A hostile file splits one payload across two rows: the escape sits in the first row's text only."""
    import sqlite3

    from rlm_tui.store import open_db, read_events

    db = tmp_path / "h.db"
    open_db(db).close()
    rows = [
        ("e1", "cell_started", '{"turn": 0, "code": "x"}, {"content": "\\u001b[2J'),
        ("e2", "answer_updated", '", "ready": false}'),
    ]
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO events (id, run_id, rollout_id, parent_id, kind, ts, data) VALUES (?, ?, 'r', NULL, ?, 0, ?)",
            [(id_, RUN, kind, data) for id_, kind, data in rows],
        )
    (_, answer), *_ = [(s, e) for s, e in read_events(db, run_id=RUN, printable=True) if e.kind == "answer_updated"]
    assert "\x1b" not in answer.content and answer.content.isprintable()
