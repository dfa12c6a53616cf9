"""A run: many rollouts of one environment in one mode, concurrently in one asyncio loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from rlm_tui import events as ev
from rlm_tui.engine.clients import ModelClient
from rlm_tui.engine.control import Command, ControlError, RolloutControl
from rlm_tui.engine.rollout import FatalRunError, Rollout, RolloutSettings
from rlm_tui.env import Environment
from rlm_tui.state import RunState

Sink = Callable[[ev.Event], None]
CommandSource = Callable[[str], list[Command]]  # run id -> commands not yet taken
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class RunConfig:
    env: str
    env_args: dict[str, str] = field(default_factory=dict)
    num_examples: int = 5
    seed: int = 0
    concurrency: int = 8
    base_url: str | None = None
    rollout: RolloutSettings = RolloutSettings()
    example_ids: tuple[str, ...] | None = None  # run only these examples (a resumed grid cell)
    grid: str | None = None  # the grid (rlm-tui ablate) this run belongs to
    cell: dict[str, Any] | None = None  # its cell in that grid

    def describe(self) -> dict[str, Any]:
        return asdict(self)


class Run:
    """Owns the RunState it folds from its own events, and fans each event out to the sinks."""

    def __init__(self, config: RunConfig, env: Environment, client: Any, sinks: list[Sink],
                 commands: CommandSource | None = None, run_id: str | None = None) -> None:
        self.config, self.env, self.client, self.sinks, self.commands = config, env, client, sinks, commands
        self.id = run_id or ev.new_id()
        self.state = RunState(id=self.id)
        self.error: str | None = None
        self.controls: dict[str, RolloutControl] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self.killed: set[str] = set()
        self.paused = False

    def emit(self, event: ev.Event) -> None:
        self.state.apply(event)
        for sink in self.sinks:
            sink(event)

    async def execute(self) -> RunState:
        c, s = self.config, self.config.rollout
        examples = self.env.examples(c.num_examples, c.seed)
        if c.example_ids is not None:
            examples = [e for e in examples if e.id in set(c.example_ids)]
        self.emit(ev.RunStarted(run_id=self.id, env=c.env, mode=s.mode, model=s.model, sub_model=s.sub_model,
                                num_rollouts=len(examples), config=c.describe()))
        rollouts = []
        for index, example in enumerate(examples):
            queued = ev.RolloutQueued(run_id=self.id, rollout_id=ev.new_id(), index=index, example_id=example.id,
                                      info=example.info, target=example.target)
            self.emit(queued)
            rollouts.append((queued.rollout_id, example))
            self.controls[queued.rollout_id] = RolloutControl()
        semaphore = asyncio.Semaphore(c.concurrency)
        self.tasks = {rid: asyncio.create_task(self._one(semaphore, rid, ex)) for rid, ex in rollouts}
        poller = asyncio.create_task(self._poll()) if self.commands else None
        status = "done"
        try:
            await asyncio.gather(*self.tasks.values())
        except FatalRunError as exc:
            status, self.error = "failed", str(exc)
        except asyncio.CancelledError:
            status, self.error = "killed", "the run was stopped"
        finally:
            if poller:
                poller.cancel()
            for task in self.tasks.values():
                task.cancel()
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
            if status == "done" and self.killed and len(self.killed) == len(self.tasks):
                status = "killed"
            self._close_unfinished(status)
            self.emit(ev.RunFinished(run_id=self.id, status=status, error=self.error))
        return self.state

    def submit(self, command: Command) -> None:
        """Apply an operator command; call it from the engine's own event loop."""
        target = command.rollout_id
        if target is not None and target not in self.controls:
            raise ControlError(f"run {self.id} has no rollout {target}")
        if target is None:
            self.emit(ev.OperatorAction(run_id=self.id, action=command.action, text=command.text,
                                        command_id=command.id))
            if command.action in ("pause", "resume"):
                self.paused = command.action == "pause"
                for rid, control in self.controls.items():
                    control.submit(Command(command.action, rid))
            else:
                for rid in self.tasks:
                    self._kill(rid)
        elif command.action == "kill":
            self.emit(ev.OperatorAction(run_id=self.id, rollout_id=target, action="kill", command_id=command.id))
            self._kill(target)
        else:
            self.controls[target].submit(command)

    def _kill(self, rollout_id: str) -> None:
        task = self.tasks.get(rollout_id)
        if task is not None and not task.done():
            self.killed.add(rollout_id)
            task.cancel()

    async def _poll(self) -> None:
        """Take commands that another process (the app, `attach`) left in the store."""
        while True:
            try:
                commands = self.commands(self.id)
            except Exception:  # a busy or briefly locked database: the commands wait for the next poll
                commands = []
            for command in commands:
                try:
                    self.submit(command)
                except ControlError:
                    pass  # a command for a rollout that is gone changes nothing
            await asyncio.sleep(POLL_SECONDS)

    async def _one(self, semaphore: asyncio.Semaphore, rollout_id: str, example: Any) -> None:
        try:
            async with semaphore:
                client: ModelClient = self.client.for_rollout(example, self.config.rollout.mode)
                rollout = Rollout(run_id=self.id, rollout_id=rollout_id, example=example, env=self.env,
                                  client=client, settings=self.config.rollout, emit=self.emit,
                                  control=self.controls[rollout_id], state=lambda: self.state.rollouts[rollout_id],
                                  metrics=lambda: self.state.rollouts[rollout_id].metrics(time.time()))
                await rollout.run()
        except asyncio.CancelledError:
            if rollout_id not in self.killed:
                raise
            state = self.state.rollouts[rollout_id]
            self.emit(ev.RolloutFinished(run_id=self.id, rollout_id=rollout_id, status="killed", stop_reason="killed",
                                         answer=dict(state.answer), reward=None, metrics=state.metrics(time.time()),
                                         error="killed by the operator"))

    def _close_unfinished(self, status: str) -> None:
        """Rollouts cut short by a failed or stopped run still end in the log, with their answer so far."""
        for rollout in self.state.rollouts.values():
            if rollout.status in ("queued", "running"):
                self.emit(ev.RolloutFinished(run_id=self.id, rollout_id=rollout.id, status="killed",
                                             stop_reason="killed" if status == "killed" else "error",
                                             answer=dict(rollout.answer), reward=None,
                                             metrics=rollout.metrics(time.time()), error=self.error))
