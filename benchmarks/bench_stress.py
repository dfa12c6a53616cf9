"""Many rollouts through the real engine and real jails: `python benchmarks/bench_stress.py [--rollouts N ...]`."""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_openai import FakeOpenAIProcess, Reply, code_call, is_root, root_turn  # noqa: E402
from rlm_tui.engine.clients import OpenAIClient  # noqa: E402
from rlm_tui.engine.rollout import RolloutSettings  # noqa: E402
from rlm_tui.engine.run import Run, RunConfig  # noqa: E402
from rlm_tui.env import load_environment  # noqa: E402
from rlm_tui.sandbox import Limits  # noqa: E402
from rlm_tui.store import EventWriter  # noqa: E402
from table import row  # noqa: E402

FANOUT = 16


def respond(body):
    """Two cells: one llm_batch of FANOUT prompts, then the answer."""
    if is_root(body):
        cells = [
            f'r = llm_batch([f"p{{i}}" for i in range({FANOUT})])',
            'answer.update(content="".join(r), ready=True)',
        ]
        return code_call(cells[min(root_turn(body), 1)])
    return Reply(content="ok", usage={"prompt_tokens": 10, "completion_tokens": 2})


def live_jails() -> int:
    """nsjail processes that are children of this one."""
    me, count = str(os.getpid()), 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        count += fields[1] == me and comm == "nsjail"
    return count


async def stress(base_url: str, db: Path, rollouts: int, concurrency: int, limit: float) -> dict:
    env = load_environment("verbatim-copy", {"target_length": "100"})
    settings = RolloutSettings(
        mode="rlm", model="m", sub_model="m", sub_concurrency=FANOUT, timeout=60, limits=Limits(memory_mb=512)
    )
    config = RunConfig(
        env="verbatim-copy", num_examples=rollouts, concurrency=concurrency, rollout=settings, stall_seconds=30
    )
    client = OpenAIClient(base_url=base_url, api_key="k")
    writer = EventWriter(db)
    writer.start()
    run = Run(config, env, client, [writer.append])
    peak = 0

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, live_jails())
            await asyncio.sleep(0.25)

    sampler = asyncio.create_task(sample())
    t0 = time.perf_counter()
    task = asyncio.create_task(run.execute())
    try:
        await asyncio.wait_for(asyncio.shield(task), limit)
    except TimeoutError:  # a hang: stop it, and say what was stuck (the watchdog has said where)
        task.cancel()
        await task
    elapsed = time.perf_counter() - t0
    sampler.cancel()
    await client.close()
    writer.close()
    statuses: dict[str, int] = {}
    for r in run.state.rollouts.values():
        statuses[r.status] = statuses.get(r.status, 0) + 1
    return {
        "status": run.state.status,
        "error": run.error,
        "rollouts": statuses,
        "seconds": elapsed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_jails": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rollouts", type=int, default=1024)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--latency", type=float, default=0.05, help="server latency in seconds (default 0.05)")
    parser.add_argument("--limit", type=float, default=1800, help="seconds before the run counts as hung")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIProcess(respond, latency=args.latency) as server:
        out = asyncio.run(stress(server.base_url, Path(tmp) / "s.db", args.rollouts, args.concurrency, args.limit))
    done = out["rollouts"].get("done", 0)
    print(
        f"{args.rollouts} rollouts at concurrency {args.concurrency}, fanout {FANOUT}, {args.latency * 1000:g} ms "
        f"server: {out['status']}, {done}/{args.rollouts} done {out['rollouts']}, {out['seconds']:.1f} s, "
        f"peak RSS {out['peak_rss_mb']:.0f} MB, peak live jails {out['peak_jails']}"
        + (f"; {out['error']}" if out["error"] else "")
    )
    waves = -(-args.rollouts // args.concurrency) * 3  # root, batch, root: the least a rollout waits on the server
    row(
        f"stress: {args.rollouts} rollouts, concurrency {args.concurrency}, fanout {FANOUT}",
        out["seconds"],
        "s",
        floor=waves * args.latency,
        floor_name="server latency alone, 3 waves a rollout",
        note=f"{done}/{args.rollouts} done; peak RSS {out['peak_rss_mb']:.0f} MB; {out['peak_jails']} live jails",
    )
    if done != args.rollouts:
        sys.exit(1)


if __name__ == "__main__":
    main()
