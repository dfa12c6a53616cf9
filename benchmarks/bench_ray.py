"""The local executor against `--executor ray` on a 2-node Ray cluster on this machine: same rollouts, same server."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_stress import FANOUT, respond  # noqa: E402
from fake_openai import FakeOpenAIProcess  # noqa: E402
from rlm_tui.engine.clients import OpenAIClient  # noqa: E402
from rlm_tui.engine.rollout import RolloutSettings  # noqa: E402
from rlm_tui.engine.run import Run, RunConfig  # noqa: E402
from rlm_tui.env import load_environment  # noqa: E402
from rlm_tui.sandbox import Limits  # noqa: E402
from rlm_tui.store import EventWriter, open_db  # noqa: E402
from table import row  # noqa: E402

NODES = 2


async def one_run(config: RunConfig, base_url: str, db: Path) -> tuple[float, float, Run]:
    """(seconds, this process's CPU seconds, the Run) of one whole run into its own store."""
    env = load_environment("verbatim-copy", {"target_length": "100"})
    client = OpenAIClient(base_url=base_url, api_key="k")
    writer = EventWriter(db)
    writer.start()
    run = Run(config, env, client, [writer.append])
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        await run.execute()
    finally:
        await client.close()
        writer.close()
    return time.perf_counter() - t0, time.process_time() - c0, run


def stored_events(db: Path) -> int:
    return int(open_db(db).execute("SELECT count(*) FROM events").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rollouts", type=int, default=1024)
    parser.add_argument("--concurrency", type=int, default=64, help="rollouts at once in all (default 64)")
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    import ray
    from ray.cluster_utils import Cluster

    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH")])
    )
    settings = RolloutSettings(
        mode="rlm", model="m", sub_model="m", sub_concurrency=FANOUT, timeout=60, limits=Limits(memory_mb=512)
    )
    local = RunConfig(
        env="verbatim-copy",
        num_examples=args.rollouts,
        concurrency=args.concurrency,
        rollout=settings,
        stall_seconds=60,
    )
    on_ray = replace(local, executor="ray", concurrency=args.concurrency // NODES)  # concurrency is per worker
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 100 * 2**20})
    for _ in range(NODES):
        cluster.add_node(num_cpus=1, object_store_memory=100 * 2**20, resources={"nsjail": 1})
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    out = {}
    try:
        with tempfile.TemporaryDirectory() as tmp, FakeOpenAIProcess(respond, latency=args.latency) as server:
            for name, config in (("local", local), ("ray", on_ray)):
                db = Path(tmp) / f"{name}.db"
                seconds, cpu, run = asyncio.run(one_run(config, server.base_url, db))
                done = sum(r.status == "done" for r in run.state.rollouts.values())
                out[name] = (seconds, cpu, done, stored_events(db))
    finally:
        ray.shutdown()
        cluster.shutdown()
    n = args.rollouts
    for name, (seconds, cpu, done, events) in out.items():
        print(
            f"{name}: {n} rollouts, fanout {FANOUT}, {args.latency * 1000:g} ms server: {done}/{n} done, "
            f"{seconds:.1f} s, {n / seconds:.1f} rollouts/s, driver CPU {cpu / n * 1000:.1f} ms/rollout, "
            f"{events / seconds:,.0f} events/s into the store ({events:,} events)"
        )
    ratio = out["ray"][0] / out["local"][0]
    row(
        f"ray executor: {n} rollouts, fanout {FANOUT}, {NODES} nodes on one machine",
        out["ray"][0] / n * 1000,
        "ms/rollout",
        floor=out["local"][0] / n * 1000,
        floor_name="the local executor",
        max_ratio=1.2,
        note=f"ratio {ratio:.2f}x",
    )
    if any(done != n for _, _, done, _ in out.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
