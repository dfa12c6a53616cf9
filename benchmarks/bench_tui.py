"""The app under load, each figure beside a floor measured in the same run: `python benchmarks/bench_tui.py`."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from textual.binding import Binding

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from rlm_tui.state import fold
from rlm_tui.store import EventWriter, open_db, read_events
from rlm_tui.tui.app import RlmApp
from rlm_tui.tui.messages import EventsArrived
from rlm_tui.tui.screens.rollout import RolloutScreen
from rlm_tui.tui.sources import TailSource
from runs import store_events  # noqa: E402
from synthetic import run_events  # noqa: E402

SIZE = (160, 45)
HEAVY = dict(rollouts=32, turns=3, batch=1000, tools=0)  # 32 concurrent rollouts, 1,000-prompt batches
CHUNK = 2000  # events per delivery, about what one tail poll brings under this load


async def until(pilot, predicate, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError
        await pilot.pause(0.01)


# --- 1. events per second: reducer alone, and reducer + view refresh ------------------------------


def bench_throughput(tmp: Path) -> None:
    events = run_events("heavy", **HEAVY)
    t = time.perf_counter()
    fold(events, "heavy")
    floor = len(events) / (time.perf_counter() - t)

    db = tmp / "empty.db"
    open_db(db).close()

    async def main(forced: bool) -> float:
        app = RlmApp(db)
        async with app.run_test(size=SIZE) as pilot:
            app.session.open("heavy", follow=True)
            app.tail = TailSource(db, "heavy", app._deliver)  # never started: this loop delivers instead
            await app.push_screen(RolloutScreen(app.session, "heavy-r000"))
            await until(pilot, lambda: app.screen.ready)
            t = time.perf_counter()
            for i in range(0, len(events), CHUNK):
                app.post_message(EventsArrived(app.tail, events[i : i + CHUNK], False))
                if forced:  # a redraw after every delivery: no coalescing at all
                    await until(pilot, lambda: app.session.feed.count >= min(len(events), i + CHUNK))  # noqa: B023
                    app.refresh_view()
                    await pilot.pause()
            await until(pilot, lambda: app.session.feed.count == len(events))
            app.refresh_view()
            await pilot.pause()
            return len(events) / (time.perf_counter() - t)

    coalesced, forced = asyncio.run(main(False)), asyncio.run(main(True))
    print(f"events/s, reducer alone (floor):                {floor:10,.0f}  ({len(events):,} events, 32 rollouts)")
    print(
        f"events/s, app as delivered (15 Hz redraws):     {coalesced:10,.0f}  floor/measured {floor / coalesced:.2f}x"
    )
    print(f"events/s, app redrawing after every poll:       {forced:10,.0f}  floor/measured {floor / forced:.2f}x")


# --- 2. key press to handler while a heavy run streams into the database ---------------------------


class ProbeApp(RlmApp):
    BINDINGS = [*RlmApp.BINDINGS, Binding("x", "probe", "Probe", show=False)]

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.handled: float | None = None

    def action_probe(self) -> None:
        self.handled = time.perf_counter()


def bench_latency(tmp: Path) -> None:
    async def latencies(db: Path, run_id: str, stream: threading.Thread | None, presses: int = 40) -> tuple[list, int]:
        app = ProbeApp(db, run_id=run_id, follow=True)
        out = []
        async with app.run_test(size=SIZE) as pilot:
            await until(
                pilot, lambda: app.session.feed is not None and app.session.feed.state.rollouts.get(f"{run_id}-r000")
            )
            await app.push_screen(RolloutScreen(app.session, f"{run_id}-r000"))
            await until(pilot, lambda: app.screen.ready)
            if stream is not None:
                stream.start()
            for _ in range(presses):
                app.handled = None
                t = time.perf_counter()
                await pilot.press("x")
                await until(pilot, lambda: app.handled is not None)
                out.append(app.handled - t)
                await pilot.pause(0.05)
            seen = app.session.feed.count
        return out, seen

    events = run_events("live", finish=False, **HEAVY)
    db = tmp / "live.db"
    store_events(db, events[:200])
    writer = EventWriter(db)
    writer.start()
    rate = 40_000  # events per second offered by the writer

    def write() -> None:
        for i in range(200, len(events), 400):
            for e in events[i : i + 400]:
                writer.append(e)
            time.sleep(400 / rate)

    loaded, seen = asyncio.run(latencies(db, "live", threading.Thread(target=write, daemon=True)))
    writer.close()
    quiet_db = tmp / "quiet.db"
    store_events(quiet_db, run_events("quiet", rollouts=1, turns=1, batch=4, finish=False))
    idle, _ = asyncio.run(latencies(quiet_db, "quiet", None))

    def p(values: list[float], q: float) -> float:
        return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000

    print(
        f"key->handler ms, idle (floor):        median {statistics.median(idle) * 1000:6.1f}  p95 {p(idle, 0.95):6.1f}"
    )
    print(
        f"key->handler ms, {rate:,} ev/s stream: median {statistics.median(loaded) * 1000:6.1f}  p95 {p(loaded, 0.95):6.1f}"
        f"  ratio (median) {statistics.median(loaded) / statistics.median(idle):.2f}x  ({seen:,} events folded meanwhile)"
    )


# --- 3. opening a 100,000-event rollout in replay ---------------------------------------------------


def bench_open(tmp: Path) -> None:
    db = tmp / "big.db"
    events = run_events("big", rollouts=1, turns=50, batch=1000, tools=0)
    store_events(db, events)
    rollout = "big-r000"
    t = time.perf_counter()
    read_events(open_db(db), rollout_id=rollout)
    floor = time.perf_counter() - t

    async def main() -> tuple[float, float, float]:
        t = time.perf_counter()
        app = RlmApp(db, run_id="big", rollout_id=rollout, follow=False)
        async with app.run_test(size=SIZE) as pilot:
            booted = time.perf_counter() - t
            await until(
                pilot,
                lambda: (
                    isinstance(app.screen, RolloutScreen)
                    and app.screen.ready
                    and app.screen.query_one("#timeline").total > 0
                ),
                timeout=30,
            )
            first = time.perf_counter() - t
            await until(pilot, lambda: app.session.replay is not None, timeout=30)
            app.refresh_view()
            await pilot.pause()
            return booted, first, time.perf_counter() - t

    booted, first, done = asyncio.run(main())
    print(f"open {len(events):,}-event rollout, read_events alone (floor): {floor:6.2f} s")
    print(
        f"  in the app: started {booted:.2f} s, first turns shown {first:.2f} s, every event folded and drawn "
        f"{done:.2f} s (ratio {done / floor:.2f}x; target < 1 s {'met' if done < 1 else 'NOT met'})"
    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        for bench in (bench_throughput, bench_latency, bench_open):
            bench(Path(d))
            sys.stdout.flush()
