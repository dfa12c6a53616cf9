"""The online web: Google results through Serper, and pages (HTML, text, PDF) fetched with httpx and read as text."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

from rlm_tui.env import EnvError, http_url

from .html_text import html_to_text
from .pages import PageCache
from .pdf_text import PdfError, pdf_text
from .tools import Hit, clip, format_hits

if TYPE_CHECKING:
    import httpx

SERPER_BASE_URL = "https://google.serper.dev"  # $SERPER_BASE_URL replaces it (a mirror, a local server)
HEADERS = {"User-Agent": "Mozilla/5.0 (compatible; rlm-tui-deepdive/1.0)"}
MAX_DOWNLOAD_BYTES = 10_000_000  # a page is read up to here; a PDF past it is refused
PDF_READERS = 2  # PDFs read at once per run: each reader may take a core and 1 GiB


def serper_url() -> str:
    """The search endpoint: $SERPER_BASE_URL, else Serper's own, checked to be http(s), then /search."""
    raw = os.environ.get("SERPER_BASE_URL") or SERPER_BASE_URL
    try:
        return http_url(raw).rstrip("/") + "/search"
    except ValueError as exc:
        raise EnvError(f"SERPER_BASE_URL: {exc}") from None


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


def is_pdf(kind: str, body: bytes) -> bool:
    """By its type, or by the header a PDF served as anything but text has (after some junk, as readers allow)."""
    textual = kind.startswith("text/") or kind.endswith(("html", "json", "xml"))
    return kind in ("application/pdf", "application/x-pdf") or (not textual and b"%PDF-" in body[:1024])


def decode(body: bytes, encoding: str | None) -> str:
    try:
        return body.decode(encoding or "utf-8", errors="replace")
    except LookupError:  # a charset nobody knows
        return body.decode("utf-8", errors="replace")


class OnlineWeb:
    """One run's web: `client` is for tests; without one each call opens its own connection. Pages are cached."""

    def __init__(
        self, api_key: str, client: httpx.AsyncClient | None = None, k: int = 5, timeout: float = 30.0
    ) -> None:
        self.api_key, self.client, self.k, self.timeout = api_key, client, k, timeout
        self.search_url = serper_url()
        self.pages = PageCache()
        self.pdf_readers = asyncio.Semaphore(PDF_READERS)

    def _client(self) -> httpx.AsyncClient:
        import httpx  # slow to import: only the online web needs it

        return httpx.AsyncClient(timeout=self.timeout, headers=HEADERS, follow_redirects=True)

    async def search(self, query: str) -> str:
        payload = {"q": query, "num": max(10, self.k)}
        headers = {"X-API-KEY": self.api_key, "Content-Type": "application/json"}
        if self.client is not None:
            response = await self.client.post(self.search_url, json=payload, headers=headers)
        else:
            async with self._client() as client:
                response = await client.post(self.search_url, json=payload, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"Serper answered HTTP {response.status_code}: {response.text[:200]}")
        data = response.json()
        if not isinstance(data, dict):
            raise RuntimeError(f"Serper answered {type(data).__name__}, not an object")
        return format_serper(query, data, self.k)

    async def open(self, url: str) -> str:
        url = url.strip()
        if "://" not in url:
            url = "https://" + url
        return await self.pages.get(url, self._read)

    async def _get(self, client: httpx.AsyncClient, url: str) -> tuple[int, str, str, bytes, str | None]:
        """(status, content type, final URL, at most MAX_DOWNLOAD_BYTES of the body, its text encoding)."""
        async with client.stream("GET", url, follow_redirects=True) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOWNLOAD_BYTES:
                    break
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            return response.status_code, kind, str(response.url), bytes(body), response.encoding

    async def _read(self, url: str) -> tuple[str, bool]:
        """What `open` returns for `url`, and whether the run keeps it (not a failure worth trying again)."""
        import httpx

        try:
            if self.client is not None:
                status, kind, final, body, encoding = await self._get(self.client, url)
            else:
                async with self._client() as client:
                    status, kind, final, body, encoding = await self._get(client, url)
        except httpx.HTTPError as exc:
            return f"[could not open {url}: {type(exc).__name__}: {exc}]", False
        if status >= 400:
            return f"[could not open {url}: HTTP {status}]", status < 500 and status != 429
        if is_pdf(kind, body):
            if len(body) > MAX_DOWNLOAD_BYTES:
                raise PdfError(f"the PDF at {url} is larger than {MAX_DOWNLOAD_BYTES:,} bytes")
            try:
                async with self.pdf_readers:
                    title, text = await pdf_text(body)
            except PdfError as exc:
                raise PdfError(f"could not read the PDF at {url}: {exc}") from None
        elif "html" in kind or (not kind and b"<html" in body[:1000].lower()):
            title, text = html_to_text(decode(body, encoding))
        elif kind.startswith("text/") or kind.endswith(("json", "xml")):
            title, text = "", decode(body, encoding)
        else:
            return f"[{url} is {kind or 'not text'}; only web pages of text and PDFs can be read]", True
        return clip("\n".join(([title] if title else []) + [final, "", text])), True
