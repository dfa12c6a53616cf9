"""`rlm-tui ablate`: run a grid cell by cell, skipping rollouts a previous attempt finished."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from rlm_tui.grid import GridError, GridSpec, load_spec, missing_examples, save_spec


def _split(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def spec_from_args(args: argparse.Namespace, model: str, sub_model: str, base_url: str | None) -> GridSpec:
    sweeps: dict[str, list[str]] = {}
    for key, value in args.env_arg:
        values = sweeps.setdefault(key, [])
        values.extend(v for v in _split(value) if v not in values)
    try:
        timeouts = tuple(dict.fromkeys(float(t) for t in _split(args.timeout)))
    except ValueError:
        timeouts = ()
    if not timeouts or not all(math.isfinite(t) and 0 < t <= 86_400 for t in timeouts):
        raise GridError(f"--timeout takes seconds up to 86,400, or a comma list of them; got {args.timeout!r}")
    if not args.envs:
        raise GridError("name at least one environment, or --resume a grid")
    return GridSpec(
        envs=tuple(dict.fromkeys(args.envs)), modes=tuple(dict.fromkeys(_split(args.modes))), num_examples=args.num_examples, seed=args.seed,
        env_args=sweeps, timeouts=timeouts,
        options={"model": model, "sub_model": sub_model, "base_url": base_url, "concurrency": args.concurrency,
                 "sub_concurrency": args.sub_concurrency, "max_turns": args.max_turns,
                 "max_output_chars": args.max_output_chars, "memory_mb": args.memory_mb,
                 "request_timeout": args.request_timeout},
    )


def run_grid(db_path: Path, name: str, spec: GridSpec, *, resume: bool) -> int:
    """Run every cell's missing examples; returns the number of runs started."""
    from rlm_tui.cli import queued_commands, make_client
    from rlm_tui.engine.rollout import RolloutSettings
    from rlm_tui.engine.run import Run, RunConfig
    from rlm_tui.env import load_environment
    from rlm_tui.headless import console, err, run_headless
    from rlm_tui.sandbox import Limits
    from rlm_tui.store import EventWriter, open_db

    db = open_db(db_path)
    cells = spec.cells()
    if not resume:
        save_spec(db, name, spec)
    o = spec.options
    writer = EventWriter(db_path)
    writer.start()
    started = 0
    try:
        for number, cell in enumerate(cells, start=1):
            label = f"[{number}/{len(cells)}] {cell.env} {cell.mode} {cell.env_args or ''} timeout {cell.timeout:g}s"
            missing = missing_examples(db, name, spec, cell)
            if not missing:
                err.print(f"{label}: done already", markup=False)
                continue
            env = load_environment(cell.env, cell.env_args)
            client = make_client(env, o["model"], o["base_url"], request_timeout=o.get("request_timeout", 120.0))
            settings = RolloutSettings(mode=cell.mode, model=o["model"], sub_model=o["sub_model"],
                                       max_turns=o["max_turns"], timeout=cell.timeout,
                                       max_output_chars=o["max_output_chars"], sub_concurrency=o["sub_concurrency"],
                                       limits=Limits(memory_mb=o.get("memory_mb", 2048)))
            config = RunConfig(env=cell.env, env_args=cell.env_args, num_examples=spec.num_examples, seed=spec.seed,
                               concurrency=o["concurrency"], base_url=o["base_url"], rollout=settings,
                               example_ids=tuple(missing), grid=name, cell=cell.describe())
            run = Run(config, env, client, sinks=[writer.append], commands=lambda run_id: queued_commands(db, run_id))
            t0 = time.time()
            state = run_headless(run, client)
            started += 1
            mean = state.mean_reward
            done = sum(r.status == "done" for r in state.rollouts.values())
            err.print(f"{label}: {done}/{len(missing)} rollouts done, mean reward "
                      f"{'-' if mean is None else f'{mean:.3f}'}, {time.time() - t0:.1f}s", markup=False)
            if state.status != "done":
                raise GridError(f"run {run.id} {state.status}: {run.error}; resume with `rlm-tui ablate --resume {name}`")
    finally:
        writer.close()
    console.print(f"grid {name}: {len(cells)} cells, {started} runs started; `rlm-tui report {name}` compares them")
    return started


def cmd_ablate(args: argparse.Namespace) -> int:
    from rlm_tui.cli import UserError, db_path_of, resolve_models
    from rlm_tui.store import open_db

    path = Path(db_path_of(args))
    try:
        if args.resume:
            if args.envs:
                raise UserError("--resume runs the grid with its own settings; name no environments with it")
            spec = load_spec(open_db(path, create=False), args.resume)
            run_grid(path, args.resume, spec, resume=True)
            return 0
        model, sub_model, base_url = resolve_models(args)
        spec = spec_from_args(args, model, sub_model, base_url)
        name = args.name or f"grid-{time.strftime('%Y%m%d-%H%M%S')}"
        run_grid(path, name, spec, resume=False)
    except GridError as exc:
        raise UserError(str(exc)) from None
    return 0


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from rlm_tui.cli import _at_most, _checked, _memory, add_request_timeout
    from rlm_tui.env import MAX_EXAMPLES, http_url, seed

    p = sub.add_parser("ablate", parents=[common], help="run environments x modes x settings on the same examples")
    p.add_argument("envs", nargs="*", help="environments, e.g. verbatim-copy oolong")
    p.add_argument("--modes", default="llm,rlm,rlm-tips", help="comma list (default llm,rlm,rlm-tips)")
    p.add_argument("-n", "--num-examples", type=_at_most(MAX_EXAMPLES), default=5, help="examples per cell (default 5)")
    p.add_argument("--seed", type=_checked(seed), default=0, help="example seed, the same in every cell (default 0)")
    p.add_argument("--env-arg", type=_env_sweep, action="append", default=[], metavar="KEY=V1,V2",
                   help="environment knob; a comma list sweeps it, one cell per value (repeatable)")
    p.add_argument("--timeout", default="120", help="seconds per REPL cell; a comma list sweeps it (default 120)")
    p.add_argument("--model", help="root model (default: gpt-5-mini with OPENAI_API_KEY, else scripted)")
    p.add_argument("--sub-model", help="model of the sub-LLMs (default: the root model)")
    p.add_argument("--base-url", type=_checked(http_url),
                   help="OpenAI-compatible http(s) endpoint (default: $OPENAI_BASE_URL, or OpenAI when it is unset or empty)")
    p.add_argument("--concurrency", type=_at_most(256), default=8, help="rollouts at once (default 8)")
    p.add_argument("--sub-concurrency", type=_at_most(1024), default=16, help="sub-LLM calls at once per rollout")
    p.add_argument("--max-turns", type=_at_most(1000), default=30, help="root model calls per rollout (default 30)")
    p.add_argument("--max-output-chars", type=_at_most(1_000_000), default=8192, help="cell output the model sees")
    p.add_argument("--memory-mb", type=_memory, default=2048, help="memory limit of each sandbox (default 2048)")
    add_request_timeout(p)
    p.add_argument("--name", help="the grid's name (default: grid-DATE-TIME)")
    p.add_argument("--resume", metavar="NAME", help="finish an interrupted grid with its own settings")


def _env_sweep(raw: str) -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected key=value or key=v1,v2, got {raw!r}")
    return key.strip(), value.strip()
