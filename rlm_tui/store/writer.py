"""The batched event writer: append from any thread, one background thread commits."""

from __future__ import annotations

import atexit
import json
import math
import os
import socket
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

from rlm_tui.events import Event

from .schema import StoreError, open_db

_MARK_FAILED = (
    "UPDATE runs SET status = 'failed', error = ?, finished = coalesce(finished, ?) WHERE id = ?",
    "UPDATE rollouts SET status = 'failed', stop_reason = 'error', error = ?, finished = coalesce(finished, ?)"
    " WHERE run_id = ? AND status IN ('queued', 'running')",
)
_INSERT_EVENT = "INSERT INTO events (id, run_id, rollout_id, parent_id, kind, ts, data) VALUES (?, ?, ?, ?, ?, ?, ?)"
_STOP = object()


def _json(value: Any) -> str:
    try:
        return json.dumps(value, default=str, ensure_ascii=False, allow_nan=False)
    except ValueError:  # NaN or infinity: not JSON, and SQLite's json functions would reject the whole column
        return json.dumps(_finite(value), default=str, ensure_ascii=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _event_row(e: Event) -> tuple:
    return (e.id, e.run_id, e.rollout_id, e.parent_id, e.kind, e.ts, _json(e.payload()))


def _run_started(e: Any) -> tuple[str, tuple]:
    return (
        "INSERT INTO runs (id, env, mode, model, sub_model, num_rollouts, config, started, status, pid, hostname)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)"
        # a resumed run starts again in its own row: running, in this process, its first start kept
        " ON CONFLICT(id) DO UPDATE SET status = 'running', finished = NULL, error = NULL, pid = excluded.pid,"
        " hostname = excluded.hostname, num_rollouts = excluded.num_rollouts",
        (
            e.run_id,
            e.env,
            e.mode,
            e.model,
            e.sub_model,
            e.num_rollouts,
            _json(e.config),
            e.ts,
            os.getpid(),
            socket.gethostname(),
        ),
    )


def _run_finished(e: Any) -> tuple[str, tuple]:
    return "UPDATE runs SET status = ?, finished = ?, error = ? WHERE id = ?", (e.status, e.ts, e.error, e.run_id)


def _rollout_queued(e: Any) -> tuple[str, tuple]:
    return (
        "INSERT INTO rollouts (id, run_id, idx, example_id, info, target, status) VALUES (?, ?, ?, ?, ?, ?, 'queued')",
        (e.rollout_id, e.run_id, e.index, e.example_id, _json(e.info), _json(e.target)),
    )


def _rollout_started(e: Any) -> tuple[str, tuple]:
    return "UPDATE rollouts SET status = 'running', started = ? WHERE id = ?", (e.ts, e.rollout_id)


def _rollout_finished(e: Any) -> tuple[str, tuple]:
    return (
        "UPDATE rollouts SET status = ?, stop_reason = ?, reward = ?, answer = ?, metrics = ?, error = ?, finished = ?"
        " WHERE id = ?",
        (e.status, e.stop_reason, e.reward, _json(e.answer), _json(e.metrics), e.error, e.ts, e.rollout_id),
    )


def _rollout_resumed(e: Any) -> tuple[str, tuple]:
    return (
        "UPDATE rollouts SET status = 'running', stop_reason = NULL, reward = NULL, error = NULL, finished = NULL"
        " WHERE id = ?",
        (e.rollout_id,),
    )


# Events that also keep the one-row-per-run and per-rollout tables current
_ROW_UPKEEP = {
    "run_started": _run_started,
    "run_finished": _run_finished,
    "rollout_queued": _rollout_queued,
    "rollout_started": _rollout_started,
    "rollout_finished": _rollout_finished,
    "rollout_resumed": _rollout_resumed,
}


class EventWriter:
    """Commits appended events in batches, every `flush_interval` seconds or `max_batch` events."""

    def __init__(self, path: str | Path, *, flush_interval: float = 0.05, max_batch: int = 5000) -> None:
        self.path = Path(path)
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self.last_error: str | None = None
        self._unreported = False
        # once a batch fails the writer stores nothing more, so the log has no holes; it counts what it lost
        self._failure: str | None = None
        self.lost: Counter[str] = Counter()  # kind -> events of that kind not stored
        self._lost_rollouts: set[str] = set()
        self._runs: set[str] = set()
        self._marked: str | None = None  # what became of marking the runs failed
        self._loss_lock = threading.Lock()  # both append() and the writing thread count losses
        # deque.append is atomic, so append() needs no lock; items are events, flush markers or _STOP
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> None:
        """Check and migrate the database here, so errors raise now, then start the writing thread."""
        if self._thread is not None:
            return
        try:
            open_db(self.path).close()
        except StoreError:
            self._closed = True
            raise
        self._thread = threading.Thread(target=self._run, name="rlm-tui-store-writer", daemon=True)
        self._thread.start()
        # a daemon thread dies silently at exit; this still commits what was appended
        atexit.register(self.close)

    def append(self, event: Event) -> None:
        """Queue an event; never blocks. Raises StoreError once a write has failed: the event is not stored."""
        if self._closed:
            raise StoreError(f"event writer for {self.path} is closed; events appended now are not stored")
        if self._failure is not None:
            self._lose([event])
            raise StoreError(f"writing events to {self.path} failed: {self._failure}")
        self._queue.append(event)

    def flush(self) -> None:
        """Block until every event appended before this call is committed."""
        if self._thread is None:
            raise StoreError("event writer was never started; call start() before flush()")
        if self._closed:
            self._raise_unreported()
            return
        done = threading.Event()
        self._queue.append(done)
        self._wake.set()
        while not done.wait(0.5):
            if not self._thread.is_alive():
                raise StoreError(f"event writer for {self.path} stopped; {self.last_error or 'events were lost'}")
        self._raise_unreported()

    def close(self) -> None:
        """Commit what is queued and stop the thread; safe to call more than once.

        Raises StoreError saying what was not stored, and whether its runs could be marked failed, if any was lost."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        if self._thread is not None:
            self._queue.append(_STOP)
            self._wake.set()
            self._thread.join()
        if self._failure is not None:
            self._unreported = False
            raise StoreError(f"writing events to {self.path} failed: {self.loss()}; {self._marked}")
        self._raise_unreported()

    def loss(self) -> str:
        """What was not stored: how many events, of which kinds, from which rollouts."""
        kinds = ", ".join(f"{kind} {n}" for kind, n in self.lost.most_common())
        rollouts = sorted(self._lost_rollouts)
        shown = ", ".join(rollouts[:5]) + (f" and {len(rollouts) - 5} more" if len(rollouts) > 5 else "")
        where = f" from {len(rollouts)} rollouts ({shown})" if rollouts else ""
        return f"{self._failure}; {sum(self.lost.values())} events not stored ({kinds}){where}"

    def _lose(self, events: list[Any]) -> None:
        with self._loss_lock:
            for e in events:
                if isinstance(e, Event):
                    self.lost[e.kind] += 1
                    if e.rollout_id is not None:
                        self._lost_rollouts.add(e.rollout_id)

    def _raise_unreported(self) -> None:
        # each failure is raised once, so a close() after a failed flush() does not repeat it
        if self._unreported:
            self._unreported = False
            raise StoreError(f"writing events to {self.path} failed: {self.last_error}")

    def _fail(self, exc: BaseException, batch: list[Any]) -> None:
        if self._failure is None:
            self._failure = " ".join(f"{type(exc).__name__}: {exc}".split())
        self._lose(batch)
        self.last_error = self.loss()
        self._unreported = True

    def _open(self) -> Any:
        return open_db(self.path)

    def _run(self) -> None:
        try:
            db = self._open()
        except StoreError as exc:
            self._fail(exc, list(self._queue))
            self._marked = "the runs could not be marked failed: the database did not open"
            return
        try:
            while True:
                self._wake.wait(self.flush_interval)
                self._wake.clear()
                if self._drain(db):
                    if self._failure is not None:
                        self._mark_failed(db)
                    return
        finally:
            db.close()

    def _mark_failed(self, db: Any) -> None:
        """Leave the runs that lost events marked failed, with what was lost, if the database takes that much."""
        error, marked = f"events were not stored: {self.loss()}", 0
        try:
            with db.atomic():
                for run_id in sorted(self._runs):
                    marked += db.conn.execute(_MARK_FAILED[0], (error, time.time(), run_id)).rowcount
                    db.conn.execute(_MARK_FAILED[1], (error, time.time(), run_id))
        except Exception as exc:
            self._marked = f"the run could not be marked failed either ({type(exc).__name__}: {exc})"
        else:
            self._marked = "the run is marked failed" if marked else "the run's own row was never stored"

    def _drain(self, db: Any) -> bool:
        """Commit everything queued; True once _STOP is reached."""
        batch: list[Event] = []
        while self._queue:
            item = self._queue.popleft()
            if item is _STOP:
                self._write(db, batch)
                return True
            if isinstance(item, threading.Event):  # a flush: everything before it is committed
                self._write(db, batch)
                batch = []
                item.set()
                continue
            batch.append(item)
            if len(batch) >= self.max_batch:
                self._write(db, batch)
                batch = []
        self._write(db, batch)
        return False

    def _write(self, db: Any, batch: list[Event]) -> None:
        if not batch:
            return
        self._runs.update(e.run_id for e in batch)
        if self._failure is not None:
            self._lose(batch)
            return
        try:
            with db.atomic():
                db.conn.executemany(_INSERT_EVENT, [_event_row(e) for e in batch])
                for e in batch:
                    upkeep = _ROW_UPKEEP.get(e.kind)
                    if upkeep is not None:
                        db.conn.execute(*upkeep(e))
        except Exception as exc:
            self._fail(exc, batch)
