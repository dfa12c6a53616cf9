"""Sub-LLM forensics: live turn and token counts, full tool calls in the call window, batches that stay open."""

from __future__ import annotations

from pilot import until
from rlm_tui import events as ev
from rlm_tui.env import load_environment
from rlm_tui.state import RolloutState
from rlm_tui.store import open_db, read_events
from runs import store_events, stored_run
from synthetic import run_events

RUN = "forensics-run"


def test_a_running_sub_llm_counts_its_turns_and_tokens_live_and_ends_at_its_totals():
    common = {"run_id": RUN, "rollout_id": "r"}
    s = RolloutState(id="r")
    batch = ev.SubBatchStarted(**common, batch=0, size=1)
    call = ev.SubCallStarted(**common, parent_id=batch.id, batch=0, index=0, prompt="p")
    for e in (batch, call):
        s.apply(e)
    s.apply(ev.ModelCallFinished(**common, parent_id=call.id, role="sub", prompt_tokens=100, completion_tokens=7))
    s.apply(ev.ToolCalled(**common, parent_id=call.id, name="search", arguments={"q": "x"}, result="hit"))
    s.apply(ev.ModelCallFinished(**common, parent_id=call.id, role="sub", prompt_tokens=150, completion_tokens=9))
    live = s.batches[0].calls[0]
    assert (live.turns, live.prompt_tokens, live.completion_tokens) == (2, 250, 16)  # 100+150, 7+9 by hand
    assert s.main_prompt_tokens == 0 and s.turns == []  # a sub-LLM's turn is not the root's
    done = ev.SubCallFinished(
        **common, parent_id=call.id, batch=0, index=0, response="a", turns=3, prompt_tokens=400, completion_tokens=20
    )
    s.apply(done)
    s.apply(ev.ModelCallFinished(**common, parent_id=call.id, role="sub", prompt_tokens=5, completion_tokens=5))
    assert (live.turns, live.prompt_tokens, live.completion_tokens) == (
        3,
        400,
        20,
    )  # the totals win, late rows do not add
    assert (s.sub_turns, s.sub_prompt_tokens) == (3, 400)


def test_the_engine_logs_each_sub_llm_turn_and_the_turns_add_up_to_the_call_s_totals(tmp_path):
    stored_run(tmp_path, load_environment("deepdive", {"source": "offline"}), n=1, timeout=20)
    events = [e for _, e in read_events(open_db(tmp_path / "t.db"))]
    finished = [e for e in events if isinstance(e, ev.SubCallFinished)]
    assert finished
    for f in finished:
        turns = [e for e in events if isinstance(e, ev.ModelCallFinished) and e.parent_id == f.parent_id]
        assert all(t.role == "sub" for t in turns)
        assert len(turns) == f.turns >= 2  # search and open, then the answer
        assert sum(t.prompt_tokens for t in turns) == f.prompt_tokens
        assert sum(t.completion_tokens for t in turns) == f.completion_tokens


def _shown(widget) -> str:
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


async def test_the_call_window_shows_a_tool_call_s_arguments_and_result_whole(tmp_path):
    from rlm_tui.tui.app import RlmApp
    from rlm_tui.tui.screens.modals import CallScreen, Console
    from rlm_tui.tui.widgets.subtree import SubTree

    long_query = "where did the " + "very " * 30 + "long road end"
    long_result = "page text " + "x" * 150 + " THE END"
    events = []
    for e in run_events(RUN, rollouts=1, turns=1, batch=1, tools=1):
        if isinstance(e, ev.ToolCalled):
            e = ev.ToolCalled(
                run_id=e.run_id,
                rollout_id=e.rollout_id,
                parent_id=e.parent_id,
                ts=e.ts,
                name="search",
                arguments={"query": long_query},
                result=long_result,
            )
        events.append(e)
    rollout = next(e.rollout_id for e in events if isinstance(e, ev.SubCallStarted))
    app = RlmApp(store_events(tmp_path / "c.db", events), run_id=RUN, rollout_id=rollout)
    async with app.run_test(size=(80, 40)) as pilot:
        await until(pilot, lambda: app.screen.query(SubTree) and app.screen.query_one(SubTree).root.children)
        tree = app.screen.query_one(SubTree)
        assert tree.root.children[-1].is_expanded  # the last batch stays open though it finished
        tree.root.children[0].expand()
        await until(pilot, lambda: tree.calls)
        app.push_screen(CallScreen(next(iter(tree.calls.values()))))
        await until(pilot, lambda: isinstance(app.screen, CallScreen))
        await pilot.pause()
        text = "".join(_shown(app.screen.query_one(Console)).split())  # rows folded at 80 columns, joined
        assert "".join(f"query = {long_query!r}".split()) in text
        assert "".join(long_result.split()) in text


async def test_y_copies_the_focused_turn_call_and_answer_by_osc_52_and_to_the_named_file(tmp_path, monkeypatch):
    from rlm_tui.tui.app import RlmApp
    from rlm_tui.tui.screens.modals import CallScreen
    from rlm_tui.tui.widgets.answer import AnswerView
    from rlm_tui.tui.widgets.subtree import SubTree
    from rlm_tui.tui.widgets.timeline import Timeline

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    copied = tmp_path / "state" / "rlm-tui" / "copied.txt"
    events = run_events(RUN, rollouts=1, turns=2, batch=2, tools=1)
    rollout = next(e.rollout_id for e in events if isinstance(e, ev.SubCallStarted))
    code = next(e.code for e in events if isinstance(e, ev.CellStarted))
    app = RlmApp(store_events(tmp_path / "y.db", events), run_id=RUN, rollout_id=rollout)
    clipboard: list[str] = []
    osc_52 = app.copy_to_clipboard
    monkeypatch.setattr(app, "copy_to_clipboard", lambda text: (clipboard.append(text), osc_52(text)))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.screen.query(SubTree) and app.screen.query_one(SubTree).root.children)
        r = app.session.rollout(rollout)
        timeline = app.screen.query_one(Timeline)
        await until(pilot, lambda: timeline.total > 0)
        timeline.go_to_turn(1)
        await pilot.press("y")
        assert clipboard[-1] == copied.read_text() and clipboard[-1].startswith("# turn 1\n")
        assert code in clipboard[-1] and app.clipboard == clipboard[-1]  # Textual's own OSC 52 copy ran
        app.screen.query_one(AnswerView).focus()
        await pilot.press("y")
        assert clipboard[-1] == copied.read_text() == r.answer["content"]
        tree = app.screen.query_one(SubTree)
        tree.focus()
        await until(pilot, lambda: tree.calls)
        call = r.batches[-1].calls[0]
        tree.move_cursor(next(n for n in tree.root.children[-1].children if n.data == call.id))
        await pilot.press("y")
        assert clipboard[-1] == copied.read_text()
        assert clipboard[-1].startswith(f"# sub-LLM call #0 of batch #{call.batch}") and call.prompt in clipboard[-1]
        assert call.tools[0].result in clipboard[-1] and (call.response or "") in clipboard[-1]
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, CallScreen))
        clipboard.clear()
        await pilot.press("y")
        assert clipboard == [copied.read_text()] and call.prompt in clipboard[0]


async def test_slash_finds_model_text_highlights_it_and_n_and_shift_n_step_through_the_matches(tmp_path):
    from textual.widgets import Input

    from rlm_tui.tui.app import RlmApp
    from rlm_tui.tui.screens.modals import TextScreen
    from rlm_tui.tui.widgets.lines import FOUND
    from rlm_tui.tui.widgets.timeline import Timeline

    events = run_events(RUN, rollouts=1, turns=3, batch=1, tools=0)
    rollout = next(e.rollout_id for e in events if isinstance(e, ev.SubCallStarted))
    app = RlmApp(store_events(tmp_path / "s.db", events), run_id=RUN, rollout_id=rollout)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.screen.query(Timeline) and app.screen.query_one(Timeline).total > 0)
        timeline = app.screen.query_one(Timeline)
        timeline.go_to_turn(1)
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, TextScreen))
        app.screen.query_one(Input).value = "SPLIT AND COPY"  # any case
        await pilot.press("enter")
        await until(pilot, lambda: timeline.found is not None)

        def shown_match() -> tuple[int, str]:
            row = timeline.found[0]
            top = round(timeline.scroll_offset.y)
            assert top <= row < top + timeline.size.height  # scrolled to
            strip = timeline.render_line(row - top)
            lit = "".join(seg.text for seg in strip if seg.style and seg.style.bgcolor == FOUND.bgcolor)
            return row, lit

        rows = []
        for _ in range(3):  # one model text a turn: "Turn k: split and copy."
            row, lit = shown_match()
            assert lit == "split and copy"
            assert (
                timeline.render_line(row - round(timeline.scroll_offset.y))
                .text.strip()
                .endswith(f"Turn {len(rows) + 1}: split and copy.")
            )
            rows.append(row)
            await pilot.press("n")
        assert rows == sorted(rows) and len(set(rows)) == 3
        assert shown_match()[0] == rows[0]  # wrapped around
        await pilot.press("N")
        assert shown_match()[0] == rows[2]
        await pilot.press("N")
        assert shown_match()[0] == rows[1]


CUT = "and this whole clause of fifty-two characters goes, "  # 52 characters, counted by hand


def _answer_events(tmp_path):
    assert len(CUT) == 52
    versions = [("The answer is 42, " + CUT + "really.", "model"), ("The answer is 42, really.", "operator")]
    versions.append(("The answer is 42, really. Sure.", "model"))
    events, k = [], 0
    for e in run_events(RUN, rollouts=1, turns=3, batch=1, tools=0):
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
        events.append(e)
    assert k == 3
    rollout = next(e.rollout_id for e in events if isinstance(e, ev.SubCallStarted))
    return store_events(tmp_path / "a.db", events), rollout


def test_an_answer_version_marks_a_52_character_deletion_and_names_the_operator():
    from rlm_tui.tui.screens.answers import DELETED, INSERTED, version_text

    s = RolloutState(id="r")
    common = {"run_id": RUN, "rollout_id": "r"}
    s.apply(ev.ModelCallStarted(**common, role="main", model="m", turn=1, messages=1))
    s.apply(ev.AnswerUpdated(**common, content="The answer is 42, " + CUT + "really.", ready=False))
    s.apply(ev.AnswerUpdated(**common, content="The answer is 42, really.", ready=False, source="operator"))
    head, body = version_text(s, 1)
    assert [body.plain[sp.start : sp.end] for sp in body.spans if sp.style == DELETED] == [CUT]
    assert not [sp for sp in body.spans if sp.style == INSERTED]
    assert "edited by the operator (e) after turn 1" in head.plain and "+0 −52" in head.plain
    head, body = version_text(s, 0)
    assert "written in turn 1" in head.plain and body.plain == "The answer is 42, " + CUT + "really."


async def test_v_opens_the_answer_versions_and_the_arrows_step_through_them(tmp_path):
    from rlm_tui.tui.app import RlmApp
    from rlm_tui.tui.screens.answers import AnswerHistoryScreen
    from rlm_tui.tui.widgets.lines import LineView
    from rlm_tui.tui.widgets.timeline import Timeline

    db, rollout = _answer_events(tmp_path)
    app = RlmApp(db, run_id=RUN, rollout_id=rollout)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.screen.query(Timeline) and app.screen.query_one(Timeline).total > 0)
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, AnswerHistoryScreen))
        await pilot.pause()
        view = app.screen.query_one(LineView)
        assert _shown(view).startswith("version 3 of 3 · written in turn 3") and "+6 −0" in _shown(view)
        await pilot.press("left")
        assert "version 2 of 3 · edited by the operator (e) after turn 2" in _shown(view)
        assert "+0 −52" in _shown(view) and CUT.strip() in _shown(view)  # the deleted words are shown, marked
        await pilot.press("left", "left")
        assert _shown(view).startswith("version 1 of 3 · written in turn 1")
        await pilot.press("right_square_bracket")
        assert _shown(view).startswith("version 2 of 3")


async def test_slash_finds_text_inside_sub_llm_calls_and_puts_the_tree_cursor_on_each_call(tmp_path):
    from textual.widgets import Input

    from rlm_tui.tui.app import RlmApp
    from rlm_tui.tui.screens.modals import TextScreen
    from rlm_tui.tui.widgets.subtree import SubTree
    from rlm_tui.tui.widgets.timeline import Timeline

    events = run_events(RUN, rollouts=1, turns=3, batch=2, tools=0)
    rollout = next(e.rollout_id for e in events if isinstance(e, ev.SubCallStarted))
    wanted = [e.id for e in events if isinstance(e, ev.SubCallStarted) and e.prompt == "copy part 1"]
    assert len(wanted) == 3  # one a batch, one batch a turn
    app = RlmApp(store_events(tmp_path / "s.db", events), run_id=RUN, rollout_id=rollout)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.screen.query(Timeline) and app.screen.query_one(Timeline).total > 0)
        timeline, tree = app.screen.query_one(Timeline), app.screen.query_one(SubTree)
        assert timeline.find("copy part 1") == []  # only the sub-LLM calls hold it
        timeline.go_to_turn(1)
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, TextScreen))
        app.screen.query_one(Input).value = "Copy Part 1"
        await pilot.press("enter")
        for turn, call_id in enumerate(wanted, start=1):
            await until(pilot, lambda c=call_id: tree.cursor_node is not None and tree.cursor_node.data == c)
            assert app.focused is tree and timeline.turn_on_screen() == turn
            assert f"match {turn} of 3 · in sub-LLM call #1 of batch #{turn - 1}" in str(timeline.border_subtitle)
            await pilot.press("n")
        await until(pilot, lambda: tree.cursor_node is not None and tree.cursor_node.data == wanted[0])  # wrapped
        await pilot.press("N")
        await until(pilot, lambda: tree.cursor_node is not None and tree.cursor_node.data == wanted[2])


def test_a_bar_spans_the_call_scaled_to_the_batch():
    from rlm_tui.state import SubCall
    from rlm_tui.tui.screens.batch import LABEL, TAIL, Span, row

    call = SubCall(id="c", batch=0, index=7, prompt="p", response="r")
    text = row(Span(call, start=1.0, end=3.0, running=False), total=4.0, width=LABEL + TAIL + 2 + 40, slow=True)
    bar = text.plain[LABEL + 1 : LABEL + 1 + 40]  # after "#7", padding and "▕"
    assert bar == " " * 10 + "█" * 20 + " " * 10  # from 1/4 to 3/4 of 40 cells
    assert text.plain.startswith("#7 ") and text.plain.endswith("2.00 s ◀ straggler")


async def test_t_shows_the_batch_against_time_with_its_straggler(tmp_path):
    import dataclasses

    from rlm_tui.tui.app import RlmApp
    from rlm_tui.tui.screens.batch import BatchScreen
    from rlm_tui.tui.widgets.lines import LineView

    events = list(run_events(RUN, rollouts=1, turns=1, batch=4, tools=0))  # each call takes one 0.01 s tick
    started = next(e for e in events if isinstance(e, ev.SubCallStarted) and e.index == 2)
    events = [
        dataclasses.replace(e, ts=started.ts + 0.5) if isinstance(e, ev.SubCallFinished) and e.index == 2 else e
        for e in events
    ]  # call #2 took 0.5 s: fifty times the others
    app = RlmApp(store_events(tmp_path / "b.db", events), run_id=RUN, rollout_id=f"{RUN}-r000", follow=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app.session.replay is not None)
        await pilot.press("G")
        await until(pilot, lambda: (r := app.session.rollout(f"{RUN}-r000")) is not None and r.status == "done")
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, BatchScreen))
        view = app.screen.query_one(LineView)

        def lines() -> list[str]:
            return ["".join(seg.text for seg in view.render_line(y)).strip() for y in range(view.size.height)]

        await until(pilot, lambda: sum(line.startswith("#") for line in lines()) == 4)
        head = " ".join(lines()[:2])  # the summary may wrap
        rows = [line for line in lines() if line.startswith("#")]
        assert "4/4 done" in head and "slowest #2" in head and "1 straggler" in head
        assert [r.split()[0] for r in rows] == ["#0", "#1", "#2", "#3"]
        assert [("◀ straggler" in r) for r in rows] == [False, False, True, False]
        assert max(rows, key=lambda r: r.count("█")) == rows[2]
        await pilot.press("s")  # slowest first
        await until(pilot, lambda: [line for line in lines() if line.startswith("#")][0].startswith("#2"))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, BatchScreen))


def test_a_straggler_is_late_by_a_factor_and_by_time():
    from rlm_tui.state import SubCall
    from rlm_tui.tui.screens.batch import Span, stragglers

    def batch(*took: float) -> list[Span]:
        return [
            Span(SubCall(id=f"c{i}", batch=0, index=i, prompt="p"), 0.0, t, running=False) for i, t in enumerate(took)
        ]

    assert stragglers(batch(0.001, 0.001, 0.003)) == set()  # three times the median, but 2 ms is not late
    assert stragglers(batch(1.0, 1.0, 1.0, 2.0)) == {"c3"}  # twice the median and a second more
    assert stragglers(batch(1.0, 1.0, 1.9)) == set()
    assert stragglers(batch(1.0, 5.0)) == set()  # two calls: no median to be late against


def test_a_stored_time_that_is_not_a_finite_number_leaves_its_call_off_the_timeline():
    from rlm_tui.state import SubBatch, SubCall
    from rlm_tui.tui.screens.batch import row, spans

    calls = [
        SubCall(id="ok", batch=0, index=0, prompt="p", response="r", started_at=10.0, finished_at=11.0),
        SubCall(id="inf", batch=0, index=1, prompt="p", response="r", started_at=float("inf"), finished_at=12.0),
        SubCall(id="str", batch=0, index=2, prompt="p", response="r", started_at="10", finished_at=12.0),  # type: ignore[arg-type]
    ]
    shown = spans(SubBatch(id="b", batch=0, size=3, cell_id=None, calls=calls, started_at=10.0), now=20.0)
    assert [(s.call.id, s.start, s.end) for s in shown] == [("ok", 0.0, 1.0)]
    assert "█" in row(shown[0], total=1.0, width=80, slow=False).plain
    assert spans(SubBatch(id="b", batch=0, size=3, cell_id=None, calls=calls, started_at=float("nan")), now=20.0) == []
