"""Where the app's events come from (a tail of a live run or a replay of a stored one, made safe to show); and
where commands go."""

from __future__ import annotations

import queue
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterator
from pathlib import Path

from rlm_tui import events as ev
from rlm_tui.state import RunState
from rlm_tui.store import open_db, read_events, run_over, send_command

POLL_SECONDS = 0.05
READ_LIMIT = 5000  # rows per query; a poll keeps reading while a query comes back full
POLL_CAP = 50_000  # events in one message at most, so one poll never holds the UI for long
GAP_CAP = 1.0  # recorded seconds: a replay never waits longer than this between events
SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
LOAD_CHUNK = 5_000  # events per message while a replay loads: each fold holds the UI for a few ms only
FIRST_CHUNK = 2_000


class Feed:
    """One run folded from its events, with a change counter per rollout so views redraw only what changed."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.state = RunState(id=run_id)
        self.versions: dict[str | None, int] = {}
        self.generation = 0  # bumped whenever the state is rebuilt from scratch
        self.count = 0  # events applied
        self.last_ts: float | None = None

    def apply(self, events: list[ev.Event]) -> None:
        apply, versions = self.state.apply, self.versions
        for e in events:
            apply(e)
            versions[e.rollout_id] = versions.get(e.rollout_id, 0) + 1
        self.count += len(events)
        if events:
            self.last_ts = events[-1].ts

    def reset(self, events: list[ev.Event]) -> None:
        self.state, self.versions, self.count, self.last_ts = RunState(id=self.run_id), {}, 0, None
        self.generation += 1
        self.apply(events)


class Replay:
    """Stored events played into a Feed: a position, a pace that follows the recorded timestamps."""

    def __init__(self, events: list[ev.Event], feed: Feed, position: int = 0) -> None:
        """`position`: how many of `events` the feed has already applied."""
        self.events, self.feed = events, feed
        self.position = position  # events applied
        self.playing = False
        self.speed_index = SPEEDS.index(1.0)
        self.clock = 0.0  # recorded time the replay has reached
        if events:
            self.clock = events[position - 1].ts if position else events[0].ts
        self.turns = [
            (i, e.rollout_id) for i, e in enumerate(events) if isinstance(e, ev.ModelCallStarted) and e.role == "main"
        ]

    @property
    def speed(self) -> float:
        return SPEEDS[self.speed_index]

    @property
    def at_end(self) -> bool:
        return self.position >= len(self.events)

    def seek(self, position: int) -> None:
        position = max(0, min(len(self.events), position))
        if position >= self.position:
            self.feed.apply(self.events[self.position : position])
        else:
            self.feed.reset(self.events[:position])
        self.position = position
        self.clock = self.events[position - 1].ts if position else (self.events[0].ts if self.events else 0.0)
        if self.at_end:
            self.playing = False

    def toggle(self) -> None:
        if not self.playing and self.at_end:
            self.seek(0)
        self.playing = not self.playing

    def faster(self, steps: int = 1) -> None:
        self.speed_index = max(0, min(len(SPEEDS) - 1, self.speed_index + steps))

    def tick(self, dt: float) -> None:
        """Advance by `dt` wall seconds of play."""
        if not self.playing or self.at_end:
            return
        events, p = self.events, self.position
        clock = self.clock + dt * self.speed
        if events[p].ts - clock > GAP_CAP:
            clock = events[p].ts - GAP_CAP
        end = p
        while end < len(events) and events[end].ts <= clock:
            end += 1
        self.feed.apply(events[p:end])
        self.position, self.clock = end, clock
        if self.at_end:
            self.playing, self.clock = False, events[-1].ts

    def step_turn(self, forward: bool, rollout_id: str | None = None) -> None:
        """To just after the next (or previous) main model call, of one rollout or of any."""
        starts = [i for i, rid in self.turns if rollout_id is None or rid == rollout_id]
        if forward:
            later = [i for i in starts if i >= self.position]
            self.seek(later[0] + 1 if later else len(self.events))
        else:
            k = bisect_right(starts, self.position - 2)
            self.seek(starts[k - 1] + 1 if k else 0)

    @property
    def elapsed(self) -> tuple[float, float]:
        """(recorded seconds played, recorded seconds in all)."""
        if not self.events:
            return 0.0, 0.0
        first = self.events[0].ts
        return max(0.0, self.clock - first), self.events[-1].ts - first


class TailSource:
    """A thread that polls a growing run on its own connection and delivers each poll's events at once."""

    def __init__(
        self,
        path: str | Path,
        run_id: str,
        deliver: Callable[[TailSource, list[ev.Event], bool], None],
        *,
        poll: float = POLL_SECONDS,
    ) -> None:
        self.path, self.run_id, self.deliver, self.poll = path, run_id, deliver, poll
        self.after_seq = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"tail-{run_id[:8]}", daemon=True)

    def start(self) -> TailSource:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        db = open_db(self.path, create=False)
        try:
            while not self._stop.is_set():
                over = run_over(db, self.run_id)  # checked before reading: nothing follows a run's final status
                batch: list[ev.Event] = []
                while len(batch) < POLL_CAP:
                    rows = read_events(
                        db, run_id=self.run_id, after_seq=self.after_seq, limit=READ_LIMIT, printable=True
                    )
                    if rows:
                        self.after_seq = rows[-1][0]
                        batch += [e for _, e in rows]
                    if len(rows) < READ_LIMIT:
                        break
                if batch or over:
                    self.deliver(self, batch, over and len(batch) < POLL_CAP)
                if over and len(batch) < POLL_CAP:
                    return
                self._stop.wait(self.poll)
        finally:
            db.close()


class CommandSender:
    """Operator commands, sent in order from one thread that owns its connection."""

    def __init__(self, path: str | Path, on_error: Callable[[str], None]) -> None:
        self.path, self.on_error = path, on_error
        self._queue: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="commands", daemon=True)
        self.thread.start()

    def send(self, run_id: str, action: str, rollout_id: str | None = None, text: str = "") -> None:
        self._queue.put((run_id, action, rollout_id, text))

    def close(self, timeout: float = 5.0) -> None:
        """Stop after sending what is queued, so that a command sent just before quitting still arrives."""
        self._queue.put(None)
        self.thread.join(timeout)

    def _run(self) -> None:
        db = None
        while (item := self._queue.get()) is not None:
            try:
                db = db or open_db(self.path, create=False)
                send_command(db, *item)
            except Exception as exc:  # a locked or missing database must not kill the sender
                self.on_error(f"could not send {item[1]}: {exc}")
        if db is not None:
            db.close()


def load_events(
    path: str | Path, run_id: str, rollout_id: str | None = None, chunk: int = LOAD_CHUNK
) -> Iterator[list[ev.Event]]:
    """A run's stored events in chunks, or one rollout's with the run's first event (its RunStarted) first."""
    db = open_db(path, create=False)
    try:
        if rollout_id is not None:
            yield [e for _, e in read_events(db, run_id=run_id, limit=1, printable=True)]
        after, size = 0, FIRST_CHUNK  # a small first chunk, so something shows at once
        while True:
            rows = read_events(
                db,
                run_id=None if rollout_id else run_id,
                rollout_id=rollout_id,
                after_seq=after,
                limit=size,
                printable=True,
            )
            if rows:
                after = rows[-1][0]
                yield [e for _, e in rows]
            if len(rows) < size:
                return
            size = chunk
    finally:
        db.close()
