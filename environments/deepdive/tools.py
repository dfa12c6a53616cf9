"""The `search` and `open` tools, shared by the offline and online webs: result lists and page clipping."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rlm_tui.env import Tool

PAGE_CHARS = 20_000  # what one `open` returns at most, marker included, so the engine never cuts it again


@dataclass(frozen=True)
class Hit:
    title: str
    url: str
    snippet: str


def format_hits(query: str, hits: list[Hit]) -> str:
    if not hits:
        return f"No results for {query!r}."
    lines = [f"Results for {query!r}:"]
    for i, hit in enumerate(hits, 1):
        lines += [f"{i}. {hit.title}", f"   {hit.url}"] + ([f"   {hit.snippet}"] if hit.snippet else [])
    return "\n".join(lines)


def parse_hits(text: str) -> list[Hit]:
    """The results listed in a `search` output, in order (how a reader of the output picks a page)."""
    found = re.findall(r"^\d+\. (.+)\n   (\S+)(?:\n   (?!\S+://)(.*))?", text, re.M)
    return [Hit(title, url, snippet) for title, url, snippet in found]


def clip(text: str, limit: int = PAGE_CHARS) -> str:
    if len(text) <= limit:
        return text
    marker = f"\n[page truncated: showing the first {{}} of {len(text):,} characters]"
    keep = limit - len(marker.format(f"{limit:,}"))
    return text[:keep] + marker.format(f"{keep:,}")


def make_tools(search: Callable[[str], Awaitable[str]], open_page: Callable[[str], Awaitable[str]]) -> list[Tool]:
    query = {
        "type": "object",
        "properties": {"query": {"type": "string", "description": "what to search for"}},
        "required": ["query"],
    }
    url = {
        "type": "object",
        "properties": {"url": {"type": "string", "description": "the URL of a search result"}},
        "required": ["url"],
    }
    return [
        Tool(
            "search", "Search the web. Returns the top results, each with its title, URL and a snippet.", query, search
        ),
        Tool("open", f"Open a web page by URL and read its text (at most {PAGE_CHARS:,} characters).", url, open_page),
    ]
