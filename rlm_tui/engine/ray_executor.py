"""`--executor ray`: a run's rollouts on the nodes of a Ray cluster, its events back to the one driver.

One `RolloutWorker` actor per node that offers the custom resource `nsjail` runs its share of the rollouts with the
engine's own Run machinery; the driver pulls each node's stream of events (in order per rollout) and applies them
through Run.emit, so the driver stays the single writer of the store."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import ray
from ray.exceptions import RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from rlm_tui import events as ev
from rlm_tui.engine.control import Command, RolloutControl
from rlm_tui.engine.ray_limits import ClusterError, cluster_address, probe, ray_refuses
from rlm_tui.engine.rollout import FatalRunError, one_line

JAIL_RESOURCE = "nsjail"  # a node says it can jail rollouts by offering this resource (ray start --resources)
LINGER_SECONDS = 0.02  # a node's events wait this long to travel together: fewer, larger messages


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
    """On one node: a Run that never executes as a whole, only the rollouts the driver hands it. Their events go
    back in one stream per node, a batch per `pull`, in the order they happened."""

    def __init__(self, run_class: type, run_id: str, config: Any, env: Any, client: Any, fork: Any) -> None:
        # the driver's Run class travels by name: this module does not import the one that imports it
        self.run = run_class(config, env, built_client(client), sinks=[self._buffer], run_id=run_id, fork=fork)
        self.outbox: list[ev.Event] = []
        self.ended: list[tuple[str, str | None, bool]] = []  # (rollout id, a fatal run error, an engine error)
        self.wake = asyncio.Event()
        self.semaphore: asyncio.Semaphore | None = None

    def _buffer(self, event: ev.Event) -> None:
        self.outbox.append(event)
        self.wake.set()

    def _end(self, rollout_id: str, task: asyncio.Task) -> None:
        """After the rollout's last event: the driver learns it ended in the same batch or a later one."""
        error = task.exception() if not task.cancelled() else None
        fatal = str(error) if isinstance(error, FatalRunError) else None
        self.ended.append((rollout_id, fatal, rollout_id in self.run.engine_errors))
        self.wake.set()
        for table in (self.run.tasks, self.run.controls, self.run.state.rollouts, self.run.continued):
            table.pop(rollout_id, None)  # the driver has it all now: a long run's worker holds only the live ones
        self.run.engine_errors.discard(rollout_id)

    async def start(self, rollout_id: str, example: Any, prelude: list[ev.Event], paused: bool, continued: Any) -> None:
        """`prelude`: the rollout's events so far (its queueing, a resumed run's log of it), folded here only."""
        if self.semaphore is None:  # made in the actor's own loop
            self.semaphore = asyncio.Semaphore(self.run.config.concurrency)
        for event in prelude:
            self.run.state.apply(event)
        if continued is not None:
            self.run.continued[rollout_id] = continued
        self.run.controls[rollout_id] = RolloutControl(paused=paused, approve=self.run.config.rollout.approve)
        task = asyncio.create_task(self.run._one(self.semaphore, rollout_id, example))
        self.run.tasks[rollout_id] = task
        task.add_done_callback(lambda done: self._end(rollout_id, done))

    async def pull(self) -> tuple[list[ev.Event], list[tuple[str, str | None, bool]]]:
        """(every event since the last pull, the rollouts that ended since); waits for at least one of either,
        then LINGER_SECONDS more, so that a busy node sends a few messages of many events, not one per event."""
        while not self.outbox and not self.ended:
            self.wake.clear()
            await self.wake.wait()
        await asyncio.sleep(LINGER_SECONDS)
        events, ended, self.outbox, self.ended = self.outbox, self.ended, [], []
        return events, ended

    async def submit(self, command: Command) -> None:
        if command.rollout_id in self.run.controls:
            self.run.controls[command.rollout_id].submit(command)

    async def kill(self, rollout_id: str) -> None:
        self.run._kill(rollout_id)


class NodeLost(Exception):
    """The node of a rollout's attempt is gone; the message is one line."""


class RemoteControl:
    """The driver's handle on a rollout's control: a command goes to the worker that runs it now."""

    def __init__(self, executor: RayExecutor, rollout_id: str) -> None:
        self.executor, self.rollout_id = executor, rollout_id

    def submit(self, command: Command) -> None:
        self.executor.worker_of(self.rollout_id).submit.remote(command)  # Run.submit gave it this rollout's id


def join(address: str | None) -> None:
    """Connect to the cluster at `address` (else RAY_ADDRESS), or start one on this machine."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is not None:
        try:
            address = cluster_address(address)
        except ValueError as exc:
            raise ClusterError(str(exc)) from None
        probe(address)
    resources = None if address else {JAIL_RESOURCE: 1.0}  # no cluster named: Ray starts one here, which jails
    with tempfile.TemporaryFile() as said:
        try:
            # Ray's core logs each failed try to fd 2; not when it starts a cluster, whose daemons would inherit it
            with _stderr_to(said) if address else nullcontext():
                ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING, resources=resources)
            return
        except Exception as exc:  # not a Ray head there, or another Ray version: the run cannot start
            why = one_line(exc)[:200]
        said.seek(0)
        if b"InvalidAuthToken" in said.read(1 << 20) and os.environ.get("RAY_AUTH_MODE") != "token":
            why = "the cluster asks for a token: set RAY_AUTH_MODE=token here (the token is ~/.ray/auth_token)"
    raise ClusterError(f"cannot join the Ray cluster at {address}: {why}")


@contextmanager
def _stderr_to(file: Any) -> Iterator[None]:
    """File descriptor 2 into `file` meanwhile: the error says in one line what the logs say in many."""
    saved = os.dup(2)
    try:
        os.dup2(file.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def jailing_nodes(config: Any) -> list[dict[str, Any]]:
    """The live nodes of the cluster that can run `config`'s rollouts; ClusterError when it cannot run there."""
    why = ray_refuses(config)
    if why is not None:
        raise ClusterError(why)
    join(config.ray_address)
    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get(JAIL_RESOURCE, 0) >= 1]
    if not nodes:
        raise ClusterError(f"no live node of the Ray cluster offers the resource {JAIL_RESOURCE!r}")
    return nodes


class RayExecutor:
    """The driver's side: one worker per jailing node, rollouts dealt round-robin over the live ones, events pulled
    in order; a rollout whose node is lost starts again on another up to `retries` times."""

    def __init__(self, run: Any) -> None:
        self.run = run
        nodes = jailing_nodes(run.config)
        actor = ray.remote(RolloutWorker)
        client = node_client(run.client)
        self.workers: dict[str, Any] = {
            str(node["NodeID"]): actor.options(
                resources={JAIL_RESOURCE: 1},
                num_cpus=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
            ).remote(type(run), run.id, run.config, run.env, client, run.fork)
            for node in nodes
        }
        self.live = list(self.workers)  # nodes not seen lost
        self.owner: dict[str, str] = {}  # rollout id -> the node that runs it
        self.dealt = 0
        self.waiting: dict[str, asyncio.Future] = {}  # rollout id -> the end of its attempt under way
        self.sent: dict[str, int] = {}  # rollout id -> events its attempt under way has sent
        self.pumps: dict[str, asyncio.Task] = {}  # node -> the task that applies its stream of events
        self.preludes: dict[str, list[ev.Event]] = defaultdict(list)
        for event in run.history:
            if event.rollout_id is not None:
                self.preludes[event.rollout_id].append(event)

    def control(self, rollout_id: str) -> RemoteControl:
        self._deal(rollout_id)
        return RemoteControl(self, rollout_id)

    def _deal(self, rollout_id: str) -> None:
        self.owner[rollout_id] = self.live[self.dealt % len(self.live)]
        self.dealt += 1

    def node_of(self, rollout_id: str) -> str:
        return self.owner[rollout_id]

    def worker_of(self, rollout_id: str) -> Any:
        return self.workers[self.owner[rollout_id]]

    def close(self) -> None:
        for pump in self.pumps.values():
            pump.cancel()
        for worker in self.workers.values():
            try:
                ray.kill(worker)
            except Exception:  # gone with its node, or the cluster is: nothing to free
                pass

    def _prelude(self, rollout_id: str) -> list[ev.Event]:
        if rollout_id in self.preludes:  # a resumed run: its log of the rollout, as a local resume folds it
            return self.preludes[rollout_id]
        r = self.run.state.rollouts[rollout_id]
        queued = ev.RolloutQueued(
            run_id=self.run.id, rollout_id=r.id, index=r.index, example_id=r.example_id, info=r.info, target=r.target
        )
        return [queued]

    async def run_one(self, rollout_id: str, example: Any) -> None:
        """Run the rollout on its node, its events applied here; a lost node has it start again on a live one
        (its new rollout_started sets aside what the lost attempt sent, as `resume` does), past the retries it
        fails, naming the node."""
        run, retries = self.run, self.run.config.retries
        for attempt in range(retries + 1):
            node = self.owner[rollout_id]
            try:
                await self._attempt(node, rollout_id, example)
                return
            except (RayActorError, NodeLost) as exc:
                lost = f"node {node} was lost: {one_line(exc)[:200]}"
            except asyncio.CancelledError:
                self.workers[node].kill.remote(rollout_id)
                raise
            if node in self.live:
                self.live.remove(node)
            if run.state.rollouts[rollout_id].status not in ("queued", "running"):
                return  # it had ended before its node went
            if rollout_id in run.continued and self.sent[rollout_id]:
                lost += "; a rollout that went on past a budget does not start again: `rlm-tui resume` runs it"
                break
            if attempt == retries or not self.live:
                break
            self._deal(rollout_id)
            print(
                f"rlm-tui: {lost}; rollout {rollout_id} starts again on node {self.owner[rollout_id]} "
                f"(retry {attempt + 1} of {retries})",
                file=sys.stderr,
                flush=True,
            )
        if retries:
            lost += f" (after {attempt} of {retries} retries)"
        run.engine_errors.add(rollout_id)
        run._end(rollout_id, "failed", "error", lost)

    async def _attempt(self, node: str, rollout_id: str, example: Any) -> None:
        run = self.run
        self.waiting[rollout_id] = ended = asyncio.get_running_loop().create_future()
        self.sent[rollout_id] = 0
        if node not in self.pumps:
            self.pumps[node] = asyncio.create_task(self._pump(node))
        try:
            prelude = self._prelude(rollout_id)
            await self.workers[node].start.remote(
                rollout_id, example, prelude, run.paused, run.continued.get(rollout_id)
            )
            fatal, engine_error = await ended
        finally:
            del self.waiting[rollout_id]  # a killed attempt's last events are the driver's to write, not the node's
        if fatal is not None:
            raise FatalRunError(fatal)
        if engine_error:
            run.engine_errors.add(rollout_id)

    async def _pump(self, node: str) -> None:
        """Apply the node's events as they come, each to its rollout's attempt under way there; end attempts."""
        worker = self.workers[node]
        try:
            while True:
                events, ended = await worker.pull.remote()
                for event in events:
                    rid = event.rollout_id
                    if rid in self.waiting and self.owner[rid] == node:
                        self.sent[rid] += 1
                        self.run.emit(event)
                for rid, fatal, engine_error in ended:
                    future = self.waiting.get(rid)
                    if future is not None and self.owner[rid] == node and not future.done():
                        future.set_result((fatal, engine_error))
        except Exception as exc:  # the node is gone (or its stream broke): so are its attempts under way
            why = one_line(exc)
            for rid, future in self.waiting.items():
                if self.owner[rid] == node and not future.done():
                    future.set_exception(NodeLost(why))
