"""The SQLite event store: schema and migrations, the batched writer, readers, the command queue."""

from .commands import send_command, take_commands
from .database import Database
from .reader import (
    AmbiguousId,
    get_rollout,
    get_run,
    latest_run_id,
    list_rollouts,
    list_runs,
    read_events,
    resolve_rollout_id,
    resolve_run_id,
    resolve_run_or_rollout,
    run_over,
)
from .schema import StoreError, default_db_path, open_db
from .writer import EventWriter

__all__ = [
    "AmbiguousId",
    "Database",
    "EventWriter",
    "StoreError",
    "default_db_path",
    "get_rollout",
    "get_run",
    "latest_run_id",
    "list_rollouts",
    "list_runs",
    "open_db",
    "read_events",
    "resolve_rollout_id",
    "resolve_run_id",
    "resolve_run_or_rollout",
    "run_over",
    "send_command",
    "take_commands",
]
