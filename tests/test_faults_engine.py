"""Faults the engine must survive: a failing rollout, a cancelled run, a stalled run, a store that stops."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI, Reply, code_call, is_root, root_turn
from rlm_tui.engine.clients import OpenAIClient
from rlm_tui.engine.rollout import RolloutSettings
from rlm_tui.engine.run import Run, RunConfig
from rlm_tui.engine.scripted import ScriptedClient
from rlm_tui.env import load_environment
from rlm_tui.sandbox import Limits
from rlm_tui.state import fold
from rlm_tui.store import Database, EventWriter, StoreError, get_run, list_rollouts, list_runs, open_db, read_events
from runs import tail_events

RLM_TUI = str(Path(sys.executable).parent / "rlm-tui")
WAIT = 60  # seconds: generous bounds on waits that normally take milliseconds


def verbatim(**args):
    return load_environment("verbatim-copy", {"target_length": "200", **args})


def make_run(db, env, client, *, n=1, sinks=(), writer=None, limits=Limits(), **config):
    writer = writer or EventWriter(db)
    writer.start()
    model = "scripted" if isinstance(client, ScriptedClient) else "fake-root"
    sub = "scripted" if isinstance(client, ScriptedClient) else "fake-sub"
    cfg = RunConfig(
        env=env.name,
        env_args={k: str(v) for k, v in env.args.items()},
        num_examples=n,
        rollout=RolloutSettings(model=model, sub_model=sub, timeout=30, limits=limits),
        **config,
    )
    return Run(cfg, env, client, [writer.append, *sinks]), writer


def execute(run, client):
    async def main():
        try:
            return await run.execute()
        finally:
            await client.close()

    return asyncio.run(main())


def stored(db, run_id):
    return fold([e for _, e in read_events(open_db(db), run_id=run_id)], run_id)


def test_an_unexpected_exception_fails_its_rollout_and_the_others_go_on(tmp_path):
    env = verbatim()
    examples = env.examples(3, 0)
    user_prompt = env.user_prompt

    def faulty(example, mode):  # an environment bug that hits one example only
        if example.id == examples[1].id:
            raise KeyError("no field 'text' in this example")
        return user_prompt(example, mode)

    env.user_prompt = faulty
    client = ScriptedClient(env)
    run, writer = make_run(tmp_path / "t.db", env, client, n=3)
    state = execute(run, client)
    writer.close()
    log = stored(tmp_path / "t.db", run.id)
    by_example = {r.example_id: r for r in log.rollouts.values()}
    bad = by_example[examples[1].id]
    assert (bad.status, bad.stop_reason) == ("failed", "error")
    assert bad.error == "KeyError: \"no field 'text' in this example\""
    assert all(by_example[e.id].status == "done" for e in (examples[0], examples[2]))
    assert state.status == log.status == "failed"
    assert log.error.startswith("1 of 3 rollouts failed on an engine error; the first: KeyError")
    assert get_run(tmp_path / "t.db", run.id)["status"] == "failed"


def test_the_answer_is_stored_only_when_it_changes(tmp_path):
    marker = "Q7Z" + "x" * 64
    cells = ['answer["content"] = "Q7Z" + "x" * 200_000', "a = 1", "b = 2", "c = 3", 'answer["ready"] = True']

    def respond(body):
        return code_call(cells[root_turn(body)]) if is_root(body) else Reply(content="sub")

    env = verbatim()
    with FakeOpenAI(respond) as server:
        client = OpenAIClient(base_url=server.base_url, api_key="test-key", max_retries=0)
        run, writer = make_run(tmp_path / "t.db", env, client)
        execute(run, client)
    writer.close()
    db = sqlite3.connect(tmp_path / "t.db")
    copies = db.execute("SELECT kind FROM events WHERE instr(data, ?) > 0 ORDER BY seq", [marker]).fetchall()
    # set once, made ready once, and the final record: never once per cell
    assert [k for (k,) in copies] == ["answer_updated", "answer_updated", "rollout_finished"]
    r = next(iter(stored(tmp_path / "t.db", run.id).rollouts.values()))
    assert r.answer == {"content": "Q7Z" + "x" * 200_000, "ready": True} and r.repl_calls == 5
    assert [ready for _, ready, _ in r.answer_history] == [False, True]


def test_a_rollout_that_spends_its_cpu_stops_with_its_answer_scored(tmp_path):
    burn = (
        "import threading\nanswer['content'] = 'partial'\n"
        "def spin():\n    while True:\n        pass\n"
        "threading.Thread(target=spin, daemon=True).start()"
    )
    spend = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end:\n    pass"
    cells = [burn] + [spend] * 50  # the model never says it is ready; each cell spends CPU of its own too

    def respond(body):
        return code_call(cells[root_turn(body)]) if is_root(body) else Reply(content="sub")

    with FakeOpenAI(respond) as server:
        client = OpenAIClient(base_url=server.base_url, api_key="test-key", max_retries=0)
        run, writer = make_run(tmp_path / "t.db", verbatim(), client, limits=Limits(cpu_seconds=2))
        state = execute(run, client)
    writer.close()
    r = next(iter(stored(tmp_path / "t.db", run.id).rollouts.values()))
    assert (r.status, r.stop_reason) == ("done", "budget_cpu")
    assert "CPU budget of 2 s" in r.error and r.answer["content"] == "partial" and r.reward is not None
    assert state.status == "done" and r.repl_calls <= 8  # 4 cells of 0.5 s spend it; a check a second lets 2 more start


def test_a_cancelled_run_ends_every_rollout_and_the_run_in_the_store(tmp_path):
    def respond(body):
        return code_call("import time; time.sleep(30)") if is_root(body) else Reply(content="sub")

    env = verbatim()
    with FakeOpenAI(respond) as server:
        client = OpenAIClient(base_url=server.base_url, api_key="test-key", max_retries=0)
        cells: asyncio.Queue = asyncio.Queue()
        run, writer = make_run(
            tmp_path / "t.db",
            env,
            client,
            n=4,
            concurrency=2,
            sinks=[lambda e: e.kind == "cell_started" and cells.put_nowait(e)],
        )

        async def main():
            task = asyncio.create_task(run.execute())
            await asyncio.wait_for(cells.get(), WAIT)  # a cell is in flight in a jail
            task.cancel()
            state = await asyncio.wait_for(task, WAIT)
            await client.close()
            return state

        state = asyncio.run(main())
    writer.close()
    assert state.status == "killed"
    row = get_run(tmp_path / "t.db", run.id)
    assert (
        row["status"] == "killed" and row["error"] == "the run was stopped; of 4 rollouts 0 failed and 4 were cut short"
    )
    assert {r["status"] for r in list_rollouts(tmp_path / "t.db", run.id)} == {"killed"}


def test_a_stalled_run_says_which_rollouts_are_stuck_where(tmp_path, capfd):
    def respond(body):
        turn = root_turn(body) if is_root(body) else 0
        code = "import time; time.sleep(3)" if turn == 0 else 'answer.update(content="x", ready=True)'
        return code_call(code) if is_root(body) else Reply(content="sub")

    env = verbatim()
    with FakeOpenAI(respond) as server:
        client = OpenAIClient(base_url=server.base_url, api_key="test-key", max_retries=0)
        run, writer = make_run(tmp_path / "t.db", env, client, stall_seconds=0.5)
        state = execute(run, client)
    writer.close()
    stalls = [e for _, e in read_events(tmp_path / "t.db", run_id=run.id) if e.kind == "run_stalled"]
    assert len(stalls) == 1  # once per stall, not once per check
    (stuck,) = stalls[0].stuck
    (rollout_id,) = state.rollouts
    assert stuck["rollout_id"] == rollout_id and stuck["last_kind"] == "cell_started" and stuck["age_s"] >= 0.5
    assert state.status == "done"
    assert f"run {run.id} stalled" in capfd.readouterr().err


class FullDisk(EventWriter):
    """The real writer on a database that may not grow past `pages` pages: SQLite's own 'disk is full'."""

    def __init__(self, path, pages):
        super().__init__(path)
        self.pages = pages

    def _open(self):
        db = super()._open()
        db.execute(f"PRAGMA max_page_count = {self.pages}")
        return db


def break_cells(db):
    with sqlite3.connect(db) as conn:  # a broken schema: every batch holding a cell_finished is refused
        conn.execute(
            "CREATE TRIGGER no_cells BEFORE INSERT ON events WHEN NEW.kind = 'cell_finished' "
            "BEGIN SELECT RAISE(ABORT, 'broken schema'); END"
        )


def full_disk(db):
    pages = open_db(db).execute("PRAGMA page_count").fetchone()[0]
    return FullDisk(db, pages + 100)  # the queued rows (each with a 20 kB target) fit, the run does not


@pytest.mark.parametrize("fault", ["broken_schema", "full_disk"])
def test_a_store_that_cannot_write_stops_the_run_and_says_what_was_lost(tmp_path, fault):
    db = tmp_path / "t.db"
    open_db(db).close()
    writer = full_disk(db) if fault == "full_disk" else (break_cells(db) or EventWriter(db))
    env = verbatim(target_length="20000")
    client = ScriptedClient(env)
    produced = []

    def stored_first(e):  # the run's rows fit
        return e.kind == "rollout_queued" and e.index == 5 and writer.flush()

    run, writer = make_run(db, env, client, n=6, concurrency=3, writer=writer, sinks=[produced.append, stored_first])
    state = execute(run, client)
    with pytest.raises(StoreError) as exc_info:
        writer.close()
    assert state.status == "failed" and "could not be stored" in state.error
    kept = Counter(e.kind for _, e in read_events(db, run_id=run.id))
    assert writer.lost == Counter(e.kind for e in produced) - kept and writer.lost["run_finished"] == 1
    message = " ".join(str(exc_info.value).split())
    assert message == str(exc_info.value)
    assert f"{sum(writer.lost.values())} events not stored (" in message
    row = get_run(db, run.id)
    if fault == "full_disk" and "could not be marked failed either" in message:
        # the longer error row did not fit either: the message (on stderr, exit 2) is all there is
        assert message.endswith("(OperationalError: database or disk is full)") and row["status"] == "running"
        return
    assert message.endswith("the run is marked failed")
    assert row["status"] == "failed" and "events not stored" in row["error"]
    assert not {r["status"] for r in list_rollouts(db, run.id)} & {"queued", "running"}


def rlm_tui(tmp_path, *args, timeout=300):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RLM_TUI_"))}
    return subprocess.run([RLM_TUI, *args], cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=timeout)


def test_the_command_line_says_what_a_broken_store_lost_and_exits_non_zero(tmp_path):
    open_db(tmp_path / "t.db").close()
    break_cells(tmp_path / "t.db")
    proc = rlm_tui(tmp_path, "run", "verbatim-copy", "--headless", "-n", "2", "--db", "t.db")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("rlm-tui: error: writing events to t.db failed: IntegrityError: broken schema; ")
    assert "events not stored (" in last and last.endswith("the run is marked failed")
    (run,) = list_runs(tmp_path / "t.db")
    assert run["status"] == "failed" and "events not stored" in run["error"]


def engine(tmp_path, run_id, *args):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RLM_TUI_"))}
    return subprocess.Popen(
        [RLM_TUI, "run", "verbatim-copy", "--headless", "--db", "t.db", "--run-id", run_id, *args],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


RESUMED, KILLED, COMPLETE = "a1b2c3d4e5f60718", "c0ffee00c0ffee00", "c0c0c0c0c0c0c0c0"
ONE, TWO = "0000000000000001", "0000000000000002"


def wait_for(db, run_id, predicate, proc):
    """Follow the run's committed events until one satisfies `predicate`."""
    while get_run(db, run_id) is None:  # until the engine has written its run, there is nothing to follow
        try:
            proc.wait(0.05)
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"the engine exited with {proc.returncode} before its run began: {proc.stderr.read()}")
    for batch in tail_events(db, run_id=run_id, poll=0.02):
        for _, e in batch:
            if predicate(e):
                return e
    raise AssertionError("the run ended before the awaited event")


def test_a_killed_run_resumes_in_the_same_run_without_redoing_what_finished(tmp_path):
    db = tmp_path / "t.db"
    open_db(db).close()  # there to follow before the engine writes to it
    proc = engine(
        tmp_path, RESUMED, "-n", "4", "--concurrency", "1", "--scripted-delay", "0.2", "--env-arg", "target_length=300"
    )
    try:
        first = wait_for(db, RESUMED, lambda e: e.kind == "rollout_finished", proc)
    finally:
        proc.kill()
        proc.wait(WAIT)
    assert get_run(db, RESUMED)["status"] == "interrupted"
    proc = rlm_tui(tmp_path, "resume", RESUMED[:8], "--db", "t.db")
    assert proc.returncode == 0, proc.stderr
    run = get_run(db, RESUMED)
    assert (run["status"], run["rollouts"], run["done"], run["mean_reward"]) == ("done", 4, 4, 1.0)
    events = [e for _, e in read_events(db, run_id=RESUMED)]
    finished = Counter(e.rollout_id for e in events if e.kind == "rollout_finished")
    assert finished[first.rollout_id] == 1 and len(finished) == 4  # the finished one was not run again
    log = fold(events, RESUMED)
    assert all(r.status == "done" and len(r.turns) >= 1 for r in log.rollouts.values())
    exported = rlm_tui(tmp_path, "export", RESUMED, "--db", "t.db").stdout.splitlines()
    assert len(exported) == 4
    assert rlm_tui(tmp_path, "resume", RESUMED, "--db", "t.db").stderr.strip().endswith("nothing to resume")


# --- SIGKILL at several moments, and databases that are not what they should be -----------------

ENGINE_ARGS = ("-n", "6", "--concurrency", "3", "--scripted-delay", "0.05", "--env-arg", "target_length=300")


def nth(kind, n):
    seen = Counter()

    def predicate(e):
        seen[e.kind] += 1
        return e.kind == kind and seen[kind] == n

    return predicate


MOMENTS = {  # when to kill, as a predicate on the stream of committed events
    "start-up": lambda: nth("rollout_queued", 1),
    "mid-run": lambda: nth("sub_call_started", 1),  # cells and a batch in flight
    "final writes": lambda: nth("rollout_finished", 6),  # the last rollout's end, the run's end about to follow
}


@pytest.fixture(scope="module")
def complete(tmp_path_factory):
    """The events of an unkilled run of the same examples, per example: what a killed run is measured against."""
    where = tmp_path_factory.mktemp("complete")
    proc = engine(where, COMPLETE, *ENGINE_ARGS)
    assert proc.wait(300) == 0, proc.stderr.read()
    return per_example(where / "t.db", COMPLETE)


def per_example(db, run_id):
    events = [e for _, e in read_events(db, run_id=run_id)]
    examples = {e.rollout_id: e.example_id for e in events if e.kind == "rollout_queued"}
    out: dict[str, Counter] = {}
    for e in events:
        out.setdefault(examples.get(e.rollout_id, "run"), Counter())[e.kind] += 1
    return out


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_an_engine_killed_at_any_moment_leaves_a_whole_file_with_no_holes(tmp_path, moment, complete):
    db = tmp_path / "t.db"
    open_db(db).close()
    proc = engine(tmp_path, KILLED, *ENGINE_ARGS)
    try:
        wait_for(db, KILLED, MOMENTS[moment](), proc)
    finally:
        proc.kill()
        proc.wait(WAIT)
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    events = [e for _, e in read_events(db, run_id=KILLED)]
    ids = {e.id for e in events}
    assert all(e.parent_id in ids for e in events if e.parent_id)  # what is stored is a prefix: no holes
    stored = per_example(db, KILLED)
    for example, kinds in stored.items():
        if example == "run":
            continue
        assert not kinds - complete[example], example  # nothing stored that a complete run does not store
        if kinds["rollout_finished"]:
            assert kinds == complete[example], example  # a finished rollout lost nothing
    lost = sum(sum(c.values()) for c in complete.values()) - len(events)
    print(f"SIGKILL at {moment}: {len(events)} events stored, {lost} fewer than a complete run")
    # the kill may land just after the run's last commit: then nothing at all is lost
    assert get_run(db, KILLED)["status"] == "interrupted" or stored == complete


def test_a_corrupt_file_or_a_directory_as_db_fails_in_one_line(tmp_path):
    (tmp_path / "corrupt.db").write_bytes(b"SQLite format 3\x00" + b"\x13" * 8000)
    (tmp_path / "dir.db").mkdir()
    for db in ("corrupt.db", "dir.db"):
        proc = rlm_tui(tmp_path, "run", "verbatim-copy", "--headless", "-n", "1", "--db", db)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        (line,) = [x for x in proc.stderr.splitlines() if x.startswith("rlm-tui: error:")]
        assert db in line


def test_an_old_schema_is_migrated_and_the_run_works(tmp_path):
    from rlm_tui.store.schema import MIGRATIONS, MIGRATIONS_TABLE

    with Database(tmp_path / "old.db") as db:
        for fn in MIGRATIONS[:2]:  # a database from before commands and grids
            fn(db)
            db.execute(f"INSERT INTO [{MIGRATIONS_TABLE}] VALUES (?, ?)", [fn.__name__, "2026-01-01"])
    proc = rlm_tui(tmp_path, "run", "verbatim-copy", "--headless", "-n", "2", "--db", "old.db")
    assert proc.returncode == 0, proc.stderr
    (run,) = list_runs(tmp_path / "old.db")
    assert (run["status"], run["done"]) == ("done", 2)


def test_two_engines_on_one_database_both_store_everything(tmp_path, complete):
    open_db(tmp_path / "t.db").close()
    procs = [engine(tmp_path, run_id, *ENGINE_ARGS) for run_id in (ONE, TWO)]
    for proc in procs:
        assert proc.wait(300) == 0, proc.stderr.read()
    for run_id in (ONE, TWO):
        assert per_example(tmp_path / "t.db", run_id) == complete
        assert get_run(tmp_path / "t.db", run_id)["status"] == "done"


def test_a_read_only_database_refuses_a_run_in_one_line(tmp_path):
    assert rlm_tui(tmp_path, "run", "verbatim-copy", "--headless", "-n", "1", "--db", "ro.db").returncode == 0
    where = tmp_path / "mnt"
    where.mkdir()
    subprocess.run(["mount", "--bind", str(tmp_path), str(where)], check=True)  # root writes anything else
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(where)], check=True)
        proc = rlm_tui(tmp_path, "run", "verbatim-copy", "--headless", "-n", "1", "--db", str(where / "ro.db"))
    finally:
        subprocess.run(["umount", str(where)], check=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("rlm-tui: error:")]
    assert "ro.db" in line
    assert len(list_runs(tmp_path / "ro.db")) == 1


def test_a_sandbox_that_cannot_start_at_all_ends_the_run_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("RLM_TUI_NSJAIL", "/nonexistent/nsjail")
    env = verbatim()
    client = ScriptedClient(env)
    run, writer = make_run(tmp_path / "t.db", env, client, n=4, concurrency=1)
    state = execute(run, client)
    writer.close()
    assert state.status == "failed" and state.error.startswith("could not start the nsjail sandbox: no nsjail binary")
    assert state.error.endswith("; of 4 rollouts 4 failed and 0 were cut short")  # none got further than its start
    assert {r["status"] for r in list_rollouts(tmp_path / "t.db", run.id)} == {"failed"}


def test_a_sandbox_that_fails_to_start_once_others_did_fails_only_its_rollout(tmp_path, monkeypatch):
    def lose_nsjail(e):  # the binary goes away once the first rollout is up
        if e.kind == "model_call_started":
            monkeypatch.setenv("RLM_TUI_NSJAIL", "/nonexistent/nsjail")

    env = verbatim()
    client = ScriptedClient(env)
    run, writer = make_run(tmp_path / "t.db", env, client, n=3, concurrency=1, sinks=[lose_nsjail])
    state = execute(run, client)
    writer.close()
    statuses = sorted((r.index, r.status) for r in stored(tmp_path / "t.db", run.id).rollouts.values())
    assert statuses == [(0, "done"), (1, "failed"), (2, "failed")]
    assert state.status == "failed"
    assert state.error.startswith("2 of 3 rollouts failed on an engine error; the first: could not start the nsjail")
