"""A run's state: its rollouts folded from the event log, and where the operator's actions fall."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

from rlm_tui import events as ev
from rlm_tui.state.records import Cell
from rlm_tui.state.rollout import RolloutState


@dataclass
class RunState:
    id: str
    env: str = ""
    mode: str = ""
    model: str = ""
    sub_model: str = ""
    num_rollouts: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    status: str = "running"
    error: str | None = None
    started: float | None = None
    finished: float | None = None
    paused: bool = False  # the operator paused the whole run
    rollouts: dict[str, RolloutState] = field(default_factory=dict)

    def apply(self, e: ev.Event) -> None:
        if isinstance(e, ev.RunStarted):
            self.env, self.mode, self.model, self.sub_model = e.env, e.mode, e.model, e.sub_model
            self.num_rollouts, self.config, self.started = e.num_rollouts, e.config, e.ts
        elif isinstance(e, ev.RunFinished):
            self.status, self.error, self.finished = e.status, e.error, e.ts
        elif isinstance(e, ev.OperatorAction) and e.rollout_id is None:
            if e.action in ("pause", "resume"):
                self.paused = e.action == "pause"
        elif e.rollout_id is not None:
            rollout = self.rollouts.get(e.rollout_id)
            if rollout is None:
                rollout = self.rollouts[e.rollout_id] = RolloutState(id=e.rollout_id)
            elif isinstance(e, ev.RolloutStarted) and rollout.status != "queued":
                # a resumed run starts an unfinished rollout again; the earlier attempt stays in the log only
                rollout = self.rollouts[e.rollout_id] = RolloutState(
                    id=rollout.id,
                    index=rollout.index,
                    example_id=rollout.example_id,
                    info=rollout.info,
                    target=rollout.target,
                    approving=rollout.approving,
                )
            rollout.apply(e)
            if isinstance(e, ev.RolloutQueued):
                settings = self.config.get("rollout")
                rollout.approving = isinstance(settings, dict) and settings.get("approve") is True

    @property
    def done(self) -> list[RolloutState]:
        return [r for r in self.rollouts.values() if r.status in ("done", "failed", "killed")]

    @property
    def retries(self) -> int:
        return sum(len(r.retries) for r in self.rollouts.values())

    @property
    def cost_usd(self) -> float | None:
        """Every rollout's calls together; None when any call's cost is unknown."""
        costs = [r.cost_usd for r in self.rollouts.values()]
        return None if None in costs else sum(c for c in costs if c is not None)

    @property
    def mean_reward(self) -> float | None:
        rewards = [r.reward for r in self.rollouts.values() if r.reward is not None]
        return sum(rewards) / len(rewards) if rewards else None


def fold(events: list[ev.Event], run_id: str) -> RunState:
    state = RunState(id=run_id)
    for e in events:
        state.apply(e)
    return state


def operator_by_turn(r: RolloutState) -> dict[int, list[Cell | ev.OperatorAction]]:
    """Operator actions and cells by how many turns had started when they happened."""
    starts = [t.started or 0.0 for t in r.turns]
    cells = list(r.operator_cells)
    placed: dict[int, list[Cell | ev.OperatorAction]] = {}
    for action in r.operator:
        at = bisect_right(starts, action.ts)
        if action.action in ("exec", "edit_answer"):
            code = action.text if action.action == "exec" else f'answer["content"] = {action.text!r}'
            match = next((c for c in cells if c.code == code), None)
            if match is not None:
                cells.remove(match)
                placed.setdefault(match.turn, []).append(match)
                continue
            if action.action == "exec":
                continue  # its cell has not started yet
        placed.setdefault(at, []).append(action)
    for cell in cells:
        placed.setdefault(cell.turn, []).append(cell)
    return placed
