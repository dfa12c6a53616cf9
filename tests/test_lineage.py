"""What a fork and an approved rollout leave behind: `show`, the CSV export, the report and `resume` say it."""

from __future__ import annotations

import csv
import io
import re

from fake_openai import FakeOpenAI, looping
from live import Live
from rlm_tui import events as ev
from rlm_tui.engine.control import Command
from rlm_tui.store import open_db
from runs import store_events
from test_fork import cli, stored_runs


def forked(tmp_path, capsys):
    db = tmp_path / "t.db"
    code, _, err = cli(capsys, "run", "verbatim-copy", "--headless", "-n", "1", "--model", "scripted", "--db", str(db))
    assert code == 0, err
    ((parent,),) = [list(r.rollouts.values()) for r in stored_runs(db)]
    code, _, err = cli(capsys, "fork", parent.id, "--at-turn", "3", "--message", "check every chunk", "--db", str(db))
    assert code == 0, err
    parent_run, fork_run = stored_runs(db)
    return db, parent_run, parent, fork_run, next(iter(fork_run.rollouts.values()))


def test_show_export_and_report_carry_the_forks_lineage(tmp_path, capsys):
    db, parent_run, parent, fork_run, fork = forked(tmp_path, capsys)
    code, out, _ = cli(capsys, "show", fork.id, "--db", str(db))
    assert code == 0
    assert f"forked from rollout {parent.id} of run {parent_run.id} at turn 3" in out
    assert "operator inject: check every chunk" in out  # the message, where the model got it

    code, out, _ = cli(capsys, "export", parent_run.id, fork_run.id, "--format", "csv", "--db", str(db))
    assert code == 0
    rows = {r["rollout_id"]: r for r in csv.DictReader(io.StringIO(out))}
    assert (rows[fork.id]["forked_from"], rows[fork.id]["forked_at_turn"]) == (parent.id, "3")
    assert (rows[parent.id]["forked_from"], rows[parent.id]["forked_at_turn"]) == ("", "")

    code, out, err = cli(capsys, "report", parent_run.id, fork_run.id, "--db", str(db))
    assert code == 0, err
    text = " ".join(re.sub(r"[\u2500-\u257f]", " ", out).split())  # the tables' box lines left out
    assert "Forks (each against its parent rollout)" in text
    change = f"{fork.reward - parent.reward:+.3f}"
    assert f"{fork.id[:12]} verbatim-copy rlm {parent.id[:12]} 3 {parent.reward:.3f} {fork.reward:.3f} {change}" in text
    # the mode comparison is the parent's alone: the fork, an intervention on its example, does not replace it
    assert f"verbatim-copy rlm 1 {parent.reward:.3f}" in text


def test_resume_refuses_a_fork_that_did_not_finish(tmp_path, capsys):
    run, rollout = "f" * 16, "e" * 16
    config = {"env": "verbatim-copy", "forked_from": {"rollout_id": "a" * 16, "run_id": "b" * 16, "turn": 3}}
    db = store_events(
        tmp_path / "k.db",
        [
            ev.RunStarted(
                run_id=run,
                env="verbatim-copy",
                mode="rlm",
                model="scripted",
                sub_model="scripted",
                num_rollouts=1,
                config=config,
            ),
            ev.RolloutQueued(run_id=run, rollout_id=rollout, index=0, example_id="x"),
            ev.RunFinished(run_id=run, status="killed", error="the run was stopped"),
        ],
    )
    code, _, err = cli(capsys, "resume", run, "--db", str(db))
    assert code == 2
    assert err.strip().splitlines() == [
        f"rlm-tui: error: run {run} is a fork that did not finish; fork again: `rlm-tui fork {'a' * 16} --at-turn 3`"
    ]


async def test_show_prints_what_the_operator_decided_in_approve_mode(tmp_path, capsys):
    db = tmp_path / "a.db"
    open_db(db).close()
    with FakeOpenAI(looping) as server:
        live = await Live(server, max_turns=2, approve=True, db=db).start()
        rid = live.rollout_id
        await live.until(lambda e: isinstance(e, ev.CellProposed) and e.turn == 1)
        live.run.submit(Command("approve", rid, "print('by hand')"))
        await live.until(lambda e: isinstance(e, ev.CellProposed) and e.turn == 2)
        live.run.submit(Command("skip", rid, "enough printing"))
        await live.finish()
    code, out, _ = cli(capsys, "show", rid, "--db", str(db))
    assert code == 0
    text = " ".join(out.split())
    assert (
        "the model proposed this cell; the operator edited it before it ran: print('turn 0') it ran as: print('by hand')"
        in text
    )
    assert "proposed cell, not run: the operator skipped it: enough printing print('turn 1')" in text
