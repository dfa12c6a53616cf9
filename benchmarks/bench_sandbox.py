"""Sandbox latency beside its floors: trivial-cell round trip vs a raw pipe echo, cold start vs a bare jailed python."""

import asyncio
import os
import statistics
import sys
import time

from rlm_tui.sandbox import Limits, Sandbox, nsjail

ECHO = "import sys\nfor line in sys.stdin.buffer:\n    sys.stdout.buffer.write(line)\n    sys.stdout.buffer.flush()"


async def cell_round_trip(n: int) -> float:
    async with Sandbox() as box:
        await box.start(context="some context")
        for _ in range(100):
            await box.run("x = 1")
        times = []
        for _ in range(n):
            start = time.perf_counter()
            await box.run("x = 1")
            times.append(time.perf_counter() - start)
    return statistics.median(times)


async def echo_round_trip(n: int) -> float:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-c", ECHO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    line = b'{"t": "exec", "id": 1, "code": "x = 1"}\n'
    times = []
    for i in range(n + 100):
        start = time.perf_counter()
        proc.stdin.write(line)
        await proc.stdout.readline()
        if i >= 100:
            times.append(time.perf_counter() - start)
    proc.stdin.close()
    await proc.wait()
    return statistics.median(times)


async def cold_start(n: int, context: object) -> float:
    times = []
    for _ in range(n):
        box = Sandbox()
        start = time.perf_counter()
        await box.start(context=context)
        times.append(time.perf_counter() - start)
        await box.close()
    return statistics.median(times)


async def bare_jail(n: int) -> float:
    times = []
    for _ in range(n):
        rfd, wfd = os.pipe()
        cmd = nsjail.command(Limits(), rfd, wfd, argv=(sys.executable, "-I", "-c", "pass"))
        start = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, pass_fds=(rfd, wfd)
        )
        await proc.wait()
        times.append(time.perf_counter() - start)
        os.close(rfd)
        os.close(wfd)
    return statistics.median(times)


def line(name: str, value: float, floor_name: str, floor: float, target: float) -> str:
    return (
        f"{name:<28} median {value * 1e3:8.3f} ms   {floor_name:<34} {floor * 1e3:8.3f} ms   "
        f"ratio {value / floor:5.2f}x   target <= {target * 1e3:g} ms"
    )


async def main() -> None:
    echo = await echo_round_trip(2000)
    cell = await cell_round_trip(2000)
    bare = await bare_jail(30)
    cold = await cold_start(30, "some context")
    big = await cold_start(5, "x" * 16_000_000)
    print(
        f"nsjail {nsjail.find_nsjail()}  cgroups: {'v1 pids+memory' if nsjail.cgroups_v1() else 'off (rlimits only)'}"
    )
    print(line("trivial cell round trip", cell, "floor: raw pipe echo, no jail", echo, 0.0005))
    print(line("sandbox cold start", cold, "floor: nsjail + python -c pass", bare, 0.150))
    print(line("cold start, 16 MB context", big, "floor: nsjail + python -c pass", bare, 0.150))


if __name__ == "__main__":
    asyncio.run(main())
