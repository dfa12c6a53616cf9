"""The SQLite store: round trips, row upkeep, migrations, errors, tailing and crash safety."""

from __future__ import annotations

import dataclasses
import os
import queue
import signal
import socket
import sqlite3
import subprocess
import sys
import threading

import pytest

from rlm_tui.events import (
    EVENT_TYPES,
    RolloutFinished,
    RolloutQueued,
    RolloutStarted,
    RunFinished,
    RunStarted,
    SubCallStarted,
)
from rlm_tui.store import (
    Database,
    EventWriter,
    StoreError,
    default_db_path,
    get_rollout,
    get_run,
    latest_run_id,
    list_rollouts,
    list_runs,
    open_db,
    read_events,
    resolve_rollout_id,
    resolve_run_id,
)
from rlm_tui.store.schema import MIGRATIONS, MIGRATIONS_TABLE
from runs import tail_events

WAIT = 60  # seconds before a test that waits on another thread or process gives up

# one sample value per annotation used in events.py; a new annotation makes the round trip fail here
SAMPLES = {
    "str": "tëxt\nwith lines",
    "int": 7,
    "float": 2.5,
    "bool": True,
    "str | None": "an error",
    "int | None": 3,
    "float | None": 0.25,
    "dict[str, Any]": {"k": [1, "ü", None], "nested": {"x": 1.5}},
    "list[dict[str, Any]]": [{"id": "call-1", "name": "python", "arguments": "{}"}],
    "list[int]": [1, 3],
    "Any": {"expected": [1, 2]},
}


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "store.db"


@pytest.fixture
def writer(db_path):
    w = EventWriter(db_path)
    w.start()
    yield w
    w.close()


def run_started(run_id="run-1", **kw):
    return RunStarted(run_id=run_id, env="math", mode="rlm", model="m", sub_model="s", num_rollouts=3, **kw)


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert message and "\n" not in message
    return message


def test_round_trip_of_every_event_type(writer, db_path):
    written = []
    for kind, cls in EVENT_TYPES.items():
        fields = {
            f.name: SAMPLES[f.type]
            for f in dataclasses.fields(cls)
            if f.name not in {"run_id", "rollout_id", "id", "parent_id", "ts"}
        }
        written.append(cls(run_id="run-1", rollout_id=f"ro-{kind}", parent_id="parent-1", **fields))
    for event in written:
        writer.append(event)
    writer.flush()
    read = [event for _, event in read_events(db_path)]
    assert read == written
    assert {e.kind for e in read} == set(EVENT_TYPES)


def test_events_come_back_in_append_order_across_batches(db_path):
    w = EventWriter(db_path, max_batch=100)
    w.start()
    written = [
        SubCallStarted(run_id="run-1", rollout_id=f"ro-{i % 3}", batch=0, index=i, prompt="p") for i in range(3000)
    ]
    for event in written:
        w.append(event)
    w.close()
    rows = read_events(db_path, run_id="run-1")
    seqs = [seq for seq, _ in rows]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert [e.id for _, e in rows] == [e.id for e in written]
    assert [e.index for _, e in read_events(db_path, rollout_id="ro-1")] == list(range(1, 3000, 3))
    pages, after = [], 0
    while page := read_events(db_path, run_id="run-1", after_seq=after, limit=700):
        pages.append(page)
        after = page[-1][0]
    assert len(pages) == 5 and [e for page in pages for _, e in page] == written


def test_run_and_rollout_rows_follow_the_events(writer, db_path):
    writer.append(run_started(config={"temperature": 0.5}))
    writer.append(
        RolloutQueued(run_id="run-1", rollout_id="ro-1", index=4, example_id="ex-9", info={"level": 3}, target=[42])
    )
    writer.flush()
    run = get_run(db_path, "run-1")
    assert (run["env"], run["mode"], run["model"], run["sub_model"], run["num_rollouts"]) == (
        "math",
        "rlm",
        "m",
        "s",
        3,
    )
    assert run["config"] == {"temperature": 0.5}
    assert (run["status"], run["pid"], run["hostname"]) == ("running", os.getpid(), socket.gethostname())
    rollout = get_rollout(db_path, "ro-1")
    assert (rollout["status"], rollout["idx"], rollout["example_id"]) == ("queued", 4, "ex-9")
    assert (rollout["info"], rollout["target"]) == ({"level": 3}, [42])

    started = RolloutStarted(run_id="run-1", rollout_id="ro-1", system_prompt="sys", user_prompt="usr")
    writer.append(started)
    writer.flush()
    assert (get_rollout(db_path, "ro-1")["status"], get_rollout(db_path, "ro-1")["started"]) == ("running", started.ts)

    finished = RolloutFinished(
        run_id="run-1",
        rollout_id="ro-1",
        status="failed",
        stop_reason="max_turns",
        answer={"content": "41", "ready": False},
        reward=0.0,
        metrics={"turns": 8},
        error="out of turns",
    )
    writer.append(finished)
    writer.append(RunFinished(run_id="run-1", status="failed", error="1 rollout failed"))
    writer.flush()
    rollout = get_rollout(db_path, "ro-1")
    assert (rollout["status"], rollout["stop_reason"], rollout["reward"], rollout["error"]) == (
        "failed",
        "max_turns",
        0.0,
        "out of turns",
    )
    assert (rollout["answer"], rollout["metrics"], rollout["finished"]) == (
        {"content": "41", "ready": False},
        {"turns": 8},
        finished.ts,
    )
    run = get_run(db_path, "run-1")
    assert (run["status"], run["error"]) == ("failed", "1 rollout failed")
    assert run["finished"] is not None
    assert [r["id"] for r in list_rollouts(db_path, "run-1")] == ["ro-1"]
    assert get_run(db_path, "nope") is None and get_rollout(db_path, "nope") is None


def test_list_runs_newest_first_with_counts_and_mean_reward(writer, db_path):
    writer.append(run_started("old", ts=100.0))
    writer.append(run_started("new", ts=200.0))
    for i, (status, reward) in enumerate([("done", 1.0), ("failed", 0.0), (None, None)]):
        writer.append(RolloutQueued(run_id="old", rollout_id=f"ro-{i}", index=i, example_id=str(i)))
        if status:
            writer.append(
                RolloutFinished(
                    run_id="old",
                    rollout_id=f"ro-{i}",
                    status=status,
                    stop_reason="answer_ready",
                    answer={},
                    reward=reward,
                )
            )
    writer.flush()
    runs = list_runs(db_path)
    assert [r["id"] for r in runs] == ["new", "old"]
    counts = {r["id"]: (r["rollouts"], r["ended"], r["done"], r["mean_reward"]) for r in runs}
    assert counts == {"new": (0, 0, 0, None), "old": (3, 2, 1, 0.5)}
    assert [r["status"] for r in runs] == ["running", "running"]
    assert latest_run_id(db_path) == "new"
    assert [r["idx"] for r in list_rollouts(db_path, "old")] == [0, 1, 2]


def test_a_run_costs_the_sum_of_its_rollouts_and_is_unknown_when_one_cost_is(writer, db_path):
    metrics = {
        "priced": [{"total_cost_usd": 0.25}, {"total_cost_usd": 0.5}],
        "unpriced": [{"total_cost_usd": 0.25}, {}],
    }
    for run, rows in metrics.items():
        writer.append(run_started(run))
        for i, m in enumerate(rows):  # a rollout of an unknown model has no total_cost_usd at all
            writer.append(RolloutQueued(run_id=run, rollout_id=f"{run}-{i}", index=i, example_id=str(i)))
            writer.append(
                RolloutFinished(
                    run_id=run,
                    rollout_id=f"{run}-{i}",
                    status="done",
                    stop_reason="answer_ready",
                    answer={},
                    reward=1.0,
                    metrics=m,
                )
            )
    writer.flush()
    assert {r["id"]: r["cost_usd"] for r in list_runs(db_path)} == {"priced": 0.75, "unpriced": None}


def test_migrations_are_recorded_once_in_order(db_path):
    names = [fn.__name__ for fn in MIGRATIONS]
    with open_db(db_path) as db:
        first = db.execute(f"SELECT name, applied_at FROM [{MIGRATIONS_TABLE}] ORDER BY rowid").fetchall()
        assert [name for name, _ in first] == names
        assert {"runs", "rollouts", "events"} <= set(db.table_names())
        assert db.journal_mode == "wal"
    with open_db(db_path) as db:
        assert db.execute(f"SELECT name, applied_at FROM [{MIGRATIONS_TABLE}] ORDER BY rowid").fetchall() == first


def test_a_database_from_an_older_version_gets_the_later_migrations(db_path):
    with Database(db_path) as old:
        MIGRATIONS[0](old)
        old.execute(f"INSERT INTO [{MIGRATIONS_TABLE}] VALUES (?, ?)", [MIGRATIONS[0].__name__, "then"])
    with open_db(db_path) as db:
        rows = db.execute(f"SELECT name, applied_at FROM [{MIGRATIONS_TABLE}] ORDER BY rowid").fetchall()
    assert [name for name, _ in rows] == [fn.__name__ for fn in MIGRATIONS]
    assert rows[0][1] == "then"


def test_a_file_that_is_not_sqlite_is_refused_in_one_line(db_path):
    db_path.write_bytes(b"just some notes, not a database\n" * 100)
    with pytest.raises(StoreError) as exc_info:
        open_db(db_path)
    message = one_line(exc_info)
    assert str(db_path) in message and "not an rlm-tui database" in message and "--db" in message
    w = EventWriter(db_path)
    with pytest.raises(StoreError):
        w.start()
    with pytest.raises(StoreError):
        w.append(run_started())
    assert db_path.read_bytes() == b"just some notes, not a database\n" * 100


def test_a_foreign_sqlite_database_is_refused_and_left_alone(db_path):
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    with pytest.raises(StoreError) as exc_info:
        open_db(db_path)
    message = one_line(exc_info)
    assert str(db_path) in message and "notes" in message and "--db" in message
    with sqlite3.connect(db_path) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["notes"]


def test_a_missing_file_is_not_created_when_create_is_false(db_path):
    with pytest.raises(StoreError) as exc_info:
        open_db(db_path, create=False)
    assert str(db_path) in one_line(exc_info)
    with pytest.raises(StoreError):
        list_runs(db_path)
    assert not db_path.exists()
    db_path.touch()
    with open_db(db_path, create=False) as db:
        assert "events" in db.table_names()


def test_default_db_path(monkeypatch, tmp_path):
    monkeypatch.setenv("RLM_TUI_DB", str(tmp_path / "elsewhere.db"))
    assert default_db_path() == tmp_path / "elsewhere.db"
    monkeypatch.delenv("RLM_TUI_DB")
    assert default_db_path().name == "rlm-tui.db"


def test_prefix_resolution(writer, db_path):
    for run_id in ("abc-1", "abc-10", "abd"):
        writer.append(run_started(run_id))
    for rollout_id in ("ro-a", "ro-b"):
        writer.append(RolloutQueued(run_id="abd", rollout_id=rollout_id, index=0, example_id="e"))
    writer.flush()
    assert resolve_run_id(db_path, "abc-1") == "abc-1"
    assert resolve_run_id(db_path, "abc-10") == "abc-10"
    assert resolve_run_id(db_path, "abd") == resolve_run_id(db_path, "abd") == "abd"
    assert resolve_rollout_id(db_path, "ro-b") == "ro-b"
    with pytest.raises(StoreError) as exc_info:
        resolve_run_id(db_path, "ab")
    assert "matches 3 runs" in one_line(exc_info)
    with pytest.raises(StoreError) as exc_info:
        resolve_run_id(db_path, "zz")
    assert "no run id starts with 'zz'" in one_line(exc_info)
    with pytest.raises(StoreError):
        resolve_run_id(db_path, "  ")
    with pytest.raises(StoreError) as exc_info:
        resolve_rollout_id(db_path, "ro-")
    assert "matches 2 rollouts" in one_line(exc_info)
    with pytest.raises(StoreError):
        resolve_rollout_id(db_path, "abc")


def test_a_write_failure_is_reported_once_by_flush(writer, db_path):
    writer.append(run_started())
    writer.flush()
    with sqlite3.connect(db_path) as other:
        other.execute("DROP TABLE events")
    writer.append(SubCallStarted(run_id="run-1", batch=0, index=0, prompt="p"))
    with pytest.raises(StoreError) as exc_info:
        writer.flush()
    assert "no such table: events" in one_line(exc_info)
    assert "no such table: events" in writer.last_error
    writer.flush()
    with pytest.raises(StoreError) as exc_info:  # closing says the whole loss, and that the run row says it too
        writer.close()
    assert "1 events not stored (sub_call_started 1); the run is marked failed" in one_line(exc_info)
    assert get_run(db_path, "run-1")["status"] == "failed"


def test_unknown_kinds_from_a_newer_writer_are_skipped(writer, db_path):
    writer.append(run_started())
    writer.flush()
    with sqlite3.connect(db_path) as other:
        other.execute(
            "INSERT INTO events (id, run_id, kind, ts, data) VALUES ('x', 'run-1', 'from_the_future', 1.0, '{}')"
        )
    writer.append(RunFinished(run_id="run-1", status="done"))
    writer.flush()
    assert [e.kind for _, e in read_events(db_path, run_id="run-1")] == ["run_started", "run_finished"]


def test_the_store_imports_no_ui():
    code = "import sys, rlm_tui.store; print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


TAIL_CHILD = """
import sys
from rlm_tui.events import RunFinished, RunStarted, SubCallStarted
from rlm_tui.store import EventWriter
path, run_id = sys.argv[1:3]
w = EventWriter(path)
w.start()
print("ready", flush=True)
sys.stdin.readline()
w.append(RunStarted(run_id=run_id, env="e", mode="rlm", model="m", sub_model="s", num_rollouts=1))
for i in range(10):
    w.append(SubCallStarted(run_id=run_id, batch=0, index=i, prompt="p"))
w.flush()
sys.stdin.readline()
for i in range(10, 15):
    w.append(SubCallStarted(run_id=run_id, batch=0, index=i, prompt="p"))
w.append(RunFinished(run_id=run_id, status="done"))
w.close()
"""


def take_events(batches: queue.Queue, count: int) -> list:
    events = []
    while len(events) < count:
        batch = batches.get(timeout=WAIT)
        assert batch is not None, f"tail ended after {len(events)} of {count} events"
        events.extend(event for _, event in batch)
    return events


def test_tail_sees_what_another_process_commits(db_path):
    child = subprocess.Popen(
        [sys.executable, "-c", TAIL_CHILD, str(db_path), "run-1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline() == "ready\n"
        batches: queue.Queue = queue.Queue()

        def consume():
            for batch in tail_events(db_path, run_id="run-1", poll=0.01):
                batches.put(batch)
            batches.put(None)

        threading.Thread(target=consume, daemon=True).start()
        child.stdin.write("go\n")
        child.stdin.flush()
        first = take_events(batches, 11)
        assert [e.kind for e in first] == ["run_started"] + ["sub_call_started"] * 10
        child.stdin.write("go\n")
        child.stdin.flush()
        rest = take_events(batches, 6)
        assert [getattr(e, "index", None) for e in rest] == [10, 11, 12, 13, 14, None]
        assert rest[-1].kind == "run_finished"
        assert batches.get(timeout=WAIT) is None
        assert child.wait(timeout=WAIT) == 0
    finally:
        child.kill()
        child.wait()


KILL_CHILD = """
import sys
from rlm_tui.events import RolloutQueued, RolloutStarted, RunStarted, SubCallStarted
from rlm_tui.store import EventWriter
path, run_id = sys.argv[1:3]
w = EventWriter(path, flush_interval=0.005)
w.start()
w.append(RunStarted(run_id=run_id, env="e", mode="rlm", model="m", sub_model="s", num_rollouts=1))
w.append(RolloutQueued(run_id=run_id, rollout_id="ro-1", index=0, example_id="e"))
w.append(RolloutStarted(run_id=run_id, rollout_id="ro-1", system_prompt="s", user_prompt="u"))
n = 0
while True:
    for _ in range(300):
        w.append(SubCallStarted(run_id=run_id, rollout_id="ro-1", batch=0, index=n, prompt="x" * 200))
        n += 1
    w.flush()
    print(n, flush=True)
"""


def test_sigkill_mid_write_keeps_the_file_whole(db_path):
    child = subprocess.Popen(
        [sys.executable, "-c", KILL_CHILD, str(db_path), "run-1"], stdout=subprocess.PIPE, text=True
    )
    try:
        for _ in range(20):
            line = child.stdout.readline()
            assert line, "the writer child exited early"
    finally:
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=WAIT)
    committed = int((line + out).split()[-1])
    with open_db(db_path, create=False) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    indices = [e.index for _, e in read_events(db_path, run_id="run-1") if e.kind == "sub_call_started"]
    assert len(indices) >= committed >= 20 * 300
    assert indices == list(range(len(indices)))
    run = list_runs(db_path)[0]
    assert (run["id"], run["status"]) == ("run-1", "interrupted")
    assert get_run(db_path, "run-1")["status"] == "interrupted"
    assert get_rollout(db_path, "ro-1")["status"] == "running"


def test_importing_the_store_loads_neither_sqlite_utils_nor_pandas():
    code = (
        "import sys, rlm_tui.store; print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlite_utils', 'pandas'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
