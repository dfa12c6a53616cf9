"""Whole-rollout and wide-batch timings against a local server, each beside a raw-client floor."""

from __future__ import annotations

import asyncio
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
    return run


def rollouts(base_url: str, db: Path, count: int, sub_concurrency: int) -> list[tuple[float, Run]]:
    """Time `count` rollouts in one loop, sharing one client and one writer."""

    async def main():
        client = OpenAIClient(base_url=base_url, api_key="k")
        writer = EventWriter(db)
        writer.start()
        out = []
        try:
            for _ in range(count):
                t0 = time.perf_counter()
                run = await one_rollout(client, writer, sub_concurrency)
                out.append((time.perf_counter() - t0, run))
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
        with FakeOpenAIProcess(two_turn) as server:
            timed = rollouts(server.base_url, Path(tmp) / "a.db", 21, 16)[1:]  # the first warms the connections
            rollout = statistics.median(t for t, _ in timed)
            waves = [[root_body(0)], [sub_body(i) for i in range(8)], [root_body(1)]]
            floor = median_of(10, lambda: asyncio.run(raw_requests(server.base_url, waves)))
        print(
            f"whole 2-turn rollout, 8-prompt batch:  {rollout * 1000:7.1f} ms   "
            f"floor (raw aiohttp, same requests, no sandbox) {floor * 1000:6.1f} ms   ratio {rollout / floor:5.1f}x"
        )


if __name__ == "__main__":
    main()
