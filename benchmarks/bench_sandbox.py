"""Sandbox latency beside its floors: cell round trip vs a raw pipe echo, cold starts vs a bare jailed python."""

import asyncio
import os
import statistics
import sys
import tempfile
import time

from rlm_tui.sandbox import Limits, Sandbox, nsjail
from table import row

ECHO = "import sys\nfor line in sys.stdin.buffer:\n    sys.stdout.buffer.write(line)\n    sys.stdout.buffer.flush()"
BIG = 100_000_000  # characters of the large context


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


def jail_peak_kb(box: Sandbox) -> float:
    """The most memory charged to the jail's memory cgroup (pages the host shares with it are not charged twice)."""
    assert box.pid is not None
    (init,) = nsjail.children(box.pid)
    with open(f"{nsjail.CGROUP_V1}/memory/NSJAIL.{init}/memory.max_usage_in_bytes") as f:
        return int(f.read()) / 1024


def rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


async def cold_start(n: int, context: object) -> tuple[float, float, float]:
    """Median seconds to ready, the host's RSS kept while the sandbox runs (KB), the jail's peak memory (KB)."""
    times, kept, peaks = [], [], []
    for _ in range(n):
        box = Sandbox()
        before = rss_kb()
        start = time.perf_counter()
        await box.start(context=context)
        times.append(time.perf_counter() - start)
        kept.append(rss_kb() - before)
        peaks.append(jail_peak_kb(box) if nsjail.cgroups_v1() else float("nan"))
        await box.close()
    return statistics.median(times), statistics.median(kept), statistics.median(peaks)


async def jailed(argv: tuple[str, ...], rfd: int, wfd: int) -> float:
    cmd = nsjail.command(Limits(), rfd, wfd, argv=argv)
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, pass_fds=(rfd, wfd)
    )
    await proc.wait()
    return time.perf_counter() - start


async def bare_jail(n: int) -> float:
    times = []
    for _ in range(n):
        rfd, wfd = os.pipe()
        times.append(await jailed((sys.executable, "-I", "-c", "pass"), rfd, wfd))
        os.close(rfd)
        os.close(wfd)
    return statistics.median(times)


async def jailed_file_read(n: int, path: str) -> float:
    """The floor of a large start: a jailed python reading the same bytes from a file into one str."""
    times = []
    for _ in range(n):
        fd = os.open(path, os.O_RDONLY)
        code = f"open({fd}, encoding='utf-8').read()"
        times.append(await jailed((sys.executable, "-I", "-S", "-c", code), fd, fd))
        os.close(fd)
    return statistics.median(times)


async def main() -> None:
    print(
        f"nsjail {nsjail.find_nsjail()}  cgroups: {'v1 pids+memory' if nsjail.cgroups_v1() else 'off (rlimits only)'}"
    )
    echo = await echo_round_trip(2000)
    cell = await cell_round_trip(2000)
    row("trivial cell round trip", cell * 1e3, "ms", floor=echo * 1e3, floor_name="raw pipe echo, no jail")
    bare = await bare_jail(30)
    cold, _, _ = await cold_start(30, "some context")
    row("sandbox cold start", cold * 1e3, "ms", floor=bare * 1e3, floor_name="nsjail + python -c pass")
    context = "x" * BIG
    with tempfile.NamedTemporaryFile() as f:
        f.write(context.encode())
        f.flush()
        read = await jailed_file_read(5, f.name)
    big, kept, peak = await cold_start(5, context)
    row(
        "sandbox start with a 100 MB context",
        big * 1e3,
        "ms",
        floor=read * 1e3,
        floor_name="nsjail + python reading it from a file",
        max_ratio=1.3,
    )
    row("host RSS kept after a 100 MB start", kept / 1024, "MB", max_value=5)
    row(
        "jail's peak memory, 100 MB context",
        peak / 1024,
        "MB",
        floor=BIG / 2**20,
        floor_name="the context",
        max_ratio=1.3,
        note="" if nsjail.cgroups_v1() else "no memory cgroup to read it from",
    )


if __name__ == "__main__":
    asyncio.run(main())
