"""The sub-LLM hot path against a local 50 ms server, each figure beside plain aiohttp in the same run."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_openai import FakeOpenAIProcess, Reply  # noqa: E402
from rlm_tui.engine.sub_llm import SubLLMs  # noqa: E402
from rlm_tui.engine.wire import WireClient  # noqa: E402
from table import row  # noqa: E402

USAGE = {"prompt_tokens": 10, "completion_tokens": 2}
LATENCY = 0.05
REPEATS = 5


def body(i: int) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": f"p{i}"}]}


async def plain_aiohttp(base_url: str, width: int, repeats: int) -> list[tuple[float, float]]:
    """The floor: (seconds, CPU seconds) of `width` concurrent posts over one session, per repeat."""
    out = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def post(b):
            async with session.post(base_url + "/chat/completions", json=b) as response:
                await response.json()

        for _ in range(repeats + 1):  # the first opens the connections
            t0, c0 = time.perf_counter(), time.process_time()
            await asyncio.gather(*(post(body(i)) for i in range(width)))
            out.append((time.perf_counter() - t0, time.process_time() - c0))
    return out[1:]


async def client_calls(base_url: str, width: int, repeats: int) -> list[tuple[float, float]]:
    """(seconds, CPU seconds) of `width` concurrent completions through the sub-LLM client, per repeat."""
    client = WireClient(base_url=base_url, api_key="k")
    out = []
    try:
        for _ in range(repeats + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            await asyncio.gather(*(client.complete("m", body(i)["messages"], None) for i in range(width)))
            out.append((time.perf_counter() - t0, time.process_time() - c0))
    finally:
        await client.close()
    return out[1:]


async def batches(base_url: str, width: int, concurrency: int, repeats: int) -> list[float]:
    """Seconds of one `llm_batch` of `width` prompts through SubLLMs, per repeat, events dropped."""
    client = WireClient(base_url=base_url, api_key="k")
    subs = SubLLMs(
        client=client, model="m", tools=[], concurrency=concurrency, emit=lambda e: None, run_id="r", rollout_id="o"
    )
    out = []
    try:
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            replies = await subs.batch([f"p{i}" for i in range(width)], None)
            out.append(time.perf_counter() - t0)
            if replies != ["ok"] * width:  # a batch of failed calls would time nothing
                raise SystemExit(f"a sub-LLM call failed: {next(r for r in replies if r != 'ok')}")
    finally:
        await client.close()
    return out[1:]


def main() -> None:
    with FakeOpenAIProcess(lambda b: Reply(content="ok", usage=USAGE), latency=LATENCY) as server:
        url = server.base_url
        floor = asyncio.run(plain_aiohttp(url, 512, REPEATS))
        ours = asyncio.run(client_calls(url, 512, REPEATS))
        floor_cpu = statistics.median(c for _, c in floor) / 512 * 1000
        cpu = statistics.median(c for _, c in ours) / 512 * 1000
        row("client CPU per sub-call", cpu, "ms", floor=floor_cpu, floor_name="plain aiohttp", max_value=0.6)

        wide = statistics.median(asyncio.run(batches(url, 512, 512, REPEATS)))
        floor_s = statistics.median(t for t, _ in asyncio.run(plain_aiohttp(url, 512, REPEATS)))
        row(
            "llm_batch of 512 at 50 ms",
            wide * 1000,
            "ms",
            floor=floor_s * 1000,
            floor_name="plain aiohttp, 512 concurrent",
            max_ratio=1.3,
        )

        for width in (64, 512):
            floor_s = statistics.median(t for t, _ in asyncio.run(plain_aiohttp(url, width, REPEATS)))
            for concurrency in (16, 64, 128):
                seconds = statistics.median(asyncio.run(batches(url, width, concurrency, REPEATS)))
                row(
                    f"llm_batch of {width} at 50 ms, --sub-concurrency {concurrency}",
                    seconds * 1000,
                    "ms",
                    floor=floor_s * 1000,
                    floor_name=f"plain aiohttp, {width} concurrent",
                )


if __name__ == "__main__":
    main()
