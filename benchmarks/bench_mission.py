"""The run view at 512 rollouts: ms from a sort or filter key to the repainted screen, beside a cursor move
measured the same way: `python benchmarks/bench_mission.py`."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rlm_tui.tui.app import RlmApp  # noqa: E402
from rlm_tui.tui.screens.run import RunScreen  # noqa: E402
from runs import store_events  # noqa: E402
from synthetic import T0, run_events  # noqa: E402
from table import row  # noqa: E402

ROLLOUTS = 512
PRESSES = 14


async def timed(pilot, keys: list[str]) -> list[float]:
    """ms from each key to the screen having drawn what it changed."""
    times = []
    for key in keys:
        start = time.perf_counter()
        await pilot.press(key)
        await pilot.pause()
        times.append((time.perf_counter() - start) * 1000)
    return times


async def main(d: Path) -> None:
    db = store_events(d / "big.db", run_events("bench-run", rollouts=ROLLOUTS, turns=2, batch=2))
    app = RlmApp(db, run_id="bench-run", follow=False, clock=lambda: T0)
    async with app.run_test(size=(200, 50)) as pilot:
        while not (isinstance(app.screen, RunScreen) and len(app.screen._ids) == ROLLOUTS):
            await pilot.pause(0.05)
        moves = await timed(pilot, ["down", "up"] * (PRESSES // 2))
        sorts = await timed(pilot, ["o"] * PRESSES)
        floor = statistics.median(moves)
        row(
            f"sort {ROLLOUTS} rollouts (o)",
            statistics.median(sorts),
            "ms",
            floor=floor,
            floor_name="cursor move",
            note=f"median of {PRESSES}; max {max(sorts):.0f} ms",
        )
        await pilot.press("slash", *"ex-51")
        (filtered,) = await timed(pilot, ["enter"])
        assert len(app.screen._ids) == 3, app.screen._ids  # ex-51, ex-510, ex-511
        row(f"filter {ROLLOUTS} rollouts to 3", filtered, "ms", floor=floor, floor_name="cursor move")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        asyncio.run(main(Path(d)))
