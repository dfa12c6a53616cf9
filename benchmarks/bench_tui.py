"""The app under load, each figure beside a floor measured in the same run: `python benchmarks/bench_tui.py`."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from textual.binding import Binding  # noqa: E402

from rlm_tui.state import fold  # noqa: E402
from rlm_tui.store import EventWriter, open_db, read_events  # noqa: E402
from rlm_tui.textdiff import changed_spans  # noqa: E402
from rlm_tui.tui.app import RlmApp  # noqa: E402
from rlm_tui.tui.messages import EventsArrived  # noqa: E402
from rlm_tui.tui.screens.rollout import RolloutScreen  # noqa: E402
from rlm_tui.tui.sources import TailSource  # noqa: E402
from runs import store_events  # noqa: E402
from synthetic import run_events  # noqa: E402
from table import row  # noqa: E402

SIZE = (160, 45)
HEAVY = dict(rollouts=32, turns=3, batch=1000, tools=0)  # 32 concurrent rollouts, 1,000-prompt batches
LIVE = dict(rollouts=32, turns=120, batch=16, tools=1)  # 32 live rollouts, fanout 16, for the key presses
CHUNK = 2000  # events per delivery, about what one tail poll brings under this load
PRESSES = 60


async def until(pilot, predicate, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError
        await pilot.pause(0.01)


def p95(values: list[float]) -> float:
    return sorted(values)[min(len(values) - 1, int(0.95 * len(values)))]


# --- 1. events per second: reducer alone, and reducer + view refresh ------------------------------


def bench_throughput(tmp: Path) -> None:
    events = run_events("heavy", **HEAVY)
    t = time.perf_counter()
    fold(events, "heavy")
    floor = len(events) / (time.perf_counter() - t)

    db = tmp / "empty.db"
    open_db(db).close()

    async def main() -> float:
        app = RlmApp(db)
        async with app.run_test(size=SIZE) as pilot:
            app.session.open("heavy", follow=True)
            app.tail = TailSource(db, "heavy", app._deliver)  # never started: this loop delivers instead
            await app.push_screen(RolloutScreen(app.session, "heavy-r000"))
            await until(pilot, lambda: app.screen.ready)
            t = time.perf_counter()
            for i in range(0, len(events), CHUNK):
                app.post_message(EventsArrived(app.tail, events[i : i + CHUNK], False))
            await until(pilot, lambda: app.session.feed.count == len(events))
            app.refresh_view()
            await pilot.pause()
            return len(events) / (time.perf_counter() - t)

    rate = asyncio.run(main())
    # a rate: the floor is the reducer's, the target that the app folds at least half as fast
    row(
        "events/s folded and drawn, 32 rollouts x 1,000-prompt batches",
        rate,
        "ev/s",
        floor=floor,
        floor_name="reducer alone",
        note=f"{len(events):,} events; the ratio is measured/floor",
    )


# --- 2. key press to screen while 32 live rollouts stream into the database ------------------------


class ProbeApp(RlmApp):
    """Times each key from the press until the frame that shows its effect has been rendered for the terminal."""

    BINDINGS = [*RlmApp.BINDINGS, Binding("x", "probe", "Probe", show=False)]

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.handled = False
        self.drawn: float | None = None
        self.step = 3

    def action_probe(self) -> None:
        timeline = self.screen.query_one("#timeline")
        self.step = -self.step  # up and down in turn, so every press moves what the screen shows
        timeline.scroll_relative(y=self.step, animate=False)
        self.handled = True

    def _display(self, screen, renderable) -> None:
        if renderable is not None and self.is_headless:
            renderable.render_segments(self.console)  # what a terminal's frame costs, headless too
        super()._display(screen, renderable)
        if self.handled and renderable is not None and self.drawn is None:
            self.drawn = time.perf_counter()


RATE = 40_000  # events per second offered by the writer
START = 80_000  # events stored before the app opens: about half the run, 45 turns of each rollout


def stream_events(db: Path, rate: int, ready: Any) -> None:
    """The live run's events after the first START, written at `rate` events a second."""
    events = run_events("live", finish=False, **LIVE)
    writer = EventWriter(db)
    writer.start()
    ready.set()
    for i in range(START, len(events), 400):
        for e in events[i : i + 400]:
            writer.append(e)
        time.sleep(400 / rate)
    writer.close()


def bench_key_to_screen(tmp: Path) -> None:
    db = tmp / "live.db"
    store_events(db, run_events("live", finish=False, **LIVE)[:START])
    spawn = multiprocessing.get_context("spawn")
    streaming = spawn.Event()
    # the engine writes from a process of its own, as `rlm-tui run` starts it: its work is not the app's
    engine = spawn.Process(target=stream_events, args=(db, RATE, streaming), daemon=True)

    async def presses(app: ProbeApp, pilot) -> list[float]:
        out = []
        for _ in range(PRESSES):
            app.handled, app.drawn = False, None
            t = time.perf_counter()
            await pilot.press("x")
            await until(pilot, lambda: app.drawn is not None)
            out.append(app.drawn - t)
            await pilot.pause(0.02)
        return out

    async def main() -> tuple[list[float], list[float], int]:
        app = ProbeApp(db, run_id="live", follow=True)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.session.feed is not None and app.session.feed.count >= START)
            await app.push_screen(RolloutScreen(app.session, "live-r000"))
            await until(pilot, lambda: app.screen.ready)
            await pilot.pause(0.3)
            idle = await presses(app, pilot)  # the same screen, nothing arriving
            engine.start()
            await asyncio.to_thread(streaming.wait, 60)
            before = app.session.feed.count
            loaded = await presses(app, pilot)
            return idle, loaded, app.session.feed.count - before

    idle, loaded, seen = asyncio.run(main())
    engine.terminate()
    engine.join()
    row(
        "key press to screen, 32 live rollouts, fanout 16 (p95)",
        p95(loaded) * 1000,
        "ms",
        floor=p95(idle) * 1000,
        floor_name="same screen idle",
        max_ratio=1.5,
        note=f"{RATE:,} ev/s offered, {seen:,} events folded during {PRESSES} presses; median "
        f"{statistics.median(loaded) * 1000:.0f} ms, idle {statistics.median(idle) * 1000:.0f} ms",
    )


# --- 3. the answer's diff ---------------------------------------------------------------------------


def bench_diff() -> None:
    rng = random.Random(0)
    old = "".join(rng.choices(string.ascii_lowercase + "    \n", k=20_000))
    new = list(old)
    for _ in range(40):  # scattered edits, as a model rewriting parts of its answer makes
        at = rng.randrange(len(new))
        new[at : at + rng.randrange(1, 30)] = rng.choices(string.ascii_uppercase, k=rng.randrange(1, 30))
    edited = "".join(new)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        changed_spans(old, edited)
        times.append(time.perf_counter() - t)
    row("answer diff of a 20k-char answer", min(times) * 1000, "ms", max_value=5, note="40 scattered edits")


# --- 4. opening a 100,000-event rollout in replay ---------------------------------------------------


def bench_open(tmp: Path) -> None:
    db = tmp / "big.db"
    events = run_events("big", rollouts=1, turns=50, batch=1000, tools=0)
    store_events(db, events)
    rollout = "big-r000"
    t = time.perf_counter()
    read_events(open_db(db), rollout_id=rollout)
    floor = time.perf_counter() - t

    async def main() -> tuple[float, float]:
        t = time.perf_counter()
        app = RlmApp(db, run_id="big", rollout_id=rollout, follow=False)
        async with app.run_test(size=SIZE) as pilot:
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
            return first, time.perf_counter() - t

    first, done = asyncio.run(main())
    note = f"{len(events):,} events"
    row(
        "open a 100k-event rollout: first turns",
        first,
        "s",
        floor=floor,
        floor_name="read_events alone",
        max_value=1,
        note=note,
    )
    row(
        "open a 100k-event rollout: every event folded and drawn",
        done,
        "s",
        floor=floor,
        floor_name="read_events alone",
        max_value=1,
        note=note,
    )


if __name__ == "__main__":
    only = set(sys.argv[1:])
    with tempfile.TemporaryDirectory() as d:
        for name, bench in (
            ("throughput", lambda: bench_throughput(Path(d))),
            ("keys", lambda: bench_key_to_screen(Path(d))),
            ("diff", bench_diff),
            ("open", lambda: bench_open(Path(d))),
        ):
            if not only or name in only:
                bench()
                sys.stdout.flush()
