"""`rlm-tui export` of a whole grid and of several runs, over a store made by a real offline `ablate` and `run`."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import pytest

from rlm_tui.export import ExportError, stored_records
from rlm_tui.store import open_db

RLM_TUI = str(Path(sys.executable).parent / "rlm-tui")
ENVS = ("verbatim-copy", "oolong")
MODES = ("llm", "rlm")
LENGTHS = ("100", "300")  # verbatim-copy's target_length; oolong has no such knob
TIMEOUTS = (30.0, 60.0)
N = 2
# verbatim-copy: 2 lengths x 2 timeouts x 2 modes; oolong: 2 timeouts x 2 modes
CELLS = [("verbatim-copy", m, t, length) for length in LENGTHS for t in TIMEOUTS for m in MODES] + [
    ("oolong", m, t, None) for t in TIMEOUTS for m in MODES
]


class Store(NamedTuple):
    path: Path
    run_id: str  # a run of `rlm-tui run`, no cell of a grid


def rlm_tui(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RLM_TUI_"))}
    proc = subprocess.run([RLM_TUI, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def build_store(where: Path) -> Store:
    """A grid `g` of 12 cells of 2 examples each, then one plain run of 3 rollouts, all offline."""
    sweep = ["--modes", ",".join(MODES), "-n", str(N), "--env-arg", f"target_length={','.join(LENGTHS)}"]
    rlm_tui(where, "ablate", *ENVS, *sweep, "--timeout", "30,60", "--name", "g", "--db", "s.db")
    run = rlm_tui(
        where, "run", "verbatim-copy", "--headless", "-n", "3", "--env-arg", "target_length=200", "--db", "s.db"
    )
    return Store(where / "s.db", run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    return build_store(tmp_path_factory.mktemp("export"))


def exported(store: Store, *args: str) -> list[dict]:
    out = rlm_tui(store.path.parent, "export", "--db", str(store.path), *args).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_a_grid_exports_one_record_per_cell_and_example_with_its_swept_settings(store):
    records = exported(store, "--grid", "g")
    assert len(records) == len(CELLS) * N == 24
    assert len({r["run_id"] for r in records}) == 12 and {r["grid"] for r in records} == {"g"}
    places = Counter((r["env"], r["mode"], r["timeout"], r.get("env_args.target_length")) for r in records)
    assert places == Counter({cell: N for cell in CELLS})
    for r in records:
        if r["env"] == "verbatim-copy":  # the environment's own record of the knob agrees with the cell's
            assert r["info"]["target_length"] == int(r["env_args.target_length"])
        else:
            assert not any(k.startswith("env_args.") for k in r)
    labels = Counter(r["cell"] for r in records)
    assert len(labels) == 12 and set(labels.values()) == {N}
    assert labels["verbatim-copy rlm target_length=300 timeout=60s"] == N and labels["oolong llm timeout=30s"] == N
    assert {r["example_id"] for r in records if r["env"] == "verbatim-copy"} == {"vc-0-0", "vc-0-1"}


def test_pandas_groups_an_exported_grid_by_cell_and_swept_value_with_no_join(store, tmp_path):
    pandas = pytest.importorskip("pandas")
    out = tmp_path / "grid.jsonl"
    done = rlm_tui(tmp_path, "export", "--db", str(store.path), "--grid", "g", "-o", str(out))
    assert done.stderr.strip() == f"wrote 24 rollouts of 12 runs to {out}"
    df = pandas.read_json(out, lines=True, dtype=False)
    assert df.groupby("cell").size().tolist() == [N] * 12
    by_value = df.groupby(["env_args.target_length", "mode"]).size()
    assert by_value.to_dict() == {(length, m): 4 for length in LENGTHS for m in MODES}
    assert df.groupby("timeout").size().to_dict() == {30.0: 12, 60.0: 12}


def test_the_csv_of_a_grid_has_the_cell_and_swept_settings_as_columns(store):
    table = rlm_tui(store.path.parent, "export", "--db", str(store.path), "--grid", "g", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(table)))
    assert len(rows) == 24
    header = list(rows[0])
    assert header[:7] == ["run_id", "grid", "cell", "rollout_id", "env", "mode", "timeout"]
    assert header.index("env_args.target_length") < header.index("info.content_type") < header.index("metrics.exact")
    assert Counter((r["mode"], r["timeout"], r["env_args.target_length"]) for r in rows) == Counter(
        {(m, f"{t}", length or ""): N for _, m, t, length in CELLS}
    )


def test_several_runs_and_a_grid_export_each_run_once_in_the_order_named(store):
    grid_run = exported(store, "--grid", "g")[0]["run_id"]
    records = exported(store, store.run_id[:8], grid_run, "--grid", "g")
    assert len(records) == 3 + 24 and len({r["rollout_id"] for r in records}) == 27
    assert [r["run_id"] for r in records[:5]] == [store.run_id] * 3 + [grid_run] * 2
    plain = records[0]
    assert plain["grid"] is None and plain["cell"] is None
    assert plain["timeout"] == 120.0 and plain["env_args.target_length"] == "200"
    assert exported(store)[0]["run_id"] == store.run_id  # no name: the latest run, as before


@pytest.mark.parametrize(
    "args, told",
    [
        (["--grid", "nope"], "no grid named 'nope' in this database (its grids: 'g')"),
        (["--grid", "g", "--grid", "nope"], "no grid named 'nope'"),
        (["abc123"], "no run id starts with 'abc123'"),
        (["g"], "'g' is a grid, not a run; export it with `rlm-tui export --grid g`"),
    ],
)
def test_a_name_that_matches_nothing_is_one_line_naming_it(store, args, told):
    proc = rlm_tui(store.path.parent, "export", "--db", str(store.path), *args, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and told in proc.stderr


def test_a_reader_that_stops_early_ends_the_export_quietly(store):
    whole = rlm_tui(store.path.parent, "export", "--db", str(store.path), "--grid", "g").stdout
    assert len(whole) > 3 * 65536  # more than a pipe holds: the export must meet the closed pipe
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RLM_TUI_"))}
    proc = subprocess.Popen(
        [RLM_TUI, "export", "--db", str(store.path), "--grid", "g"],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["grid"] == "g"
    proc.stdout.close()  # as `| head -1` does
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == b""


def damage(store: Store, tmp_path: Path, sql: str) -> Path:
    copy = tmp_path / "damaged.db"
    shutil.copy(store.path, copy)
    with sqlite3.connect(copy) as conn:
        conn.execute(sql)
    conn.close()
    return copy


LAST_GRID_RUN = "(SELECT id FROM runs WHERE json_extract(config, '$.grid') = 'g' ORDER BY started DESC LIMIT 1)"


@pytest.mark.parametrize(
    "sql, told",
    [
        ("UPDATE runs SET config = '{not json' WHERE id = " + LAST_GRID_RUN, "'s config is not JSON"),
        (
            "UPDATE events SET data = '{not json' WHERE kind = 'rollout_finished' AND run_id = " + LAST_GRID_RUN,
            "cannot be exported, its rows are damaged: JSONDecodeError",
        ),
        (
            "UPDATE events SET data = json_set(data, '$.config.cell', 'x') WHERE kind = 'run_started' "
            "AND run_id = " + LAST_GRID_RUN,
            '\'s grid record is damaged: grid "g", cell "x"',
        ),
        (
            "UPDATE events SET data = json_set(data, '$.config.cell.timeout', 'soon') WHERE kind = 'run_started' "
            "AND run_id = " + LAST_GRID_RUN,
            '\'s cell timeout is damaged: "soon"',
        ),
        (
            "UPDATE events SET data = json_set(data, '$.info', json('[1]')) WHERE kind = 'rollout_queued' "
            "AND run_id = " + LAST_GRID_RUN,
            "'s info is damaged: [1]",
        ),
        (
            "UPDATE events SET data = json_remove(data, '$.env') WHERE kind = 'run_started' AND run_id = "
            + LAST_GRID_RUN,
            "missing 1 required keyword-only argument: 'env'",
        ),
    ],
)
def test_a_damaged_store_fails_the_export_with_one_line_and_no_partial_file(store, tmp_path, sql, told):
    copy = damage(store, tmp_path, sql)
    out = tmp_path / "out.jsonl"
    proc = rlm_tui(tmp_path, "export", "--db", str(copy), "--grid", "g", "-o", str(out), check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and told in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("rlm-tui: error: ") and not out.exists()


def test_records_come_run_by_run_so_a_grid_is_never_read_whole(store, tmp_path):
    copy = damage(store, tmp_path, "UPDATE events SET data = '{not json' WHERE run_id = " + LAST_GRID_RUN)
    with sqlite3.connect(copy) as conn:
        runs = conn.execute(
            "SELECT id FROM runs WHERE json_extract(config, '$.grid') = 'g' ORDER BY started"
        ).fetchall()
    conn.close()
    first, last = runs[0][0], runs[-1][0]
    db = open_db(copy, create=False)
    records = stored_records(db, [first, last])
    given = [next(records), next(records)]  # the first run's two, given before the damaged run is read
    assert [r["run_id"] for r in given] == [first] * 2
    with pytest.raises(ExportError, match=f"run {last} cannot be exported"):
        next(records)
    db.close()
