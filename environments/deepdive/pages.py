"""The pages a run has opened: each URL is fetched once per run, however many rollouts open it and however often."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from functools import partial

PAGES_KEPT = 1000  # pages kept per run, the least recently opened dropped first; each is at most PAGE_CHARS

Fetch = Callable[[str], Awaitable[tuple[str, bool]]]  # url -> (what `open` returns, whether to keep it)


class PageCache:
    def __init__(self, limit: int = PAGES_KEPT) -> None:
        self.limit = limit
        self.pages: OrderedDict[str, str] = OrderedDict()
        self.fetching: dict[str, asyncio.Future[tuple[str, bool]]] = {}

    async def get(self, url: str, fetch: Fetch) -> str:
        if url in self.pages:
            self.pages.move_to_end(url)
            return self.pages[url]
        future = self.fetching.get(url)
        if future is None:
            future = self.fetching[url] = asyncio.ensure_future(fetch(url))
            future.add_done_callback(partial(self._done, url))
        text, _ = await asyncio.shield(future)  # a waiter cancelled (a killed rollout) leaves the fetch to the rest
        return text

    def _done(self, url: str, future: asyncio.Future[tuple[str, bool]]) -> None:
        if self.fetching.get(url) is future:
            del self.fetching[url]
        if future.cancelled() or future.exception() is not None:
            return  # a failure is not kept: the next open tries again
        text, keep = future.result()
        if keep:
            self.pages[url] = text
            self.pages.move_to_end(url)
            while len(self.pages) > self.limit:
                self.pages.popitem(last=False)
