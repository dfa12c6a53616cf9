"""Two rollouts aligned by turn: hand-built ones checked against hand-computed values, then real offline runs
of the same example in llm and rlm mode through `rlm-tui diff`."""

from __future__ import annotations

import re

import pytest

from rlm_tui import events as ev
from rlm_tui.cli import main
from rlm_tui.compare import PARTS, clipped, compare, paired_rollouts
from rlm_tui.state import RolloutState, fold
from rlm_tui.store import list_rollouts, list_runs, open_db


def _rlm(run: str = "ra", cells: tuple[tuple[str, str, str | None], ...] = ()) -> list[ev.Event]:
    """A rollout whose turn k writes cells[k] = (code, output, answer or None); each turn 100+10 tokens."""
    out: list[ev.Event] = [
        ev.RolloutQueued(run_id=run, rollout_id=run + "-r", index=0, example_id="e0", ts=10.0),
        ev.RolloutStarted(run_id=run, rollout_id=run + "-r", system_prompt="s", user_prompt="u", ts=10.0),
    ]
    for k, (code, output, answer) in enumerate(cells):
        call = ev.ModelCallStarted(run_id=run, rollout_id=run + "-r", role="main", model="m", turn=k, messages=1)
        cell = ev.CellStarted(run_id=run, rollout_id=run + "-r", turn=k, code=code)
        out += [
            call,
            ev.ModelCallFinished(
                run_id=run,
                rollout_id=run + "-r",
                parent_id=call.id,
                role="main",
                text=f"step {k}",
                prompt_tokens=100,
                completion_tokens=10,
            ),
            cell,
            ev.CellFinished(
                run_id=run,
                rollout_id=run + "-r",
                parent_id=cell.id,
                turn=k,
                output=output,
                shown=output,
                output_chars=len(output),
                truncated=False,
                elapsed_s=0.1,
            ),
        ]
        if answer is not None:
            out.append(ev.AnswerUpdated(run_id=run, rollout_id=run + "-r", content=answer, ready=False))
    return out


def _finished(events: list[ev.Event], answer: str, reward: float, ts: float) -> RolloutState:
    head = events[0]
    r = RolloutState(id=str(head.rollout_id))
    for e in events:
        r.apply(e)
    r.apply(
        ev.RolloutFinished(
            run_id=head.run_id,
            rollout_id=head.rollout_id,
            status="done",
            stop_reason="answer_ready",
            answer={"content": answer, "ready": True},
            reward=reward,
            ts=ts,
        )
    )
    return r


def _llm() -> RolloutState:
    """One turn: a reply that calls `search` once, then the answer the rollout ended with."""
    run, rid = "rb", "rb-r"
    call = ev.ModelCallStarted(run_id=run, rollout_id=rid, role="main", model="m", turn=0, messages=1)
    events: list[ev.Event] = [
        ev.RolloutQueued(run_id=run, rollout_id=rid, index=0, example_id="e0", ts=10.0),
        ev.RolloutStarted(run_id=run, rollout_id=rid, system_prompt="s", user_prompt="u", ts=10.0),
        call,
        ev.ModelCallFinished(
            run_id=run,
            rollout_id=rid,
            parent_id=call.id,
            role="main",
            text="step 0",
            prompt_tokens=300,
            completion_tokens=40,
        ),
        ev.ToolCalled(run_id=run, rollout_id=rid, parent_id=call.id, name="search", arguments={"q": "x"}, result="hit"),
    ]
    return _finished(events, "abc", 0.0, ts=12.5)


def test_turns_align_by_index_and_a_missing_turn_is_absent():
    a = _finished(_rlm(cells=(("x = 1", "", "a"), ("print(x)", "1", "abc"))), "abc", 1.0, ts=14.0)
    c = compare(a, _llm())
    assert [p.index for p in c.pairs] == [0, 1]
    first, second = c.pairs
    # turn 0: same text; code and output differ (a cell against a tool call); answer "a" against the final "abc"
    assert first.a is not None and first.b is not None
    assert first.a.code == ("x = 1",) and first.b.code == ('search({"q": "x"})',)
    assert first.b.output == ("hit",)
    assert (first.a.answer, first.b.answer) == ("a", "abc")
    assert first.differs == ("code", "output", "answer")
    assert second.b is None and second.differs == PARTS
    assert c.same_turns == 0


def test_identical_turns_differ_in_nothing_and_the_answer_carries_over():
    cells = (("x = 1", "", "a"), ("y = 2", "", None), ("print(x)", "1", "ab"))
    a = _finished(_rlm("ra", cells), "ab", 1.0, ts=13.0)
    b = _finished(_rlm("rb", cells[:2] + (("print(y)", "2", "ab"),)), "ab", 1.0, ts=13.0)
    c = compare(a, b)
    assert [p.differs for p in c.pairs] == [(), (), ("code", "output")]
    assert c.pairs[1].a is not None and c.pairs[1].a.answer == "a"  # turn 1 left the answer as turn 0 did
    assert c.same_turns == 2


def test_the_summary_has_each_sides_numbers():
    a = _finished(_rlm(cells=(("x = 1", "", "a"), ("print(x)", "1", "abc"))), "abc", 1.0, ts=14.0)
    sub = ev.SubCallFinished(
        run_id="ra", rollout_id="ra-r", batch=0, index=0, response="r", prompt_tokens=7, completion_tokens=3
    )
    a.apply(sub)
    c = compare(a, _llm())
    # a: two turns of 100+10, one sub call of 7+3, 10.0 to 14.0; b: one turn of 300+40, 10.0 to 12.5
    assert (c.a.reward, c.a.main_tokens, c.a.sub_tokens, c.a.sub_calls, c.a.wall_time_s, c.a.turns) == (
        1.0,
        220,
        10,
        1,
        4.0,
        2,
    )
    assert (c.b.reward, c.b.main_tokens, c.b.sub_tokens, c.b.sub_calls, c.b.wall_time_s, c.b.turns) == (
        0.0,
        340,
        0,
        0,
        2.5,
        1,
    )


def test_rollouts_of_two_runs_pair_by_example():
    def run(run_id: str, examples: list[str]):
        events = [
            ev.RolloutQueued(run_id=run_id, rollout_id=f"{run_id}{i}", index=i, example_id=x)
            for i, x in enumerate(examples)
        ]
        return fold(list(events), run_id)

    a, b = run("a", ["e1", "e2", "e3"]), run("b", ["e3", "e1"])
    assert [(x.id, y.id) for x, y in paired_rollouts(a, b)] == [("a0", "b1"), ("a2", "b0")]
    assert [(x.id, y.id) for x, y in paired_rollouts(a, run("c", ["z"]))] == [("a0", "c0")]  # none shared


@pytest.fixture
def llm_and_rlm(tmp_path):
    """A database with one offline verbatim-copy rollout in llm mode and one in rlm mode, same example and seed."""
    db = tmp_path / "runs.db"
    for mode in ("llm", "rlm"):
        assert (
            main(["run", "verbatim-copy", "--headless", "--mode", mode, "-n", "1", "--seed", "3", "--db", str(db)]) == 0
        )
    with open_db(db, create=False) as store:
        return db, {row["mode"]: row["id"] for row in list_runs(store)}


def test_diff_aligns_an_llm_and_an_rlm_rollout_of_the_same_example(llm_and_rlm, capsys):
    db, runs = llm_and_rlm
    capsys.readouterr()
    with open_db(db, create=False) as store:
        llm, rlm = (list_rollouts(store, runs[m])[0] for m in ("llm", "rlm"))
    assert llm["example_id"] == rlm["example_id"]
    assert main(["diff", llm["id"][:8], runs["rlm"], "--db", str(db)]) == 0  # a prefix, and a run of one rollout
    out = capsys.readouterr().out
    assert f"A  rollout {llm['id']} · verbatim-copy [llm]" in out
    assert f"B  rollout {rlm['id']} · verbatim-copy [rlm]" in out
    assert re.search(r"sub-LLM calls\s*│\s*0 │\s*[1-9]", out)  # the plain LLM makes none; RLM mode does
    turns = re.findall(r"── turn (\d+) · (.*)", out)
    assert turns[0] == ("0", "differs in text, code, output, answer")
    assert len(turns) > 1 and all(what == "differs in text, code, output, answer" for _, what in turns[1:])
    assert out.count("A │ (no such turn)") >= 3 * (len(turns) - 1)  # the LLM answered in its one turn


def test_an_unknown_id_or_a_run_of_several_rollouts_is_one_line_and_exit_2(tmp_path, capsys):
    db = str(tmp_path / "runs.db")
    assert main(["run", "verbatim-copy", "--headless", "--mode", "llm", "-n", "2", "--db", db]) == 0
    capsys.readouterr()
    assert main(["diff", "nosuchid", "nosuchid", "--db", db]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no rollout or run id starts with 'nosuchid'" in err
    with open_db(db, create=False) as store:
        run_id = list_runs(store)[0]["id"]
    assert main(["diff", run_id, run_id, "--db", db]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"run {run_id} has 2 rollouts; name one" in err


def test_outside_text_is_printed_as_text_not_markup_or_controls(capsys):
    from rlm_tui.commands.diff import print_comparison
    from rlm_tui.state import RunState

    a = _finished(_rlm(cells=(("[bold]x[/bold]", "\x1b[2J", "a"),)), "a", 1.0, ts=11.0)
    b = _finished(_rlm("rb", cells=(("y", "", "a"),)), "a", 1.0, ts=11.0)
    run = RunState(id="r", env="e", mode="rlm", model="m")
    print_comparison(compare(a, b), (run, a), (run, b))
    out = capsys.readouterr().out
    assert "[bold]x[/bold]" in out and "\\x1b[2J" in out and "\x1b[2J" not in out


async def test_the_app_compares_two_marked_runs(llm_and_rlm):
    from rich.console import Console
    from textual.widgets import Static

    from pilot import until
    from rlm_tui.tui.app import RlmApp
    from rlm_tui.tui.screens.compare import CompareScreen
    from rlm_tui.tui.screens.runs import RunsScreen

    db, runs = llm_and_rlm

    def text_of(widget: Static) -> str:
        console = Console(width=200, record=True, file=open("/dev/null", "w"))
        console.print(widget.content)
        return console.export_text()

    app = RlmApp(db)
    async with app.run_test(size=(160, 60)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and len(app.screen._ids) == 2)
        runs_screen = app.screen
        assert isinstance(runs_screen, RunsScreen)
        first, second = runs_screen._ids  # the newest first: rlm, then llm
        await pilot.press("c")  # nothing marked: only a warning
        assert app.screen is runs_screen
        await pilot.press("x", "j", "x")
        assert runs_screen.marked == [first, second]
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.comparison is not None)
        screen = app.screen
        assert isinstance(screen, CompareScreen) and screen.comparison is not None
        assert screen.run_ids == (runs["rlm"], runs["llm"])
        c = screen.comparison
        assert (c.a.sub_calls > 0, c.b.sub_calls, c.b.turns) == (True, 0, 1)
        title = text_of(screen.query_one("#compare-title", Static))
        assert f"pair 1 of 1 · 0 of {c.a.turns} turns the same" in title
        assert "[rlm]" in title.split("\n")[1] and "[llm]" in title.split("\n")[2]
        summary = text_of(screen.query_one("#compare-summary", Static))
        assert f"{c.a.main_tokens:,}" in summary and f"{c.b.main_tokens:,}" in summary
        turns = text_of(screen.query_one("#compare-turns", Static))
        assert "(no such turn)" in turns and "≠ answer" in turns
        assert [p.differs for p in c.pairs] == [PARTS] * c.a.turns  # no turn of the two is alike
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is runs_screen)


def test_fields_the_database_holds_as_other_types_compare_as_text():
    a = _finished(_rlm(cells=(("x", "1", "a"),)), "a", 1.0, ts=11.0)
    b = _finished(_rlm("rb", cells=(("x", "1", "a"),)), "a", 1.0, ts=11.0)
    b.turns[0].text, b.turns[0].cells[0].code, b.turns[0].cells[0].output = None, 5, ["1"]  # type: ignore[assignment]
    b.answer = {"content": None, "ready": True}
    c = compare(a, b)
    assert c.pairs[0].b is not None
    assert (c.pairs[0].b.text, c.pairs[0].b.code, c.pairs[0].b.output, c.pairs[0].b.answer) == (
        "",
        ("5",),
        ("['1']",),
        "",
    )
    assert c.pairs[0].differs == PARTS and c.b.answer == ""


def test_a_value_is_cut_to_what_is_shown_and_marked_where_the_other_differs():
    assert clipped("one two three", "one 2 three", lines=12, width=160) == ("one two three", [(4, 7)], 0)
    # three lines shown of five; a line past the width ends in an ellipsis; a control character spelled out
    text = "a\nb\x1b\n" + "x" * 10 + "\nd\ne"
    assert clipped(text, text, lines=3, width=6) == ("a\nb\\x1b\nxxxxx…", [], 2)
    assert clipped("a\r\nb", "a\nb", lines=3, width=6) == ("a\nb", [], 0)  # a CRLF line end is a line end


@pytest.fixture
def two_examples(tmp_path):
    """Two offline verbatim-copy rollouts in llm mode and the same two in rlm mode."""
    db = tmp_path / "runs.db"
    for mode in ("llm", "rlm"):
        assert main(["run", "verbatim-copy", "--headless", "--mode", mode, "-n", "2", "--db", str(db)]) == 0
    return db


async def test_the_compare_view_steps_through_the_examples_both_runs_have(two_examples):
    from pilot import until
    from rlm_tui.tui.app import RlmApp
    from rlm_tui.tui.screens.compare import CompareScreen
    from rlm_tui.tui.screens.runs import RunsScreen

    app = RlmApp(two_examples)
    async with app.run_test(size=(160, 60)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen) and len(app.screen._ids) == 2)
        await pilot.press("x", "j", "x", "c")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.comparison is not None)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        first = screen.comparison
        examples = [(a.example_id, b.example_id) for a, b in screen.pairs]
        assert len(examples) == 2 and all(x == y for x, y in examples) and examples[0] != examples[1]
        await pilot.press("l")
        await until(pilot, lambda: screen.comparison is not first)
        assert screen.at == 1
        second = screen.comparison
        await pilot.press("l")  # past the last pair: back to the first
        await until(pilot, lambda: screen.comparison is not second)
        assert screen.at == 0
