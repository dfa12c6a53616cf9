"""The offline web: the world's pages in an SQLite FTS5 index, searched by BM25 and served by URL."""

from __future__ import annotations

import re
import sqlite3
from functools import lru_cache
from urllib.parse import unquote

from .render import render_pages
from .scoring import normalise
from .tools import Hit, clip
from .world import BASE_URL, World, build_world

_WEIGHTS = "0.0, 10.0, 6.0, 1.0"  # bm25 weights of url, title, aliases, body: a name in a title counts most


class OfflineWeb:
    def __init__(self, world: World, pages: list[str]) -> None:
        self.world = world
        self.pages: dict[str, str] = {}
        self.titles: dict[str, str] = {}  # normalised title or alias -> url
        # One connection read by one event loop; check_same_thread only guards against misuse we do not do.
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.db.execute("CREATE VIRTUAL TABLE pages USING fts5(url UNINDEXED, title, aliases, body)")
        for entity, text in zip(world.entities, pages):
            self.add(entity.url, entity.name, text, entity.aliases)

    def add(self, url: str, title: str, text: str, aliases: list[str] = ()) -> None:
        self.pages[url] = text
        for name in (title, *aliases):
            self.titles.setdefault(normalise(name), url)
        body = text.split("\n", 2)[-1] if text.startswith(title) else text  # the title and URL lines are not prose
        self.db.execute("INSERT INTO pages VALUES (?, ?, ?, ?)", (url, title, " ; ".join(aliases), body))

    def search(self, query: str, k: int = 5) -> list[Hit]:
        words = list(dict.fromkeys(re.findall(r"\w+", query.lower())))
        if not words:
            return []
        match = " OR ".join(f'"{w}"' for w in words)
        rows = self.db.execute(
            f"SELECT url, title, snippet(pages, 3, '', '', ' … ', 24) FROM pages WHERE pages MATCH ? "
            f"ORDER BY bm25(pages, {_WEIGHTS}) LIMIT ?",
            (match, k + 1),
        ).fetchall()
        hits = [Hit(title, url, " ".join(snippet.split())) for url, title, snippet in rows]
        exact = self.titles.get(normalise(query))
        if exact is not None:  # like a real engine, an exact title match comes first
            hits.sort(key=lambda h: h.url != exact)
            if all(h.url != exact for h in hits):
                title = self.pages[exact].split("\n", 1)[0]
                hits.insert(0, Hit(title, exact, self.pages[exact].split("\n")[3][:200]))
        return hits[:k]

    def open(self, url: str) -> str:
        url = url.strip()
        page = self.pages.get(url) or self.pages.get(self.titles.get(normalise(_title_of(url)), ""))
        if page is None:
            return f"[no page at {url}; open a URL from the search results]"
        return clip(page)


def _title_of(url: str) -> str:
    """The page title a URL or bare name points at: https://wiki.example/Ada_Lovelace -> Ada Lovelace."""
    tail = url.split("://", 1)[-1].removeprefix(BASE_URL.split("://", 1)[1]).strip("/")
    return unquote(tail).replace("_", " ")


@lru_cache(maxsize=4)
def world_of(seed: int, size: int) -> World:
    """The world of (seed, size) alone: its questions need no pages, so a run starts before they are rendered."""
    return build_world(seed, size)


@lru_cache(maxsize=4)
def offline_web(seed: int, size: int) -> OfflineWeb:
    """The web of the world of (seed, size), built once per process and shared by every rollout."""
    world = world_of(seed, size)
    return OfflineWeb(world, render_pages(world))
