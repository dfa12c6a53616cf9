"""A live engine run on a task of its own, for tests that steer it: real sandbox, real openai client."""

from __future__ import annotations

import asyncio

from rlm_tui import events as ev
from rlm_tui.engine.clients import OpenAIClient
from rlm_tui.engine.rollout import RolloutSettings
from rlm_tui.engine.run import Run, RunConfig
from rlm_tui.env import load_environment
from rlm_tui.store import EventWriter


class Live:
    """A run on a task of its own, with a way to await the first event that matches."""

    def __init__(self, server, n=1, db=None, commands=None, max_turns=30, approve=False):
        env = load_environment("verbatim-copy", {"target_length": "100"})
        self.client = OpenAIClient(base_url=server.base_url, api_key="k", max_retries=0)
        settings = RolloutSettings(model="root", sub_model="sub", timeout=10, max_turns=max_turns, approve=approve)
        sinks = [self._see]
        self.writer = None
        if db is not None:
            self.writer = EventWriter(db)
            self.writer.start()
            sinks.append(self.writer.append)
        self.run = Run(
            RunConfig(env="verbatim-copy", num_examples=n, rollout=settings), env, self.client, sinks, commands=commands
        )
        self.events: list[ev.Event] = []
        self.waiters: list[tuple] = []

    def _see(self, e: ev.Event) -> None:
        self.events.append(e)
        for waiter in list(self.waiters):
            if waiter[0](e):
                waiter[1].set_result(e)
                self.waiters.remove(waiter)

    async def until(self, predicate, timeout=120):  # only bounds a test that would hang
        for e in self.events:
            if predicate(e):
                return e
        future = asyncio.get_running_loop().create_future()
        self.waiters.append((predicate, future))
        return await asyncio.wait_for(future, timeout)

    async def start(self):
        self.task = asyncio.create_task(self.run.execute())
        await self.until(lambda e: isinstance(e, ev.RolloutStarted))
        return self

    async def finish(self):
        state = await asyncio.wait_for(self.task, 30)
        await self.client.close()
        if self.writer:
            self.writer.close()
        return state

    @property
    def rollout_id(self):
        return next(iter(self.run.controls))


def paused(e):
    return isinstance(e, ev.RolloutPaused) and e.paused
