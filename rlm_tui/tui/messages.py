"""Every message of the app's own: what its worker threads deliver, and what its screens ask of it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message

from rlm_tui import events as ev
from rlm_tui.tui.sources import TailSource

if TYPE_CHECKING:  # the report's modules load only when its view opens
    from rlm_tui.report.data import Row


@dataclass
class EventsArrived(Message):
    """One poll's worth of a tailed run's events."""

    source: TailSource
    events: list[ev.Event]
    over: bool


@dataclass
class RunLoaded(Message):
    """A chunk of a replay's stored events; the last one has `done` set."""

    token: object
    events: list[ev.Event]
    done: bool
    error: str | None = None
    folded: Callable[[], None] | None = None  # called once the chunk is folded, so the reader sends the next


@dataclass
class RunsRead(Message):
    """The runs in the database, read again for the runs view."""

    rows: list[dict[str, Any]]
    error: str | None = None


@dataclass
class ReportRead(Message):
    """The report view's rollouts, read for the runs it names."""

    title: str
    rows: list[Row]
    error: str | None = None


@dataclass
class OpenRun(Message):
    """A view wants `run_id` folded: the whole run (`rollout_id` None) from a tail or a replay."""

    run_id: str
    rollout_id: str | None = None
    show: bool = False  # also show it: back to the runs view, then the run's view
