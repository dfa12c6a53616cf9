"""Every SQL query docs/querying.md shows, run against a store made by a real offline `ablate` and `run`, with its
answer counted by hand or read back through `rlm-tui export`, so that the docs cannot drift from the schema."""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from rlm_tui.export import stored_records
from rlm_tui.store import open_db, send_command
from rlm_tui.store.schema import MIGRATIONS
from test_export import CELLS, MODES, TIMEOUTS, N, Store, build_store

DOC = Path(__file__).resolve().parent.parent / "docs" / "querying.md"
QUERIES = {
    block.splitlines()[0].removeprefix("-- "): block
    for block in re.findall(r"^```sql\n(.*?)^```", DOC.read_text(), flags=re.DOTALL | re.MULTILINE)
}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    built = build_store(tmp_path_factory.mktemp("queries"))
    db = open_db(built.path)
    send_command(db, built.run_id, "pause")  # a run that has ended never takes it
    db.close()
    return built


@pytest.fixture(scope="module")
def records(store) -> list[dict]:
    db = open_db(store.path, create=False)
    grid_runs = [r[0] for r in db.execute("SELECT id FROM runs WHERE json_extract(config, '$.grid') = 'g'")]
    found = list(stored_records(db, [store.run_id, *grid_runs]))
    db.close()
    return found


def run(store: Store, title: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(store.path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(QUERIES[title], {"grid": "g", "run": store.run_id, "value": "300"}).fetchall()
    finally:
        conn.close()


def grids(store, records):
    (row,) = run(store, "the grids: what each one sweeps, and how far it got")
    assert (row["name"], row["modes"], row["env_args"], row["timeouts"]) == (
        "g",
        '["llm","rlm"]',
        '{"target_length":["100","300"]}',
        "[30.0,60.0]",
    )
    assert (row["examples"], row["runs"], row["done"]) == (N, 12, 24)


def reward_per_cell(store, records):
    rows = run(store, "mean reward per grid cell")
    expected = {(env, m, f'{{"target_length":"{length}"}}' if length else "{}", t) for env, m, t, length in CELLS}
    assert {(r["env"], r["mode"], r["env_args"], r["timeout"]) for r in rows} == expected
    assert [r["rollouts"] for r in rows] == [N] * 12
    by_cell: dict[tuple, list[float]] = {}
    for record in records:
        if record["grid"] == "g":
            place = (record["env"], record["mode"], record["timeout"], record.get("env_args.target_length"))
            by_cell.setdefault(place, []).append(record["reward"])
    for r in rows:
        rewards = by_cell[(r["env"], r["mode"], r["timeout"], json.loads(r["env_args"]).get("target_length"))]
        assert len(rewards) == N and r["mean_reward"] == round(sum(rewards) / N, 3)


def one_swept_value(store, records):
    rows = run(store, "the rollouts of one swept value (here of the knob target_length), in every mode and timeout")
    assert {r["target_length"] for r in rows} == {300}
    assert Counter((r["mode"], r["timeout"]) for r in rows) == Counter({(m, t): N for m in MODES for t in TIMEOUTS})


def reward_per_env_and_mode(store, records):
    rows = run(store, "mean reward of the finished rollouts, per environment and mode, over every run")
    counts = {(r["env"], r["mode"]): r["rollouts"] for r in rows}
    # verbatim-copy: 2 lengths x 2 timeouts x 2 examples per mode, and the plain run's 3 in rlm
    assert counts == {
        ("oolong", "llm"): 4,
        ("oolong", "rlm"): 4,
        ("verbatim-copy", "llm"): 8,
        ("verbatim-copy", "rlm"): 11,
    }


def runs_newest_first(store, records):
    rows = run(store, "the runs, newest first")
    assert len(rows) == 13 and (rows[0]["id"], rows[0]["grid"]) == (store.run_id, None)
    assert [r["grid"] for r in rows[1:]] == ["g"] * 12 and {r["status"] for r in rows} == {"done"}


def a_runs_metrics(store, records):
    rows = run(store, "a run's rollouts with two of their metrics")
    plain = [r for r in records if r["run_id"] == store.run_id]
    assert [(r["example_id"], r["turns"], r["sub_calls"]) for r in rows] == [
        (p["example_id"], p["metrics"]["main_rlm_turns"], len(p["sub_llm_calls"])) for p in plain
    ]
    assert len(rows) == 3


def reward_by_info_field(store, records):
    rows = run(store, "reward by one of the environment's info fields")
    plain = Counter(r["info"]["content_type"] for r in records if r["run_id"] == store.run_id)
    assert {r["content_type"]: r["n"] for r in rows} == plain and sum(plain.values()) == 3


def operator_commands(store, records):
    rows = run(store, "the operator's commands and whether the engine took them")
    assert [(r["action"], r["rollout_id"], r["taken"]) for r in rows] == [("pause", None, 0)]


def events_by_kind(store, records):
    counts = {r["kind"]: r["n"] for r in run(store, "what happened, by kind of event")}
    assert counts["run_started"] == counts["run_finished"] == 13 and counts["rollout_finished"] == 27


def cells_of_a_run(store, records):
    rows = run(store, "every cell of a run: how much it printed, how much of it the model saw, how long it took")
    plain = [r for r in records if r["run_id"] == store.run_id]
    from_export = [(i, t["output_chars"]) for i, p in enumerate(plain) for t in p["turns"] if t["code"] is not None]
    assert sorted((r["idx"], r["output_chars"]) for r in rows) == sorted(from_export) and len(rows) >= 3
    assert all(r["shown_chars"] <= r["output_chars"] for r in rows)


def migrations(store, records):
    rows = run(store, "the schema migrations this file has had")
    assert [r["name"] for r in rows] == [fn.__name__ for fn in MIGRATIONS]


CHECKS = {
    "the grids: what each one sweeps, and how far it got": grids,
    "mean reward per grid cell": reward_per_cell,
    "the rollouts of one swept value (here of the knob target_length), in every mode and timeout": one_swept_value,
    "mean reward of the finished rollouts, per environment and mode, over every run": reward_per_env_and_mode,
    "the runs, newest first": runs_newest_first,
    "a run's rollouts with two of their metrics": a_runs_metrics,
    "reward by one of the environment's info fields": reward_by_info_field,
    "the operator's commands and whether the engine took them": operator_commands,
    "what happened, by kind of event": events_by_kind,
    "every cell of a run: how much it printed, how much of it the model saw, how long it took": cells_of_a_run,
    "the schema migrations this file has had": migrations,
}


def test_every_documented_query_has_a_check():
    assert len(QUERIES) >= 4 and set(QUERIES) == set(CHECKS)


@pytest.mark.parametrize("title", sorted(CHECKS))
def test_a_documented_query_gives_the_counted_answer(store, records, title):
    CHECKS[title](store, records)


def test_every_table_of_the_store_is_documented(store):
    conn = sqlite3.connect(store.path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")} - {"sqlite_sequence"}
    columns = {t: {r[1] for r in conn.execute(f"PRAGMA table_info([{t}])")} for t in tables}
    conn.close()
    text = DOC.read_text()
    for table, names in columns.items():
        assert f"`{table}`" in text
        for name in names:
            assert f"`{name}`" in text, f"{table}.{name} is not in {DOC.name}"
