"""Operator commands: queued per rollout, applied by the rollout loop at its safe points."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rlm_tui.events import new_id

ACTIONS = ("pause", "resume", "step", "inject", "exec", "edit_answer", "finish", "kill", "approval")
DECISIONS = ("approve", "skip", "reply")  # what the operator does with a cell waiting in approve mode
RUN_ACTIONS = ("pause", "resume", "kill", "approval")  # what may target the whole run


class ControlError(Exception):
    """A command that cannot be carried out; the message is one line."""


@dataclass(frozen=True)
class Command:
    action: str
    rollout_id: str | None = None  # None: the whole run
    text: str = ""  # the message, the code, or the new answer
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS + DECISIONS:
            raise ControlError(f"unknown action {self.action!r}; choose one of: {', '.join(ACTIONS + DECISIONS)}")
        if self.action == "approval" and self.text not in ("on", "off"):
            raise ControlError(f"approval is on or off, not {self.text[:40]!r}")
        if self.rollout_id is None and self.action not in RUN_ACTIONS:
            raise ControlError(f"{self.action} needs a rollout; only {', '.join(RUN_ACTIONS)} apply to a whole run")


class RolloutControl:
    """What the operator asked of one rollout and it has not yet acted on."""

    def __init__(self, paused: bool = False, approve: bool = False) -> None:
        self.paused = paused
        self.approve = approve  # each cell the model proposes waits for the operator's decision
        self.steps = 0  # turns to run while paused
        self.queue: deque[Command] = deque()
        self._wake = asyncio.Event()

    def submit(self, command: Command) -> None:
        self.queue.append(command)
        self._wake.set()

    async def wait(self) -> None:
        """Sleep until a command arrives."""
        self._wake.clear()
        if not self.queue:
            await self._wake.wait()


def queued_commands(db: Any, run_id: str) -> list[Command]:
    """The engine's command source: the commands for `run_id` that the store holds and no engine took yet."""
    from rlm_tui.store import take_commands

    commands = []
    for row in take_commands(db, run_id):
        try:
            commands.append(Command(row["action"], row["rollout_id"], row["text"] or "", row["id"]))
        except ControlError:
            pass  # the sender validated it; a malformed row changes nothing
    return commands
