"""The rollouts a report compares, read from the store's projection of the event log."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

from rlm_tui.grid import grid_names
from rlm_tui.store import Database


class ReportError(Exception):
    """Nothing to report, or a name that matches nothing; the message is one line."""


@dataclass(frozen=True)
class Row:
    """One finished rollout, as a report sees it."""

    run_id: str
    rollout_id: str
    env: str
    mode: str
    model: str
    example_id: str
    reward: float
    stop_reason: str
    timeout: float
    info: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    env_args: dict[str, Any] = field(default_factory=dict)
    data_note: str = ""  # the run's word on its data ("" for real data), shown in every title
    part: str = ""  # the value of the --by info key, when the tables are broken down by one
    fork: tuple[str, int] | None = None  # (parent rollout id, turn) when this rollout is a fork of another
    parent_reward: float | None = None  # that parent's reward, when it has one

    def m(self, name: str) -> float:
        value = self.metrics.get(name)
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0.0

    @property
    def main_tokens(self) -> float:
        return self.m("main_rlm_prompt_tokens") + self.m("main_rlm_completion_tokens")

    @property
    def cost(self) -> float | None:
        """USD for the rollout's calls; None when its cost is unknown (an unpriced model), never zero."""
        value = self.metrics.get("total_cost_usd")
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
        return float(value) if ok else None

    @property
    def tokens(self) -> float:
        """Main-model and sub-LLM tokens together, prompt and completion."""
        return self.main_tokens + self.m("sub_llm_prompt_tokens") + self.m("sub_llm_completion_tokens")


_SQL = """
SELECT r.id, r.run_id, r.example_id, r.reward, r.stop_reason, r.info, r.metrics, r.finished,
       runs.env, runs.mode, runs.model, runs.config
FROM rollouts r JOIN runs ON runs.id = r.run_id
WHERE r.status = 'done' AND r.reward IS NOT NULL AND {where}
ORDER BY r.finished
"""


def resolve(db: Database, names: list[str]) -> tuple[str, list[str]]:
    """Grid names and run-id prefixes -> a title and the run ids; no names: the newest grid, else the newest run."""
    from rlm_tui.store import AmbiguousId, StoreError, latest_run_id, resolve_run_id

    if not names:
        grids = grid_names(db)
        if grids:
            names = [grids[0]]
        else:
            latest = latest_run_id(db)
            if latest is None:
                raise ReportError(
                    "the database holds no runs yet; start with `rlm-tui ablate ENV` or `rlm-tui run ENV`"
                )
            names = [latest]
    run_ids: list[str] = []
    for name in names:
        in_grid = [
            r[0]
            for r in db.execute(
                "SELECT id FROM runs WHERE json_extract(config, '$.grid') = ? ORDER BY started", [name]
            ).fetchall()
        ]
        if in_grid:
            run_ids += in_grid
            continue
        try:
            run_ids.append(resolve_run_id(db, name))
        except AmbiguousId as exc:
            raise ReportError(str(exc)) from None
        except StoreError:
            raise ReportError(
                f"{name!r} is neither a grid nor a run in this database; `rlm-tui runs` lists them"
            ) from None
    return ", ".join(names), run_ids


def load_rows(db: Database, run_ids: list[str]) -> list[Row]:
    """Finished rollouts of these runs; when a cell ran an example twice (a resumed grid), the last one counts."""
    if not run_ids:
        return []
    where = f"r.run_id IN ({', '.join('?' * len(run_ids))})"
    latest: dict[tuple, Row] = {}
    configs: dict[str, tuple[float, dict[str, Any], str]] = {}  # one parse per run, not per rollout
    for rid, run_id, example_id, reward, stop, info, metrics, _, env, mode, model, config in db.execute(
        _SQL.format(where=where), run_ids
    ).fetchall():
        if run_id not in configs:
            configs[run_id] = _cell_of(_object(config))
        timeout, env_args, note, fork = configs[run_id]
        if not isinstance(reward, (int, float)) or not math.isfinite(reward):
            continue  # a damaged row: left out rather than failing the report
        row = Row(
            run_id=run_id,
            rollout_id=rid,
            env=str(env),
            mode=str(mode),
            model=str(model),
            example_id=str(example_id),
            reward=float(reward),
            stop_reason=str(stop or ""),
            timeout=timeout,
            info=_object(info),
            metrics=_object(metrics),
            env_args=env_args,
            data_note=note,
            fork=fork,
        )
        latest[
            (row.env, row.mode, json.dumps(sorted(env_args.items()), default=str), timeout, row.model, example_id, fork)
        ] = row
    return _with_parent_rewards(db, list(latest.values()))


def _with_parent_rewards(db: Database, rows: list[Row]) -> list[Row]:
    parents = sorted({r.fork[0] for r in rows if r.fork is not None})
    if not parents:
        return rows
    found = db.execute(
        f"SELECT id, reward FROM rollouts WHERE id IN ({', '.join('?' * len(parents))})", parents
    ).fetchall()
    rewards = {i: float(w) for i, w in found if isinstance(w, (int, float)) and math.isfinite(w)}
    return [replace(r, parent_reward=rewards.get(r.fork[0])) if r.fork is not None else r for r in rows]


def studied(rows: list[Row]) -> list[Row]:
    """The rows the mode comparisons use: forks are interventions on one example, kept to their own table
    (unless the report holds nothing else)."""
    return [r for r in rows if r.fork is None] or rows


MAX_NOTE = 200  # characters of a data note a title shows


def _object(text: Any) -> dict[str, Any]:
    """A JSON object from the store, or {} for anything else: the file is untrusted."""
    try:
        value = json.loads(text) if isinstance(text, (str, bytes)) else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _cell_of(config: dict[str, Any]) -> tuple[float, dict[str, Any], str, tuple[str, int] | None]:
    """(cell timeout, cell env args, data note, fork lineage) from a run's config, with defaults for old or odd
    runs."""
    cell = config.get("cell") if isinstance(config.get("cell"), dict) else {}
    rollout = config.get("rollout") if isinstance(config.get("rollout"), dict) else {}
    raw = cell.get("timeout") or rollout.get("timeout") or 120.0
    timeout = float(raw) if isinstance(raw, (int, float)) and math.isfinite(raw) and raw > 0 else 120.0
    env_args = cell.get("env_args") or config.get("env_args") or {}
    note = config.get("data_note")
    lineage = config.get("forked_from") if isinstance(config.get("forked_from"), dict) else {}
    parent, turn = lineage.get("rollout_id"), lineage.get("turn")
    return (
        timeout,
        env_args if isinstance(env_args, dict) else {},
        " ".join(note.split())[:MAX_NOTE] if isinstance(note, str) else "",
        (parent[:64], turn) if isinstance(parent, str) and isinstance(turn, int) else None,
    )


def with_part(rows: list[Row], key: str) -> list[Row]:
    """The rows broken down by the info field `key` (e.g. question_type): "-" where an example has none."""
    return [replace(r, part=str(r.info.get(key, "-"))[:80]) for r in rows]
