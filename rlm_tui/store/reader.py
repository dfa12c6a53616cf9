"""Reading runs, rollouts and events back; each function takes a Database or a path."""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from rlm_tui.events import EVENT_TYPES, Event, from_row
from rlm_tui.text import printable_event

from .database import Database
from .schema import StoreError, open_db

DB = Database | str | Path

_RUN_JSON = ("config",)
_ROLLOUT_JSON = ("info", "target", "answer", "metrics")

_RUNS_SQL = """
SELECT runs.*,
    count(r.id) AS rollouts,
    coalesce(sum(r.status NOT IN ('queued', 'running')), 0) AS ended,
    coalesce(sum(r.status = 'done'), 0) AS done,
    avg(r.reward) AS mean_reward,
    CASE WHEN coalesce(sum(r.status NOT IN ('queued', 'running') AND NOT {priced}), 0) > 0 THEN NULL
        ELSE coalesce(sum(CASE WHEN {priced} THEN json_extract(r.metrics, '$.total_cost_usd') END), 0.0)
    END AS cost_usd
FROM runs LEFT JOIN rollouts AS r ON r.run_id = runs.id
{where}
GROUP BY runs.id
ORDER BY runs.started DESC, runs.rowid DESC
"""

# a rollout whose cost is known: the metrics column is untrusted text, so json_extract only where it is JSON;
# a missing key gives NULL, which would count neither as priced nor as unpriced, so it is made false
_PRICED = "coalesce(json_valid(r.metrics) AND json_type(r.metrics, '$.total_cost_usd') IN ('real', 'integer'), 0)"
_RUNS_SQL = _RUNS_SQL.replace("{priced}", _PRICED)

# Kinds from a newer writer are skipped in SQL, so that seq still advances past them
_KNOWN_KINDS = tuple(EVENT_TYPES)
_KIND_FILTER = f"kind IN ({', '.join('?' * len(_KNOWN_KINDS))})"

# What `printable` would change, as it can appear in a row's JSON text: escaped controls (\u001b, \r, \b, \f),
# escaped or raw DEL, C1 controls and bidi marks. A match may be a false alarm (the full check follows); no miss.
_UNSAFE_JSON = re.compile(
    r"\\u00[01]|\\u007f|\\u00[89]|\\u20(2[a-e]|6[6-9])|\\[bfr]|[\x7f-\x9f\u202a-\u202e\u2066-\u2069]", re.IGNORECASE
)


@contextmanager
def _opened(db: DB) -> Iterator[Database]:
    if isinstance(db, Database):
        yield db
        return
    with closing(open_db(db, create=False)) as opened:
        yield opened


def _decode(row: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    for column in columns:
        if row.get(column) is not None:
            row[column] = json.loads(row[column])
    return row


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _status(status: str, pid: int | None, hostname: str | None) -> str:
    """The stored status, or 'interrupted' when its writer on this host is gone."""
    if status == "running" and pid and hostname == socket.gethostname() and not _pid_alive(pid):
        return "interrupted"
    return status


def _run(row: dict[str, Any]) -> dict[str, Any]:
    row["status"] = _status(row["status"], row["pid"], row["hostname"])
    return _decode(row, _RUN_JSON)


def list_runs(db: DB) -> list[dict[str, Any]]:
    """Every run, newest first, with rollouts (total), ended (no longer queued or running), done, mean_reward and
    cost_usd (of the ended rollouts; None when one's cost is unknown)."""
    with _opened(db) as d:
        return [_run(row) for row in d.query(_RUNS_SQL.format(where=""))]


def get_run(db: DB, run_id: str) -> dict[str, Any] | None:
    """One run with the same counts as list_runs, or None."""
    with _opened(db) as d:
        rows = [_run(row) for row in d.query(_RUNS_SQL.format(where="WHERE runs.id = ?"), [run_id])]
    return rows[0] if rows else None


def latest_run_id(db: DB) -> str | None:
    with _opened(db) as d:
        row = d.execute("SELECT id FROM runs ORDER BY started DESC, rowid DESC LIMIT 1").fetchone()
    return row[0] if row else None


class AmbiguousId(StoreError):
    """A prefix that starts several ids; the user types more of it."""


def _resolve(db: DB, table: str, noun: str, prefix: str, hint: str) -> str:
    prefix = prefix.strip()
    if not prefix:
        raise StoreError(f"no {noun} id given; {hint}")
    with _opened(db) as d:
        sql = f"SELECT id FROM {table} WHERE substr(id, 1, ?) = ? ORDER BY id"
        ids = [row[0] for row in d.execute(sql, [len(prefix), prefix]).fetchall()]
    # an exact id wins over the longer ids it is a prefix of
    if prefix in ids:
        return prefix
    if len(ids) == 1:
        return ids[0]
    if not ids:
        raise StoreError(f"no {noun} id starts with {prefix!r}; {hint}")
    shown = ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")
    raise AmbiguousId(f"{prefix!r} matches {len(ids)} {noun}s ({shown}); type more of the id")


def resolve_run_id(db: DB, prefix: str) -> str:
    """The one run id starting with `prefix`; StoreError when none do, AmbiguousId when several do."""
    return _resolve(db, "runs", "run", prefix, "`rlm-tui runs` lists them")


def resolve_rollout_id(db: DB, prefix: str) -> str:
    """The one rollout id starting with `prefix`; StoreError when none do, AmbiguousId when several do."""
    return _resolve(db, "rollouts", "rollout", prefix, "`rlm-tui show RUN` lists a run's rollouts")


def resolve_run_or_rollout(db: DB, prefix: str, *, rollout_first: bool = False) -> tuple[str, str | None]:
    """(run id, rollout id or None) for a prefix of a run's or a rollout's id; the kind tried first wins."""
    kinds = ("rollout", "run") if rollout_first else ("run", "rollout")
    ambiguous: AmbiguousId | None = None
    with _opened(db) as d:
        for kind in kinds:
            try:
                if kind == "run":
                    return resolve_run_id(d, prefix), None
                rollout_id = resolve_rollout_id(d, prefix)
                row = get_rollout(d, rollout_id)
                if row is None:  # deleted between the two reads
                    raise StoreError(f"no rollout {rollout_id}")
                return row["run_id"], rollout_id
            except AmbiguousId as exc:
                ambiguous = ambiguous or exc
            except StoreError:
                pass
    if ambiguous:  # a prefix of several ids: say so, not that it matches nothing
        raise ambiguous
    raise StoreError(
        f"no {' or '.join(kinds)} id starts with {prefix!r}; `rlm-tui runs` lists the runs, "
        "`rlm-tui show RUN` a run's rollouts"
    )


def list_rollouts(db: DB, run_id: str) -> list[dict[str, Any]]:
    """A run's rollouts in queue order."""
    with _opened(db) as d:
        rows = d.query("SELECT * FROM rollouts WHERE run_id = ? ORDER BY idx, rowid", [run_id])
        return [_decode(row, _ROLLOUT_JSON) for row in rows]


def get_rollout(db: DB, rollout_id: str) -> dict[str, Any] | None:
    with _opened(db) as d:
        rows = list(d.query("SELECT * FROM rollouts WHERE id = ?", [rollout_id]))
    return _decode(rows[0], _ROLLOUT_JSON) if rows else None


def read_events(
    db: DB,
    *,
    run_id: str | None = None,
    rollout_id: str | None = None,
    after_seq: int = 0,
    limit: int | None = None,
    printable: bool = False,
) -> list[tuple[int, Event]]:
    """Stored events as (seq, event), ordered by seq; `printable`: payloads made safe to show on a terminal."""
    where, params = ["seq > ?", _KIND_FILTER], [after_seq, *_KNOWN_KINDS]
    if run_id is not None:
        where.append("run_id = ?")
        params.append(run_id)
    if rollout_id is not None:
        where.append("rollout_id = ?")
        params.append(rollout_id)
    sql = f"SELECT seq, kind, run_id, rollout_id, id, parent_id, ts, data FROM events WHERE {' AND '.join(where)} ORDER BY seq"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    with _opened(db) as d:
        rows = d.execute(sql, params).fetchall()
    # one parse of all the rows' JSON as one array: the decoder's cost per call is most of a small row's
    text = "[" + ",".join(row[7] for row in rows) + "]"
    payloads = json.loads(text) if rows else []
    if len(payloads) != len(rows):  # a row that is not one JSON value (a file written by hand): each on its own
        payloads = [json.loads(row[7]) for row in rows]
    # most reads hold nothing to spell out, and their text says so; a row's text can carry into the next one's
    # payload (`{..},{"x":"\u001b` then `.."}`), so a read with anything to spell out is spelled out whole
    check = printable and _UNSAFE_JSON.search(text) is not None
    out = []
    for (seq, kind, run, rollout, id_, parent, ts, _), payload in zip(rows, payloads):
        e = from_row(kind, {"run_id": run, "rollout_id": rollout, "id": id_, "parent_id": parent, "ts": ts}, payload)
        out.append((seq, printable_event(e) if check else e))
    return out


def run_over(db: Database, run_id: str) -> bool:
    """Whether a run has ended: finished, or its writer on this host is gone (one row, no counting)."""
    row = db.execute("SELECT status, pid, hostname FROM runs WHERE id = ?", [run_id]).fetchone()
    return row is not None and _status(*row) != "running"
