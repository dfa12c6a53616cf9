"""The reducer folds events into run and rollout state, with no I/O and no screen."""

import pytest

from rlm_tui import events as ev
from rlm_tui.state import fold

R, X = "run1", "ro1"


def _events():
    out = [
        ev.RunStarted(run_id=R, env="verbatim-copy", mode="rlm", model="m", sub_model="s", num_rollouts=1, ts=100.0),
        ev.RolloutQueued(run_id=R, rollout_id=X, index=0, example_id="e0", info={"k": 1}, target="T", ts=100.0),
        ev.RolloutStarted(run_id=R, rollout_id=X, system_prompt="sys", user_prompt="usr", ts=101.0),
    ]
    for turn, (p, c, lat) in enumerate([(100, 20, 0.5), (150, 30, 1.5)], start=1):
        call = ev.ModelCallStarted(run_id=R, rollout_id=X, role="main", model="m", turn=turn, messages=2)
        cell = ev.CellStarted(run_id=R, rollout_id=X, turn=turn, code=f"x = {turn}")
        out += [
            call,
            ev.ModelCallFinished(
                run_id=R,
                rollout_id=X,
                parent_id=call.id,
                role="main",
                prompt_tokens=p,
                completion_tokens=c,
                latency_s=lat,
            ),
            cell,
        ]
        if turn == 2:
            batch = ev.SubBatchStarted(run_id=R, rollout_id=X, parent_id=cell.id, batch=0, size=3)
            out.append(batch)
            for i in range(3):
                sc = ev.SubCallStarted(run_id=R, rollout_id=X, parent_id=batch.id, batch=0, index=i, prompt=f"p{i}")
                out += [
                    sc,
                    ev.ToolCalled(run_id=R, rollout_id=X, parent_id=sc.id, name="search", arguments={}, result="r"),
                    ev.SubCallFinished(
                        run_id=R,
                        rollout_id=X,
                        parent_id=sc.id,
                        batch=0,
                        index=i,
                        response=f"r{i}",
                        turns=2,
                        tool_calls=1,
                        prompt_tokens=10,
                        completion_tokens=5,
                    ),
                ]
            out.append(ev.SubBatchFinished(run_id=R, rollout_id=X, parent_id=batch.id, batch=0, elapsed_s=0.3))
        out.append(
            ev.CellFinished(
                run_id=R,
                rollout_id=X,
                parent_id=cell.id,
                turn=turn,
                output="o" * 50,
                shown="o" * 10,
                output_chars=50,
                truncated=True,
                elapsed_s=0.25 * turn,
            )
        )
    out += [
        ev.AnswerUpdated(run_id=R, rollout_id=X, content="T", ready=False),
        ev.AnswerUpdated(run_id=R, rollout_id=X, content="T", ready=True),
        ev.RolloutFinished(
            run_id=R,
            rollout_id=X,
            status="done",
            stop_reason="answer_ready",
            answer={"content": "T", "ready": True},
            reward=1.0,
            ts=111.0,
        ),
        ev.RunFinished(run_id=R, status="done", ts=112.0),
    ]
    return out


def test_metrics_fold_from_events():
    state = fold(_events(), R)
    r = state.rollouts[X]
    assert (state.env, state.status, r.status, r.reward, r.example_id) == ("verbatim-copy", "done", "done", 1.0, "e0")
    assert r.metrics() == {
        "main_rlm_turns": 2,
        "main_rlm_prompt_tokens": 250,
        "main_rlm_completion_tokens": 50,
        "sub_llm_call_count": 3,
        "sub_llm_total_turns": 6,
        "sub_llm_prompt_tokens": 30,
        "sub_llm_completion_tokens": 15,
        "sub_llm_total_tool_calls": 3,
        "sub_llm_batch_count": 1,
        "sub_llm_max_batch_size": 3,
        "sub_llm_mean_batch_size": 3.0,
        "repl_call_count": 2,
        "repl_total_time_seconds": 0.75,
        "repl_mean_time_seconds": 0.375,
        "wall_time_seconds": 10.0,
        "model_time_seconds": 2.0,
        "main_nudge_count": 0,
        "main_recovered_call_count": 0,
        "main_rejected_call_count": 0,
    }


def test_tree_and_timeline_structure():
    r = fold(_events(), R).rollouts[X]
    assert [len(t.cells) for t in r.turns] == [1, 1]
    cell = r.turns[1].cells[0]
    assert (cell.output_chars, cell.truncated, cell.shown) == (50, True, "o" * 10)
    (batch,) = r.batches
    assert batch.cell_id == cell.id and batch.finished
    assert [c.response for c in batch.calls] == ["r0", "r1", "r2"]
    assert all(len(c.tools) == 1 for c in batch.calls)
    assert r.answer == {"content": "T", "ready": True}
    assert [h[1] for h in r.answer_history] == [False, True]


def test_operator_cells_are_not_counted_as_repl_calls():
    events = _events()[:3] + [
        ev.CellStarted(run_id=R, rollout_id=X, turn=0, code="1", source="operator", id="c"),
        ev.CellFinished(
            run_id=R,
            rollout_id=X,
            parent_id="c",
            turn=0,
            output="",
            shown="",
            output_chars=0,
            truncated=False,
            elapsed_s=1.0,
            source="operator",
        ),
    ]
    r = fold(events, R).rollouts[X]
    assert r.repl_calls == 0 and r._cells["c"].source == "operator"


def test_mean_reward_ignores_unscored():
    events = _events()
    state = fold(events, R)
    state.apply(ev.RolloutQueued(run_id=R, rollout_id="ro2", index=1, example_id="e1"))
    assert state.mean_reward == pytest.approx(1.0)
    assert len(state.done) == 1


def test_root_tool_calls_hang_under_their_turn():
    call = ev.ModelCallStarted(run_id=R, rollout_id=X, role="main", model="m", turn=1, messages=2)
    tool = ev.ToolCalled(run_id=R, rollout_id=X, parent_id=call.id, name="search", arguments={"query": "q"}, result="r")
    r = fold(_events()[:3] + [call, tool], R).rollouts[X]
    assert r.turns[0].tools == [tool] and r.sub_tool_calls == 0


def _one_cell(**finished):
    events = _events()[:3] + [
        ev.CellStarted(run_id=R, rollout_id=X, turn=0, code="print(x)", id="c"),
        ev.CellFinished(
            run_id=R,
            rollout_id=X,
            parent_id="c",
            turn=0,
            output="x" * 50,
            output_chars=50,
            truncated=True,
            elapsed_s=0.1,
            **finished,
        ),
    ]
    return fold(events, R).rollouts[X]._cells["c"]


def test_a_cell_records_how_much_output_the_model_saw():
    marker = "\n[output truncated: showing 10 of 50 characters; 40 cut]"
    assert _one_cell(shown="x" * 10 + marker, shown_chars=10).shown_chars == 10
    # the number on the event is what counts, whatever the shown text looks like
    assert _one_cell(shown="x" * 7 + marker, shown_chars=5).shown_chars == 5


def test_a_cell_stored_before_shown_chars_counts_what_was_shown_less_the_marker():
    marker = "\n[output truncated: showing 10 of 50 characters; 40 cut]"
    assert _one_cell(shown="x" * 10 + marker).shown_chars == 10
    assert _one_cell(shown="x" * 12).shown_chars == 12


def test_stored_tool_calls_that_are_not_objects_are_dropped_not_folded():
    call = ev.ModelCallStarted(run_id=R, rollout_id=X, role="main", model="m", turn=1, messages=2)
    odd = [{"id": "a", "name": "call_python_repl", "arguments": "{}", "recovered": "fence"}, "junk", 3, None]
    finished = ev.ModelCallFinished(run_id=R, rollout_id=X, parent_id=call.id, role="main", tool_calls=odd)
    broken = ev.ModelCallFinished(run_id=R, rollout_id=X, parent_id=call.id, role="main", tool_calls="junk")
    state = fold([*_events()[:3], call, finished], R)
    (turn,) = state.rollouts[X].turns
    assert turn.tool_calls == odd[:1] and state.rollouts[X].recovered_calls == 1
    assert fold([*_events()[:3], call, broken], R).rollouts[X].turns[0].tool_calls == []
