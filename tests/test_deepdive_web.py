"""deepdive's online web against a real local server: SERPER_BASE_URL, PDFs (hostile ones too) and the run's page cache."""

from __future__ import annotations

import asyncio
import json
import threading
import zlib
from collections import Counter

import pytest
from aiohttp import web

import environments.deepdive as deepdive
from environments.deepdive import pdf_text
from environments.deepdive.online import serper_url
from environments.deepdive.pdf_text import MAX_PAGES
from environments.deepdive.tools import PAGE_CHARS
from rlm_tui.engine.sub_llm import run_tool
from rlm_tui.env import EnvError, load_environment
from runs import stored_run


class FakeWeb:
    """Serves `pages` (path -> (content type, body)) and a Serper-like POST /search that links every query to
    `/page`; counts requests per path. A path in `held` is answered only once the test calls `release()`."""

    def __init__(self, pages: dict[str, tuple[str, bytes]], held: tuple[str, ...] = ()) -> None:
        self.pages, self.held = pages, held
        self.hits: Counter[str] = Counter()
        self.queries: list[dict] = []
        self.arrived = threading.Event()  # a held request has come in
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.base_url = ""

    def __enter__(self) -> FakeWeb:
        self._thread.start()
        port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def release(self) -> None:
        self._loop.call_soon_threadsafe(self._release.set)

    async def _start(self) -> int:
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_post("/search", self._search)
        app.router.add_get("/{path:.*}", self._page)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]

    async def _search(self, request: web.Request) -> web.Response:
        assert request.headers["X-API-KEY"] == "test-key"
        self.queries.append(await request.json())
        link = f"{self.base_url}/page"
        return web.json_response({"organic": [{"title": "The page", "link": link, "snippet": "…", "position": 1}]})

    async def _page(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"]
        self.hits[path] += 1
        if path in self.held:
            self.arrived.set()
            await self._release.wait()
        if path not in self.pages:
            return web.Response(status=404, text="not found")
        kind, body = self.pages[path]
        return web.Response(body=body, headers={"Content-Type": kind})


def build_pdf(objects: list[bytes], info: int | None = None) -> bytes:
    """A PDF of `objects` (object 1 the catalog) with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = b"/Size %d /Root 1 0 R" % (len(objects) + 1) + (b" /Info %d 0 R" % info if info else b"")
    out += b"trailer\n<< %s >>\nstartxref\n%d\n%%%%EOF\n" % (trailer, xref)
    return bytes(out)


def stream(data: bytes, flate: bool = False) -> bytes:
    body = zlib.compress(data) if flate else data
    return b"<< /Length %d%s >>\nstream\n%s\nendstream" % (len(body), b" /Filter /FlateDecode" if flate else b"", body)


def text_pdf(pages: list[str], title: str | None = None) -> bytes:
    """One line of Helvetica text per page: catalog, page tree, font, then each page and its content stream."""
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, text in enumerate(pages):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(stream(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()))
    if title is None:
        return build_pdf(objects)
    return build_pdf([*objects, f"<< /Title ({title}) >>".encode()], info=len(objects) + 1)


def many_pages(count: int) -> bytes:
    """`count` pages that share one content stream: a small file with a huge page count."""
    kids = " ".join(f"{5 + i} 0 R" for i in range(count))
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>"
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode(),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            stream(b"BT /F1 12 Tf 72 720 Td (Same again) Tj ET"),
            *[page] * count,
        ]
    )


def operators_pdf(repeat: int) -> bytes:
    """One page whose flate content stream inflates to `repeat` text operators, 36 bytes each, from 1/1000 of that."""
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> "
            b"/Contents 4 0 R >>",
            stream(b"BT /F1 12 Tf 72 720 Td (aaaa) Tj ET\n" * repeat, flate=True),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def a_loop() -> bytes:
    """A page tree whose node lists itself as its own kid."""
    return build_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"])


def broken_xref(pdf: bytes) -> bytes:
    """Every offset of the cross-reference table wrong by 7 bytes: readers rebuild it by scanning."""
    head, table = pdf.split(b"xref\n", 1)
    lines = table.split(b"\n")
    fixed = [b"%010d 00000 n " % (int(line[:10]) + 7) if line.endswith(b" n ") else line for line in lines]
    return head + b"xref\n" + b"\n".join(fixed)


def online_env(monkeypatch, server: FakeWeb):
    monkeypatch.setenv("SERPER_API_KEY", "test-key")
    monkeypatch.setenv("SERPER_BASE_URL", server.base_url)
    return load_environment("deepdive", {"source": "online", "results": "3"})


def call(tools, name, **arguments):
    async def go():
        return await run_tool(tools, {"name": name, "arguments": json.dumps(arguments)}, lambda e: None, "r", "o", "p")

    return asyncio.run(go())


def open_pages(monkeypatch, pages):
    with FakeWeb(pages) as server:
        tools = {t.name: t for t in online_env(monkeypatch, server).sub_tools()}
        return {path: call(tools, "open", url=server.base_url + path) for path in pages}, server


# --- SERPER_BASE_URL ----------------------------------------------------------------------------


def test_search_goes_to_serper_base_url(monkeypatch):
    with FakeWeb({}) as server:
        tools = {t.name: t for t in online_env(monkeypatch, server).sub_tools()}
        text = call(tools, "search", query="who built it")
    assert server.queries == [{"q": "who built it", "num": 10}]
    assert text == f"Results for 'who built it':\n1. The page\n   {server.base_url}/page\n   …"


@pytest.mark.parametrize(
    "raw, url",
    [(None, "https://google.serper.dev/search"), ("http://mirror.test:8080/", "http://mirror.test:8080/search")],
)
def test_serper_base_url_defaults_to_serper(monkeypatch, raw, url):
    if raw is None:
        monkeypatch.delenv("SERPER_BASE_URL", raising=False)
    else:
        monkeypatch.setenv("SERPER_BASE_URL", raw)
    assert serper_url() == url


@pytest.mark.parametrize("raw", ["ftp://mirror.test", "mirror.test", "file:///etc/passwd", "http://"])
def test_a_bad_serper_base_url_is_the_runs_one_line_error(monkeypatch, raw):
    monkeypatch.setenv("SERPER_API_KEY", "test-key")
    monkeypatch.setenv("SERPER_BASE_URL", raw)
    with pytest.raises(EnvError) as info:
        load_environment("deepdive", {"source": "online"})
    assert str(info.value).startswith("SERPER_BASE_URL: expected an http:// or https:// URL") and "\n" not in str(
        info.value
    )


# --- PDFs ---------------------------------------------------------------------------------------


def test_pdfs_are_read_by_content_type_or_by_their_magic(monkeypatch):
    pdf = text_pdf(["First page says hello.", "Second page says goodbye."], title="A Paper")
    texts, _ = open_pages(
        monkeypatch,
        {
            "/paper.pdf": ("application/pdf", pdf),
            "/old-type": ("application/x-pdf", pdf),
            "/download": ("application/octet-stream", pdf),
            "/junk-first": ("application/octet-stream", b"\r\n\x00junk" + pdf),
        },
    )
    for text in texts.values():
        assert text.startswith("A Paper\n") and text.endswith(
            "\n\n[PDF, 2 pages]\n\nFirst page says hello.\n\nSecond page says goodbye."
        ), text
    assert texts["/paper.pdf"].split("\n")[1].endswith("/paper.pdf")


def test_a_long_pdf_of_accented_text_is_read_and_clipped(monkeypatch):
    texts, server = open_pages(monkeypatch, {"/e.pdf": ("application/pdf", text_pdf(["\\351" * 25_000] * 3))})
    text = texts["/e.pdf"]
    # Pages 1-2 are read (50,000 characters, past the 40,000 wanted) and cut to 41,000 with the head; `open` adds
    # the URL line and a blank line, then keeps 20,000 less the 64 characters of its marker.
    total = len(server.base_url + "/e.pdf") + 2 + 41_000
    marker = f"\n[page truncated: showing the first {{}} of {total:,} characters]"
    assert len(marker.format("20,000")) == 64
    assert text.startswith(f"{server.base_url}/e.pdf\n\n[PDF, 3 pages; text of pages 1-2]\n\n" + "é" * 19_000)
    assert text.endswith(marker.format("19,936")) and len(text) == PAGE_CHARS


def test_a_page_that_only_mentions_the_pdf_header_is_html(monkeypatch):
    html = b"<title>PDF files</title><p>Every PDF starts with %PDF-1.7 on its first line.</p>"
    texts, _ = open_pages(monkeypatch, {"/about": ("text/html", html)})
    assert texts["/about"].endswith("/about\n\nEvery PDF starts with %PDF-1.7 on its first line.")


def test_a_pdf_with_a_broken_xref_is_still_read(monkeypatch):
    texts, _ = open_pages(monkeypatch, {"/x.pdf": ("application/pdf", broken_xref(text_pdf(["Still here."])))})
    assert texts["/x.pdf"].endswith("[PDF, 1 page]\n\nStill here.")


def test_a_huge_page_count_reads_only_the_first_pages(monkeypatch):
    texts, _ = open_pages(monkeypatch, {"/many.pdf": ("application/pdf", many_pages(5000))})
    text = texts["/many.pdf"]
    assert f"[PDF, 5,000 pages; text of pages 1-{MAX_PAGES}]" in text
    assert text.count("Same again") == MAX_PAGES


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(lambda: operators_pdf(3_000_000), id="decompression-bomb"),  # 108 MB inflated
        pytest.param(a_loop, id="page-tree-loop"),
        pytest.param(lambda: b"%PDF-1.7\n" + bytes(range(256)) * 40, id="junk"),
        pytest.param(lambda: text_pdf(["cut"])[:60], id="truncated"),
    ],
)
def test_a_hostile_pdf_is_one_line_tool_error(monkeypatch, body):
    texts, server = open_pages(monkeypatch, {"/bad.pdf": ("application/pdf", body())})
    text = texts["/bad.pdf"]
    assert text.startswith(f"[tool error] PdfError: could not read the PDF at {server.base_url}/bad.pdf: ")
    assert "\n" not in text and len(text) < 500


def test_a_pdf_that_takes_too_long_is_stopped(monkeypatch):
    monkeypatch.setattr(pdf_text, "CPU_SECONDS", 1)
    texts, _ = open_pages(monkeypatch, {"/slow.pdf": ("application/pdf", operators_pdf(1_500_000))})  # 54 MB of work
    assert texts["/slow.pdf"].endswith("/slow.pdf: reading it took more than 1 s of CPU")


def test_a_pdf_that_needs_too_much_memory_is_stopped(monkeypatch):
    monkeypatch.setattr(pdf_text, "MEMORY_BYTES", 150 << 20)
    pages = {
        "/big.pdf": ("application/pdf", operators_pdf(1_500_000)),
        "/small.pdf": ("application/pdf", text_pdf(["hi"])),
    }
    texts, _ = open_pages(monkeypatch, pages)
    assert texts["/big.pdf"].endswith("/big.pdf: it needs more than 150 MB to read")
    assert texts["/small.pdf"].endswith("[PDF, 1 page]\n\nhi")  # the limit leaves room for an ordinary PDF


# --- the page cache -----------------------------------------------------------------------------


def test_a_page_is_fetched_once_per_run_across_rollouts(monkeypatch):
    with FakeWeb({"/page": ("text/html", b"<title>T</title><p>Body</p>")}) as server:
        env = online_env(monkeypatch, server)
        first, second = ({t.name: t for t in env.sub_tools()} for _ in range(2))  # two rollouts' tools
        texts = [call(tools, "open", url=server.base_url + "/page") for tools in (first, second, first)]
        gone = [call(tools, "open", url=server.base_url + "/gone") for tools in (first, second)]  # a 404 is kept too
        other_run = {t.name: t for t in online_env(monkeypatch, server).sub_tools()}
        call(other_run, "open", url=server.base_url + "/page")
    assert texts == [f"T\n{server.base_url}/page\n\nBody"] * 3
    assert gone == [f"[could not open {server.base_url}/gone: HTTP 404]"] * 2
    assert server.hits == {"/page": 2, "/gone": 1}  # once in each run


def test_concurrent_opens_of_one_url_share_one_request(monkeypatch):
    with FakeWeb({"/page": ("text/plain", b"shared")}, held=("/page",)) as server:
        tools = {t.name: t for t in online_env(monkeypatch, server).sub_tools()}
        url = server.base_url + "/page"

        async def go():
            calls = [
                asyncio.ensure_future(
                    run_tool(
                        tools, {"name": "open", "arguments": json.dumps({"url": url})}, lambda e: None, "r", "o", "p"
                    )
                )
                for _ in range(5)
            ]
            await asyncio.to_thread(server.arrived.wait, 10)  # every caller is waiting on the one request now
            server.release()
            return await asyncio.gather(*calls)

        texts = asyncio.run(go())
    assert texts == [f"{url}\n\nshared"] * 5 and server.hits == {"/page": 1}


def test_an_online_run_opens_each_page_once(tmp_path, monkeypatch):
    rows = [{"id": i, "question": f"Who designed engine {i}?", "answer": "Charles Babbage"} for i in range(3)]
    monkeypatch.setattr(deepdive, "load_rows", lambda: rows)
    with FakeWeb({"/page": ("text/html", b"<title>Engine</title><p>Charles Babbage</p>")}) as server:
        monkeypatch.setenv("SERPER_API_KEY", "test-key")
        monkeypatch.setenv("SERPER_BASE_URL", server.base_url)
        env = load_environment("deepdive", {"eval_size": "3"})
        _, stored = stored_run(tmp_path, env, mode="rlm", n=3, timeout=20)
    opened = [
        t for r in stored.rollouts.values() for b in r.batches for c in b.calls for t in c.tools if t.name == "open"
    ]
    assert len(stored.rollouts) == 3 and {r.status for r in stored.rollouts.values()} == {"done"}
    assert len(opened) >= 3 and {t.result for t in opened} == {f"Engine\n{server.base_url}/page\n\nCharles Babbage"}
    assert server.hits == {"/page": 1} and len(server.queries) >= 3
