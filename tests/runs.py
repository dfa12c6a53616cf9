"""Real runs and event logs in temporary databases, for tests and benchmarks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from rlm_tui.engine.rollout import RolloutSettings
from rlm_tui.engine.run import Run, RunConfig
from rlm_tui.engine.scripted import ScriptedClient
from rlm_tui.engine.simulated import Simulation
from rlm_tui.env import Environment
from rlm_tui.events import Event
from rlm_tui.state import RunState, fold
from rlm_tui.store import EventWriter, open_db, read_events, run_over

TAIL_BATCH = 2000


def strategy_client(env: Environment) -> ScriptedClient:
    """The scripted model that never slips: it plays the environment's strategy exactly, for tests of that strategy."""
    return ScriptedClient(env, simulation=Simulation(errors=0))


def stored_run(
    tmp_path: Path, env: Environment, client: Any = None, *, mode: str = "rlm", n: int = 1, **settings: Any
) -> tuple[RunState, RunState]:
    """(the engine's own state, the state folded from the database); the never-slipping scripted model unless a
    client is given."""
    client = client or strategy_client(env)
    scripted = isinstance(client, ScriptedClient)
    settings.setdefault("timeout", 30)
    settings.setdefault("model", "scripted" if scripted else "fake-root")
    settings.setdefault("sub_model", "scripted" if scripted else "fake-sub")
    db = tmp_path / "t.db"
    writer = EventWriter(db)
    writer.start()
    config = RunConfig(
        env=env.name,
        env_args={k: str(v) for k, v in env.args.items()},
        num_examples=n,
        rollout=RolloutSettings(mode=mode, **settings),
    )
    run = Run(config, env, client, [writer.append])

    async def main() -> RunState:
        try:
            return await run.execute()
        finally:
            await client.close()

    state = asyncio.run(main())
    writer.close()
    return state, fold([e for _, e in read_events(open_db(db), run_id=run.id)], run.id)


def store_events(path: Path, events: list[Any]) -> Path:
    """Write `events` to a database at `path` through the real writer."""
    writer = EventWriter(path)
    writer.start()
    for e in events:
        writer.append(e)
    writer.close()
    return path


def tail_events(
    path: str | Path, *, run_id: str, after_seq: int = 0, poll: float = 0.1
) -> Iterator[list[tuple[int, Event]]]:
    """Yield each new batch of a run's events as another process commits them.

    Ends once every event is yielded and the run is over: finished, or its writer on this host is gone.
    """
    with closing(open_db(path, create=False)) as db:
        while True:
            # checked before reading: run_finished commits with the final status, so nothing can follow it
            over = run_over(db, run_id)
            batch = read_events(db, run_id=run_id, after_seq=after_seq, limit=TAIL_BATCH)
            if batch:
                after_seq = batch[-1][0]
                yield batch
            elif over:
                return
            else:
                time.sleep(poll)
