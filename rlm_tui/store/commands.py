"""The command queue: operators (the app, `attach`) write commands; the engine of the run takes them."""

from __future__ import annotations

import time
from typing import Any

from rlm_tui.events import new_id

from .database import Database


def send_command(db: Database, run_id: str, action: str, rollout_id: str | None = None, text: str = "") -> str:
    command_id = new_id()
    with db.conn:
        db.execute(
            "INSERT INTO commands (id, run_id, rollout_id, action, text, created) VALUES (?, ?, ?, ?, ?, ?)",
            [command_id, run_id, rollout_id, action, text, time.time()],
        )
    return command_id


def take_commands(db: Database, run_id: str) -> list[dict[str, Any]]:
    """Commands for `run_id` not yet taken, oldest first, marked taken in the same transaction."""
    # Polled ten times a second: a plain read when nothing waits, so the write lock is left to the event writer.
    if db.execute("SELECT 1 FROM commands WHERE run_id = ? AND taken IS NULL LIMIT 1", [run_id]).fetchone() is None:
        return []
    with db.conn:
        rows = db.execute(
            "UPDATE commands SET taken = ? WHERE run_id = ? AND taken IS NULL "
            "RETURNING id, rollout_id, action, text, created",
            [time.time(), run_id],
        ).fetchall()
    return [{"id": r[0], "rollout_id": r[1], "action": r[2], "text": r[3]} for r in sorted(rows, key=lambda r: r[4])]
