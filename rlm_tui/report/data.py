"""The rollouts a report compares, read from the store's projection of the event log."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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

    def m(self, name: str) -> float:
        return float(self.metrics.get(name) or 0.0)

    @property
    def main_tokens(self) -> float:
        return self.m("main_rlm_prompt_tokens") + self.m("main_rlm_completion_tokens")


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
    for rid, run_id, example_id, reward, stop, info, metrics, _, env, mode, model, config in db.execute(
        _SQL.format(where=where), run_ids
    ).fetchall():
        config = json.loads(config or "{}")
        cell = config.get("cell") or {}
        timeout = float(cell.get("timeout") or (config.get("rollout") or {}).get("timeout") or 120.0)
        env_args = cell.get("env_args") or config.get("env_args") or {}
        row = Row(
            run_id=run_id,
            rollout_id=rid,
            env=env,
            mode=mode,
            model=model,
            example_id=example_id,
            reward=float(reward),
            stop_reason=stop or "",
            timeout=timeout,
            info=json.loads(info or "{}"),
            metrics=json.loads(metrics or "{}"),
            env_args=env_args,
        )
        latest[(env, mode, json.dumps(sorted(env_args.items())), timeout, model, example_id)] = row
    return list(latest.values())
