"""Whole-rollout timings against a local server, each beside a raw-client floor."""

from __future__ import annotations

import asyncio
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_openai import FakeOpenAIProcess, Reply, code_call, is_root, root_turn  # noqa: E402
from rlm_tui.engine.clients import OpenAIClient  # noqa: E402
from rlm_tui.engine.rollout import RolloutSettings  # noqa: E402
from rlm_tui.engine.run import Run, RunConfig  # noqa: E402
from rlm_tui.env import load_environment  # noqa: E402
from rlm_tui.store import EventWriter  # noqa: E402
from table import row  # noqa: E402

USAGE = {"prompt_tokens": 10, "completion_tokens": 2}


def two_turn(body):
    if is_root(body):
        cells = ['r = llm_batch([f"p{i}" for i in range(8)])', 'answer.update(content="".join(r), ready=True)']
        return code_call(cells[root_turn(body)])
    return Reply(content="ok", usage=USAGE)


async def one_rollout(client: OpenAIClient, writer: EventWriter, sub_concurrency: int) -> Run:
    """One run of one rollout; the client and the writer are per endpoint and per database, as in a real run."""
    env = load_environment("verbatim-copy", {"target_length": "100"})
    settings = RolloutSettings(mode="rlm", model="m", sub_model="m", sub_concurrency=sub_concurrency)
    run = Run(RunConfig(env="verbatim-copy", num_examples=1, rollout=settings), env, client, [writer.append])
    await run.execute()
    (rollout,) = run.state.rollouts.values()
    if rollout.status != "done":  # a figure from a rollout that failed would measure nothing
        raise SystemExit(f"the benchmark's rollout {rollout.status}: {rollout.error}")
    return run


def cpu_seconds() -> float:
    """CPU of this process and of its reaped children (the jails); the fake server is not reaped until the end."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def rollouts(base_url: str, db: Path, count: int, sub_concurrency: int) -> list[tuple[float, float, Run]]:
    """Time `count` rollouts in one loop, sharing one client and one writer: (wall, CPU, run) of each."""

    async def main():
        client = OpenAIClient(base_url=base_url, api_key="k")
        writer = EventWriter(db)
        writer.start()
        out = []
        try:
            for _ in range(count):
                t0, cpu0 = time.perf_counter(), cpu_seconds()
                run = await one_rollout(client, writer, sub_concurrency)
                out.append((time.perf_counter() - t0, cpu_seconds() - cpu0, run))
        finally:
            await client.close()
            writer.close()
        return out

    return asyncio.run(main())


async def raw_requests(base_url: str, bodies: list[list[dict]]) -> None:
    """The floor: plain aiohttp doing the same requests, wave by wave, with no engine and no sandbox."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000)) as session:

        async def post(body):
            async with session.post(base_url + "/chat/completions", json=body) as response:
                await response.json()

        for wave in bodies:
            await asyncio.gather(*(post(b) for b in wave))


def root_body(turn: int) -> dict:
    messages = [{"role": "user", "content": "q"}] + [{"role": "assistant", "content": "x"}] * turn
    return {
        "model": "m",
        "messages": messages,
        "tools": [{"type": "function", "function": {"name": "call_python_repl", "parameters": {}}}],
    }


def sub_body(i: int) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": f"p{i}"}]}


def median_of(repeats: int, make) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        make()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with FakeOpenAIProcess(two_turn, latency=0.05) as server:
            timed = rollouts(server.base_url, Path(tmp) / "a.db", 21, 16)[1:]  # the first warms the connections
            rollout = statistics.median(t for t, _, _ in timed)
            cpu = statistics.median(c for _, c, _ in timed)
            waves = [[root_body(0)], [sub_body(i) for i in range(8)], [root_body(1)]]
            cpu0 = cpu_seconds()
            floor = median_of(10, lambda: asyncio.run(raw_requests(server.base_url, waves)))
            floor_cpu = (cpu_seconds() - cpu0) / 10
        row(
            "2-turn rollout, 50 ms server, fanout 8",
            rollout * 1000,
            "ms",
            floor=floor * 1000,
            floor_name="plain aiohttp, the same 3 waves",
            max_ratio=1.15,
        )
        row(
            "engine CPU per rollout (engine + jail)",
            cpu * 1000,
            "ms",
            floor=floor_cpu * 1000,
            floor_name="plain aiohttp's CPU, the same 3 waves",
            max_value=30,
        )


if __name__ == "__main__":
    main()
