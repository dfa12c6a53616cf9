"""`--executor ray`: a run's rollouts on the nodes of a Ray cluster, its events back to the one driver.

One `RolloutWorker` actor per node that offers the custom resource `nsjail` runs its share of the rollouts with the
engine's own Run machinery; the driver pulls each rollout's events in order and applies them through Run.emit, so
the driver stays the single writer of the store."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import ray
from ray.exceptions import RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from rlm_tui import events as ev
from rlm_tui.engine.control import Command, RolloutControl
from rlm_tui.engine.rollout import FatalRunError, one_line

JAIL_RESOURCE = "nsjail"  # a node says it can jail rollouts by offering this resource (ray start --resources)


def node_client(client: Any) -> Any:
    """What a worker can build its own model client from: the client itself when it travels (the scripted one),
    else the endpoint's settings; an API key never travels, each node reads its own OPENAI_API_KEY."""
    from rlm_tui.engine.clients import OpenAIClient

    if isinstance(client, OpenAIClient):
        return ("openai", client.base_url, client.max_retries, client.request_timeout)
    return client


def built_client(spec: Any) -> Any:
    if isinstance(spec, tuple) and spec[0] == "openai":
        from rlm_tui.engine.clients import OpenAIClient

        _, base_url, retries, timeout = spec
        key = os.environ.get("OPENAI_API_KEY")
        return OpenAIClient(base_url=base_url, api_key=key, max_retries=retries, request_timeout=timeout)
    return spec


class RolloutWorker:
    """On one node: a Run that never executes as a whole, only the rollouts the driver hands it."""

    def __init__(self, run_id: str, config: Any, env: Any, client: Any) -> None:
        from rlm_tui.engine.run import Run

        self.run = Run(config, env, built_client(client), sinks=[self._buffer], run_id=run_id)
        self.buffers: dict[str, list[ev.Event]] = {}
        self.wakes: dict[str, asyncio.Event] = {}
        self.semaphore: asyncio.Semaphore | None = None

    def _buffer(self, event: ev.Event) -> None:
        if event.rollout_id in self.buffers:
            self.buffers[event.rollout_id].append(event)
            self.wakes[event.rollout_id].set()

    def _wake(self, rollout_id: str) -> None:
        if rollout_id in self.wakes:  # gone: `events` already saw the rollout end
            self.wakes[rollout_id].set()

    async def start(self, rollout_id: str, example: Any, approve: bool) -> None:
        if self.semaphore is None:  # made in the actor's own loop
            self.semaphore = asyncio.Semaphore(self.run.config.concurrency)
        self.buffers[rollout_id], self.wakes[rollout_id] = [], asyncio.Event()
        self.run.controls[rollout_id] = RolloutControl(approve=approve)
        task = asyncio.create_task(self.run._one(self.semaphore, rollout_id, example))
        self.run.tasks[rollout_id] = task
        task.add_done_callback(lambda _: self._wake(rollout_id))

    async def events(self, rollout_id: str) -> tuple[list[ev.Event], bool, str | None, bool]:
        """(the rollout's events since the last call, whether it ended, a fatal run error, an engine error)."""
        task, wake = self.run.tasks[rollout_id], self.wakes[rollout_id]
        if not self.buffers[rollout_id] and not task.done():
            await wake.wait()
        wake.clear()
        batch, self.buffers[rollout_id] = self.buffers[rollout_id], []
        if not task.done():  # no await since the take: a done task has emitted all it will
            return batch, False, None, False
        error = task.exception() if not task.cancelled() else None
        fatal = str(error) if isinstance(error, FatalRunError) else None
        for table in (self.buffers, self.wakes, self.run.tasks, self.run.controls, self.run.state.rollouts):
            table.pop(rollout_id, None)  # the driver has it all now: a long run's worker holds only the live ones
        return batch, True, fatal, rollout_id in self.run.engine_errors

    async def submit(self, command: Command) -> None:
        if command.rollout_id in self.run.controls:
            self.run.controls[command.rollout_id].submit(command)

    async def kill(self, rollout_id: str) -> None:
        self.run._kill(rollout_id)


class RemoteControl:
    """The driver's handle on a rollout's control: a command goes to the worker that runs it."""

    def __init__(self, worker: Any, rollout_id: str) -> None:
        self.worker, self.rollout_id = worker, rollout_id

    def submit(self, command: Command) -> None:
        self.worker.submit.remote(command)  # the driver's Run.submit gave it this rollout's id


class RayExecutor:
    """The driver's side: one worker per jailing node, rollouts dealt round-robin, events pulled in order."""

    def __init__(self, run: Any) -> None:
        self.run = run
        if not ray.is_initialized():
            address = run.config.ray_address or os.environ.get("RAY_ADDRESS")
            # no cluster named: Ray starts one on this machine, which jails like the local executor does
            try:
                ray.init(address=address, log_to_driver=False, resources=None if address else {JAIL_RESOURCE: 1})
            except Exception as exc:  # no cluster there, or another Ray version: the run cannot start
                raise FatalRunError(f"cannot join the Ray cluster at {address}: {one_line(exc)[:200]}") from None
        nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get(JAIL_RESOURCE, 0) >= 1]
        if not nodes:
            raise FatalRunError(f"no node of the Ray cluster offers the resource {JAIL_RESOURCE!r}")
        actor = ray.remote(RolloutWorker)
        self.workers = [
            actor.options(
                resources={JAIL_RESOURCE: 1},
                num_cpus=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
            ).remote(run.id, run.config, run.env, node_client(run.client))
            for node in nodes
        ]
        self.nodes = {id(w): str(n["NodeID"]) for w, n in zip(self.workers, nodes, strict=True)}
        self.owner: dict[str, Any] = {}

    def control(self, rollout_id: str) -> RemoteControl:
        worker = self.workers[len(self.owner) % len(self.workers)]
        self.owner[rollout_id] = worker
        return RemoteControl(worker, rollout_id)

    def node_of(self, rollout_id: str) -> str:
        return self.nodes[id(self.owner[rollout_id])]

    async def run_one(self, rollout_id: str, example: Any) -> None:
        """Run the rollout on its worker and apply its events here; a lost node fails it, naming the node."""
        worker, run = self.owner[rollout_id], self.run
        try:
            await worker.start.remote(rollout_id, example, run.config.rollout.approve)
            while True:
                batch, ended, fatal, engine_error = await worker.events.remote(rollout_id)
                for event in batch:
                    run.emit(event)
                if fatal is not None:
                    raise FatalRunError(fatal)
                if ended:
                    if engine_error:
                        run.engine_errors.add(rollout_id)
                    return
        except RayActorError as exc:
            run.engine_errors.add(rollout_id)
            reason = f"node {self.node_of(rollout_id)} was lost: {one_line(exc)[:200]}"
            run._end(rollout_id, "failed", "error", reason)
        except asyncio.CancelledError:
            worker.kill.remote(rollout_id)
            raise
