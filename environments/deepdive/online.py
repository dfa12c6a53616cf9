"""The online web: Google results through Serper, and pages fetched with httpx and read as text."""

from __future__ import annotations

from typing import Any

import httpx

from .html_text import html_to_text
from .tools import Hit, clip, format_hits

SERPER_URL = "https://google.serper.dev/search"
HEADERS = {"User-Agent": "Mozilla/5.0 (compatible; rlm-tui-deepdive/1.0)"}


def format_serper(query: str, data: dict[str, Any], k: int = 5) -> str:
    """Serper's JSON as text: the answer box and knowledge graph when present, the top results, people-also-ask."""
    parts = []
    box = data.get("answerBox") or {}
    if box:
        text = " — ".join(str(box[key]) for key in ("title", "answer", "snippet") if box.get(key))
        parts.append(f"Answer box: {text}" + (f"\n   {box['link']}" if box.get("link") else ""))
    graph = data.get("knowledgeGraph") or {}
    if graph:
        lines = [f"Knowledge graph: {graph.get('title', '')}" + (f" ({graph['type']})" if graph.get("type") else "")]
        if graph.get("description"):
            source = f" [{graph['descriptionSource']}]" if graph.get("descriptionSource") else ""
            lines.append(f"   {graph['description']}{source}")
        lines += [f"   {key}: {value}" for key, value in (graph.get("attributes") or {}).items()]
        if graph.get("website"):
            lines.append(f"   website: {graph['website']}")
        parts.append("\n".join(lines))
    hits = [
        Hit(str(r.get("title", "")), str(r["link"]), " — ".join(str(x) for x in (r.get("date"), r.get("snippet")) if x))
        for r in data.get("organic") or ()
        if r.get("link")
    ][:k]
    parts.append(format_hits(query, hits))
    asked = [q for q in data.get("peopleAlsoAsk") or () if q.get("question")]
    if asked:
        parts.append(
            "People also ask:\n"
            + "\n".join(
                f"- {q['question']} {q.get('snippet', '')}".rstrip() + (f" ({q['link']})" if q.get("link") else "")
                for q in asked
            )
        )
    return "\n\n".join(parts)


class OnlineWeb:
    """`client` is for tests (an httpx.MockTransport); without one each call opens its own connection."""

    def __init__(
        self, api_key: str, client: httpx.AsyncClient | None = None, k: int = 5, timeout: float = 30.0
    ) -> None:
        self.api_key, self.client, self.k, self.timeout = api_key, client, k, timeout

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if self.client is not None:
            return await self.client.request(method, url, follow_redirects=True, **kwargs)
        async with httpx.AsyncClient(timeout=self.timeout, headers=HEADERS, follow_redirects=True) as client:
            return await client.request(method, url, **kwargs)

    async def search(self, query: str) -> str:
        response = await self._request(
            "POST",
            SERPER_URL,
            json={"q": query, "num": max(10, self.k)},
            headers={"X-API-KEY": self.api_key, "Content-Type": "application/json"},
        )
        if response.status_code != 200:
            raise RuntimeError(f"Serper answered HTTP {response.status_code}: {response.text[:200]}")
        return format_serper(query, response.json(), self.k)

    async def open(self, url: str) -> str:
        url = url.strip()
        if "://" not in url:
            url = "https://" + url
        try:
            response = await self._request("GET", url)
        except httpx.HTTPError as exc:
            return f"[could not open {url}: {type(exc).__name__}: {exc}]"
        if response.status_code >= 400:
            return f"[could not open {url}: HTTP {response.status_code}]"
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if "html" in kind or (not kind and "<html" in response.text[:1000].lower()):
            title, text = html_to_text(response.text)
        elif kind.startswith("text/") or kind.endswith(("json", "xml")):
            title, text = "", response.text
        else:
            return f"[{url} is {kind or 'not text'}; only web pages of text can be read]"
        return clip("\n".join(([title] if title else []) + [str(response.url), "", text]))
