"""Waiting in app tests: on the app's own frames, never on a sleep."""

from __future__ import annotations

import asyncio


async def next_frame(app) -> None:
    """Until the app has drawn its next frame (or closed)."""
    session = app.session
    if session.closed:
        return
    frame = asyncio.get_running_loop().create_future()
    unwatch = session.watch(lambda: frame.done() or frame.set_result(None))
    try:
        await frame
    finally:
        unwatch()


async def until(pilot, predicate, timeout: float = 120.0) -> None:
    """Let the app run, frame by frame, until `predicate()` holds; `timeout` only bounds a test that would hang."""
    app = pilot.app

    async def frames() -> None:
        while not predicate():
            assert not app.session.closed, "the app closed first"
            await next_frame(app)
            if app.return_code is None:  # an exiting app's screens may never catch up
                await pilot.pause()  # the screen catches up with what the frame changed

    try:
        await asyncio.wait_for(frames(), timeout)
    except TimeoutError:
        raise AssertionError("timed out") from None
