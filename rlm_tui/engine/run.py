"""A run: many rollouts of one environment in one mode, concurrently in one asyncio loop."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from rlm_tui import events as ev
from rlm_tui.engine.budgets import Budget, Spent
from rlm_tui.engine.control import Command, ControlError, RolloutControl
from rlm_tui.engine.fork import Fork, ForkPoint
from rlm_tui.engine.generation import Generation
from rlm_tui.engine.judge import RunJudge
from rlm_tui.engine.prices import Price, PriceError
from rlm_tui.engine.replies import ModelClient
from rlm_tui.engine.rollout import FatalRunError, Rollout, RolloutSettings, one_line
from rlm_tui.env import Environment
from rlm_tui.sandbox import Limits
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
    concurrency: int = 8  # per worker under --executor ray
    executor: str = "local"  # "ray": the rollouts run on a Ray cluster's nodes (engine/ray_executor.py)
    ray_address: str | None = None
    retries: int = 0  # under --executor ray: times a rollout whose node was lost starts again on another
    base_url: str | None = None
    context_limit: int | None = None  # the root model's context window, recorded for the app's gauge
    rollout: RolloutSettings = RolloutSettings()
    example_ids: tuple[str, ...] | None = None  # run only these examples (a resumed grid cell)
    grid: str | None = None  # the grid (rlm-tui ablate) this run belongs to
    cell: dict[str, Any] | None = None  # its cell in that grid
    stall_seconds: float | None = None  # no event for this long is a stall; None: twice the cell timeout + 60 s
    forked_from: dict[str, Any] | None = None  # {rollout_id, run_id, turn}: this run is a fork of that rollout
    run_budget: Budget = Budget()  # the whole run's: see --run-max-usd and the others
    prices_date: str = ""  # the date of the price table the run's prices came from
    simulation: dict[str, Any] | None = None  # the offline model's window and error scale, for resume and fork

    @property
    def stall_after(self) -> float:
        return self.stall_seconds if self.stall_seconds is not None else 2 * self.rollout.timeout + 60

    def describe(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """The config a stored run_started recorded (unknown keys from a newer writer are dropped)."""
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        rollout = {k: v for k, v in data.get("rollout", {}).items() if k in {f.name for f in fields(RolloutSettings)}}
        limits = {k: v for k, v in rollout.get("limits", {}).items() if k in {f.name for f in fields(Limits)}}
        rollout["limits"] = Limits(**limits)
        rollout["budget"] = Budget.from_dict(rollout.get("budget"))
        for key in ("price", "sub_price"):
            try:
                rollout[key] = Price.from_dict(rollout[key], key) if rollout.get(key) is not None else None
            except PriceError:
                rollout[key] = None  # a damaged price is an unknown one
        data["run_budget"] = Budget.from_dict(data.get("run_budget"))
        for key in ("generation", "sub_generation"):
            rollout[key] = Generation.from_dict(rollout.get(key))
        if "tool_protocol" not in rollout:  # recorded before the protocols: native calls, no reminder
            rollout.update(tool_protocol="native", max_nudges=0)
        depth, approve = rollout.get("max_depth", 1), rollout.get("approve", False)
        rollout["max_depth"] = (
            depth if isinstance(depth, int) and not isinstance(depth, bool) and 1 <= depth <= 4 else 1
        )
        rollout["approve"] = approve is True  # the stored config is untrusted: anything else is not approve mode
        data["rollout"] = RolloutSettings(**rollout)
        retries = data.get("retries", 0)
        data["retries"] = retries if isinstance(retries, int) and not isinstance(retries, bool) and retries >= 0 else 0
        if data.get("example_ids") is not None:
            data["example_ids"] = tuple(data["example_ids"])
        return cls(**data)


class Run:
    """Owns the RunState it folds from its own events, and fans each event out to the sinks."""

    def __init__(
        self,
        config: RunConfig,
        env: Environment,
        client: Any,
        sinks: list[Sink],
        commands: CommandSource | None = None,
        run_id: str | None = None,
        history: list[ev.Event] | None = None,
        fork: Fork | None = None,
        continued: dict[str, ForkPoint] | None = None,
    ) -> None:
        """`history`: the stored events of the run `run_id`, to resume it: its unfinished rollouts run again.
        `fork`: the run's one rollout starts at that turn of a stored rollout. `continued`: rollouts of `history`
        a budget stopped, by id, that go on from where they stopped."""
        self.config, self.env, self.client, self.sinks, self.commands = config, env, client, sinks, commands
        self.fork, self.continued = fork, continued or {}
        self.id = run_id or ev.new_id()
        self.state = RunState(id=self.id)
        for event in history or ():
            self.state.apply(event)
        self.resumed = bool(history)
        self.history = history or []  # a remote rollout's node folds its share of it (engine/ray_executor.py)
        self.error: str | None = None
        self.controls: dict[str, RolloutControl] = {}
        self.tasks: dict[str, asyncio.Task] = {}
        self.killed: set[str] = set()
        self.paused = False
        self.sandbox_started = False  # a rollout got past start-up: a later start failure is that rollout's alone
        self.engine_errors: set[str] = set()  # rollouts that ended on an unexpected exception
        self.store_error: str | None = None  # the store stopped taking events: the run stops
        self.last_event: dict[str, tuple[str, float]] = {}  # rollout id -> (kind, ts) of its latest event
        self.last_ts = time.time()
        self.remote: Any = None  # the RayExecutor under --executor ray

    def emit(self, event: ev.Event) -> None:
        self.state.apply(event)
        if event.kind != "run_stalled":  # saying a run stalled is no sign of life
            self.last_ts = event.ts
        if event.rollout_id is not None:
            self.last_event[event.rollout_id] = (event.kind, event.ts)
        for sink in self.sinks:
            try:
                sink(event)
            except Exception as exc:  # the store (or another sink) lost this event: the run cannot go on unrecorded
                self._stop_on_store_error(str(exc) or one_line(exc))

    async def execute(self) -> RunState:
        ask = getattr(self.client, "context_window", None)  # what the server says wins over --context-limit
        window = await ask(self.config.rollout.model) if ask is not None else None
        if window is not None:
            self.config = replace(self.config, context_limit=window)
        c, s = self.config, self.config.rollout
        examples = self.env.examples(c.num_examples, c.seed)
        if c.example_ids is not None:
            examples = [e for e in examples if e.id in set(c.example_ids)]
        earlier = {r.example_id: r for r in self.state.rollouts.values()}
        examples = [
            e
            for e in examples
            if e.id not in earlier or earlier[e.id].status != "done" or earlier[e.id].id in self.continued
        ]
        total = len(set(earlier) | {e.id for e in examples})
        if c.executor == "ray":  # the seam: rollouts run on a cluster's nodes, their events come back here
            from rlm_tui.engine.ray_executor import RayExecutor

            self.remote = RayExecutor(self)  # before the run starts: a cluster it cannot use fails it unstarted
        self.emit(
            ev.RunStarted(
                run_id=self.id,
                env=c.env,
                mode=s.mode,
                model=s.model,
                sub_model=s.sub_model,
                num_rollouts=total,
                config={**c.describe(), "data_note": self.env.data_note},
            )
        )
        rollouts = []
        for example in examples:
            if example.id in earlier:  # resumed: the same rollout starts again
                rollout_id = earlier[example.id].id
            else:
                rollout_id = ev.new_id()
                self.emit(
                    ev.RolloutQueued(
                        run_id=self.id,
                        rollout_id=rollout_id,
                        index=len(self.state.rollouts),
                        example_id=example.id,
                        info=example.info,
                        target=example.target,
                    )
                )
            rollouts.append((rollout_id, example))
            self.controls[rollout_id] = RolloutControl(approve=s.approve)
        if self.remote is not None:  # each rollout's commands go to the node that runs it
            self.controls = {rid: self.remote.control(rid) for rid, _ in rollouts}
        semaphore = asyncio.Semaphore(c.concurrency)
        self.tasks = {rid: asyncio.create_task(self._one(semaphore, rid, ex)) for rid, ex in rollouts}
        helpers = [asyncio.create_task(self._watch())] + ([asyncio.create_task(self._poll())] if self.commands else [])
        status = "done"
        try:
            await asyncio.gather(*self.tasks.values())
        except FatalRunError as exc:
            status, self.error = "failed", str(exc)
        except asyncio.CancelledError:
            status, self.error = "killed", "the run was stopped"
        finally:
            for task in helpers + list(self.tasks.values()):
                task.cancel()
            ending = asyncio.gather(*helpers, *self.tasks.values(), return_exceptions=True)
            while not ending.done():  # a second cancellation (another ctrl+c) must not skip the final rows below
                try:
                    await asyncio.shield(ending)
                except asyncio.CancelledError:
                    status, self.error = "killed", "the run was stopped"
            if self.remote is not None:
                self.remote.close()  # its workers hold their nodes' nsjail slots: the next run needs them
            if self.store_error is not None:
                status, self.error = "failed", self.store_error
            cut = self._close_unfinished(status)  # none when every rollout ran to its end
            if status == "done":
                status, self.error = self._outcome()
            else:
                failed = sum(r.status == "failed" for r in self.state.rollouts.values())
                self.error = (
                    f"{self.error}; of {len(self.state.rollouts)} rollouts {failed} failed and {cut} were cut short"
                )
            self.emit(ev.RunFinished(run_id=self.id, status=status, error=self.error))
        return self.state

    def _outcome(self) -> tuple[str, str | None]:
        """The status of a run whose rollouts all ended: failed when the engine failed any of them."""
        total = len(self.tasks)
        if self.killed and len(self.killed) == total:
            return "killed", None
        failed = [r for r in self.state.rollouts.values() if r.status == "failed" and r.id in self.engine_errors]
        if not failed:
            return "done", None
        return "failed", f"{len(failed)} of {total} rollouts failed on an engine error; the first: {failed[0].error}"

    def submit(self, command: Command) -> None:
        """Apply an operator command; call it from the engine's own event loop."""
        target = command.rollout_id
        if target is not None and target not in self.controls:
            raise ControlError(f"run {self.id} has no rollout {target}")
        if target is None:
            self.emit(
                ev.OperatorAction(run_id=self.id, action=command.action, text=command.text, command_id=command.id)
            )
            if command.action in ("pause", "resume", "approval"):
                if command.action != "approval":
                    self.paused = command.action == "pause"
                for rid, control in self.controls.items():
                    control.submit(Command(command.action, rid, command.text))
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
        assert self.commands is not None  # polled only when there is a queue
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
        if self.store_error is not None:
            return  # the store failed before this rollout was scheduled
        try:
            if self.remote is not None:
                await self.remote.run_one(rollout_id, example)
                return
            async with semaphore:
                client: ModelClient = self.client.for_rollout(example, self.config.rollout.mode)
                rollout = Rollout(
                    run_id=self.id,
                    rollout_id=rollout_id,
                    example=example,
                    env=self.env,
                    client=client,
                    settings=self.config.rollout,
                    emit=self.emit,
                    control=self.controls[rollout_id],
                    state=lambda: self.state.rollouts[rollout_id],
                    metrics=lambda: self.state.rollouts[rollout_id].metrics(time.time()),
                    sandbox_started=lambda: self.sandbox_started,
                    sandbox_up=self._sandbox_up,
                    judge=RunJudge(self.config.rollout.sub_model, self.config.base_url),
                    fork=self.fork,
                    budget_reached=lambda: self._budget_reached(rollout_id),
                    refuses=lambda prompts: self._refuses(rollout_id, prompts),
                    continued=self.continued.get(rollout_id),
                )
                try:
                    await rollout.run()
                finally:
                    if rollout.engine_error:
                        self.engine_errors.add(rollout_id)
        except asyncio.CancelledError:
            if rollout_id in self.killed:
                self._end(rollout_id, "killed", "killed", "killed by the operator")
            elif self.store_error is None:
                raise
        except FatalRunError:
            raise
        except Exception as exc:  # outside the rollout's own loop (its client, its final event): still this one only
            self.engine_errors.add(rollout_id)
            self._end(rollout_id, "failed", "error", one_line(exc))

    # --- budgets --------------------------------------------------------------------------------

    def _spent(self, rollout_id: str) -> tuple[Spent, Spent | None]:
        """What the rollout has used, and the whole run (None when the run has no budget: not worth summing)."""
        now, r = time.time(), self.state.rollouts[rollout_id]
        mine = Spent(
            tokens=r.main_tokens + r.sub_tokens,
            usd=r.cost_usd,
            seconds=now - r.started if r.started is not None else 0.0,
            sub_calls=r.sub_calls_started,
        )
        if not self.config.run_budget.any:
            return mine, None
        rollouts = self.state.rollouts.values()
        costs = [x.cost_usd for x in rollouts]
        return mine, Spent(
            tokens=sum(x.main_tokens + x.sub_tokens for x in rollouts),
            usd=None if None in costs else sum(c for c in costs if c is not None),
            seconds=now - self.state.started if self.state.started is not None else 0.0,
            sub_calls=sum(x.sub_calls_started for x in rollouts),
        )

    def _budget_reached(self, rollout_id: str) -> tuple[str, str] | None:
        mine, run = self._spent(rollout_id)
        hit = self.config.rollout.budget.reached(mine, "the rollout's")
        return hit or (self.config.run_budget.reached(run, "the run's") if run is not None else None)

    def _refuses(self, rollout_id: str, prompts: int) -> str | None:
        mine, run = self._spent(rollout_id)
        why = self.config.rollout.budget.refuses(mine, prompts, "the rollout's")
        return why or (self.config.run_budget.refuses(run, prompts, "the run's") if run is not None else None)

    def _sandbox_up(self) -> None:
        self.sandbox_started = True

    def _end(self, rollout_id: str, status: str, reason: str, error: str | None) -> None:
        state = self.state.rollouts[rollout_id]
        if state.status in ("queued", "running"):
            self.emit(
                ev.RolloutFinished(
                    run_id=self.id,
                    rollout_id=rollout_id,
                    status=status,
                    stop_reason=reason,
                    answer=dict(state.answer),
                    reward=None,
                    metrics=state.metrics(time.time()),
                    error=error,
                )
            )

    def _stop_on_store_error(self, error: str) -> None:
        """Events can no longer be stored: stop every rollout; the writer says what was lost."""
        if self.store_error is None:
            self.store_error = f"the run stopped because its events could not be stored: {error}"
            for task in self.tasks.values():
                task.cancel()

    async def _watch(self) -> None:
        """Say so, once per stall, when no event has come for `stall_after` seconds."""
        after, reported = self.config.stall_after, None
        while True:
            await asyncio.sleep(min(after / 4, 5.0))
            idle = time.time() - self.last_ts
            if idle < after or reported == self.last_ts:
                continue
            reported, now = self.last_ts, time.time()
            stuck = [
                {
                    "rollout_id": r.id,
                    "last_kind": self.last_event.get(r.id, ("rollout_queued", now))[0],
                    "age_s": round(now - self.last_event.get(r.id, ("", now))[1], 1),
                }
                for r in self.state.rollouts.values()
                if r.status in ("queued", "running")
            ]
            self.emit(ev.RunStalled(run_id=self.id, idle_s=round(idle, 1), stuck=stuck))
            shown = ", ".join(f"{s['rollout_id']} after {s['last_kind']} {s['age_s']:g}s ago" for s in stuck[:5])
            more = f" and {len(stuck) - 5} more" if len(stuck) > 5 else ""
            print(
                f"rlm-tui: run {self.id} stalled: no event for {idle:.0f}s; {len(stuck)} rollouts unfinished: "
                f"{shown}{more}",
                file=sys.stderr,
                flush=True,
            )

    def _close_unfinished(self, status: str) -> int:
        """Rollouts cut short by a failed or stopped run still end in the log, with their answer so far."""
        unfinished = [r.id for r in self.state.rollouts.values() if r.status in ("queued", "running")]
        for rollout_id in unfinished:
            self._end(rollout_id, "killed", "killed" if status == "killed" else "error", self.error)
        return len(unfinished)
