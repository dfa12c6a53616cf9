"""Grids (rlm-tui ablate): every environment x mode x swept setting on the same examples, resumable."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from rlm_tui.env import MODES, EnvError, load_environment
from rlm_tui.store import Database


class GridError(Exception):
    """A grid that cannot run as asked; the message is one line."""


@dataclass(frozen=True)
class Cell:
    env: str
    mode: str
    env_args: dict[str, str] = field(default_factory=dict)
    timeout: float = 120.0

    @property
    def key(self) -> str:
        return json.dumps([self.env, self.mode, sorted(self.env_args.items()), self.timeout])

    def describe(self) -> dict[str, Any]:
        return {"key": self.key, **asdict(self)}


@dataclass(frozen=True)
class GridSpec:
    envs: tuple[str, ...]
    modes: tuple[str, ...]
    num_examples: int
    seed: int = 0
    env_args: dict[str, list[str]] = field(default_factory=dict)  # a knob -> the values to sweep
    timeouts: tuple[float, ...] = (120.0,)
    options: dict[str, Any] = field(default_factory=dict)  # the rest of the run options, the same in every cell

    def cells(self) -> list[Cell]:
        """Every cell, env by env; a swept knob applies to the environments that have it."""
        for mode in self.modes:
            if mode not in MODES:
                raise GridError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
        knobs = {name: {k.name for k in load_environment(name).knobs} for name in self.envs}
        for key in self.env_args:
            if not any(key in names for names in knobs.values()):
                raise GridError(f"no environment in this grid has a knob {key!r}; see `rlm-tui envs`")
        cells = []
        for env in self.envs:
            swept = [k for k in self.env_args if k in knobs[env]]
            for values in itertools.product(*(self.env_args[k] for k in swept)):
                args = dict(zip(swept, values))
                try:
                    load_environment(env, args)
                except EnvError as exc:
                    raise GridError(str(exc)) from None
                for timeout in self.timeouts:
                    for mode in self.modes:
                        cells.append(Cell(env, mode, args, timeout))
        return cells

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GridSpec:
        data = json.loads(text)
        data["envs"], data["modes"], data["timeouts"] = (
            tuple(data["envs"]),
            tuple(data["modes"]),
            tuple(data["timeouts"]),
        )
        return cls(**data)


def save_spec(db: Database, name: str, spec: GridSpec) -> None:
    """Record a new grid, or check that a resumed one asks for the same thing."""
    row = db.execute("SELECT spec FROM grids WHERE name = ?", [name]).fetchone()
    if row is None:
        with db.conn:
            db.execute("INSERT INTO grids (name, created, spec) VALUES (?, ?, ?)", [name, time.time(), spec.to_json()])
    elif GridSpec.from_json(row[0]) != spec:
        raise GridError(
            f"grid {name!r} exists with other settings; resume it with `rlm-tui ablate --resume {name}` "
            "or pick another --name"
        )


def load_spec(db: Database, name: str) -> GridSpec:
    row = db.execute("SELECT spec FROM grids WHERE name = ?", [name]).fetchone()
    if row is None:
        raise GridError(f"no grid named {name!r} in this database; `rlm-tui runs` lists the runs")
    return GridSpec.from_json(row[0])


def grid_names(db: Database) -> list[str]:
    return [r[0] for r in db.execute("SELECT name FROM grids ORDER BY created DESC").fetchall()]


def grid_run_ids(db: Database, name: str) -> list[str]:
    """The runs of a grid in the order they started; GridError for a name no grid and no run has."""
    damaged = db.execute("SELECT id FROM runs WHERE NOT json_valid(config) LIMIT 1").fetchone()
    if damaged:  # json_extract would stop at it with no name; say which row it is
        raise GridError(f"run {damaged[0]}'s config is not JSON, so the runs of grid {name!r} cannot be told apart")
    ids = [
        r[0]
        for r in db.execute(
            "SELECT id FROM runs WHERE json_extract(config, '$.grid') = ? ORDER BY started, rowid", [name]
        ).fetchall()
    ]
    if not ids and db.execute("SELECT 1 FROM grids WHERE name = ?", [name]).fetchone() is None:
        known = grid_names(db)
        listed = f"its grids: {', '.join(map(repr, known[:5]))}" if known else "it holds no grid"
        raise GridError(f"no grid named {name!r} in this database ({listed}{', ...' if len(known) > 5 else ''})")
    return ids


def finished_examples(db: Database, name: str, cell: Cell) -> set[str]:
    """Examples of this cell that some run of the grid already finished (failed or killed ones run again)."""
    rows = db.execute(
        "SELECT r.example_id FROM rollouts r JOIN runs ON runs.id = r.run_id "
        "WHERE json_extract(runs.config, '$.grid') = ? AND json_extract(runs.config, '$.cell.key') = ? "
        "AND r.status = 'done'",
        [name, cell.key],
    ).fetchall()
    return {r[0] for r in rows}


def missing_examples(db: Database, name: str, spec: GridSpec, cell: Cell) -> list[str]:
    env = load_environment(cell.env, cell.env_args)
    done = finished_examples(db, name, cell)
    return [e.id for e in env.examples(spec.num_examples, spec.seed) if e.id not in done]
