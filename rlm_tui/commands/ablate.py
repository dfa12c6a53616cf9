"""`rlm-tui ablate`: run a grid cell by cell, skipping rollouts a previous attempt finished."""

from __future__ import annotations

import argparse
import time
from contextlib import closing
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

from rlm_tui.commands.common import UserError, db_path_of
from rlm_tui.commands.options import AXES, RunOptions, add_run_options

if TYPE_CHECKING:
    from rlm_tui.grid import Cell, GridSpec

SPEC_FIELDS = ("num_examples", "seed")  # run options the grid spec holds itself, not among its options


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("ablate", parents=[common], help="run environments x modes x settings on the same examples")
    p.add_argument("envs", nargs="*", help="environments, e.g. verbatim-copy oolong")
    add_run_options(p, sweeps=True)
    p.add_argument("--name", help="the grid's name (default: grid-DATE-TIME)")
    p.add_argument("--resume", metavar="NAME", help="finish an interrupted grid with its own settings")
    p.set_defaults(handler=cmd_ablate)


def spec_from_args(args: argparse.Namespace, options: RunOptions) -> GridSpec:
    """The grid the arguments ask for; `options`: the run options, resolved, the same in every cell."""
    from rlm_tui.grid import GridError, GridSpec

    sweeps: dict[str, list[str]] = {}
    for key, values in args.env_arg:
        swept = sweeps.setdefault(key, [])
        swept.extend(v for v in values if v not in swept)
    if not args.envs:
        raise GridError("name at least one environment, or --resume a grid")
    shared = {k: v for k, v in asdict(options).items() if k not in AXES + SPEC_FIELDS}
    return GridSpec(
        envs=tuple(dict.fromkeys(args.envs)),
        modes=args.mode,
        num_examples=options.num_examples,
        seed=options.seed,
        env_args=sweeps,
        timeouts=args.timeout,
        options=shared,
    )


def cell_options(spec: GridSpec, cell: Cell) -> RunOptions:
    """The run options of one cell: the grid's shared options and the cell's place on each axis."""
    shared = RunOptions.from_dict({**spec.options, "num_examples": spec.num_examples, "seed": spec.seed})
    return replace(shared, mode=cell.mode, timeout=cell.timeout, env_arg=tuple(cell.env_args.items()))


def run_grid(db_path: Path, name: str, spec: GridSpec, *, resume: bool) -> int:
    """Run every cell's missing examples; returns the number of runs started."""
    from rlm_tui.commands.recorded import recording
    from rlm_tui.commands.run import check_cluster
    from rlm_tui.env import load_environment
    from rlm_tui.grid import GridError, missing_examples, save_spec
    from rlm_tui.headless import console, err

    started = 0
    with recording(db_path) as recorder:
        cells = spec.cells()
        if not resume:
            save_spec(recorder.db, name, spec)
        for number, cell in enumerate(cells, start=1):
            label = f"[{number}/{len(cells)}] {cell.env} {cell.mode} {cell.env_args or ''} timeout {cell.timeout:g}s"
            missing = missing_examples(recorder.db, name, spec, cell)
            if not missing:
                err.print(f"{label}: done already", markup=False)
                continue
            env = load_environment(cell.env, cell.env_args)
            options = cell_options(spec, cell)
            client = options.client(env)
            config = options.run_config(cell.env, example_ids=tuple(missing), grid=name, cell=cell.describe())
            if config.executor == "ray":
                check_cluster(config)
            t0 = time.time()
            run, state = recorder.run(config, env, client)
            started += 1
            mean = state.mean_reward
            done = sum(r.status == "done" for r in state.rollouts.values())
            err.print(
                f"{label}: {done}/{len(missing)} rollouts done, mean reward "
                f"{'-' if mean is None else f'{mean:.3f}'}, {time.time() - t0:.1f}s",
                markup=False,
            )
            if state.status != "done":
                raise GridError(
                    f"run {run.id} {state.status}: {run.error}; resume with `rlm-tui ablate --resume {name}`"
                )
    console.print(f"grid {name}: {len(cells)} cells, {started} runs started; `rlm-tui report {name}` compares them")
    return started


def cmd_ablate(args: argparse.Namespace) -> int:
    from rlm_tui.grid import GridError, load_spec
    from rlm_tui.store import open_db

    path = Path(db_path_of(args))
    try:
        if args.resume:
            if args.envs:
                raise UserError("--resume runs the grid with its own settings; name no environments with it")
            with closing(open_db(path, create=False)) as db:
                spec = load_spec(db, args.resume)
            run_grid(path, args.resume, spec, resume=True)
            return 0
        options = RunOptions.from_args(args, without=AXES).resolved()  # the axes are the spec's, cell by cell
        spec = spec_from_args(args, options)
        name = args.name or f"grid-{time.strftime('%Y%m%d-%H%M%S')}"
        run_grid(path, name, spec, resume=False)
    except GridError as exc:
        raise UserError(str(exc)) from None
    return 0
