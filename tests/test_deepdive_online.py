"""deepdive online: Serper results and fetched pages through a mock HTTP transport, and the rows from a local Hub."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict

import httpx
import pytest

from environments.deepdive import dataset
from environments.deepdive.dataset import examples_from_rows, question_type, row_to_example
from environments.deepdive.html_text import html_to_text
from environments.deepdive.online import SERPER_BASE_URL, format_serper
from environments.deepdive.tools import PAGE_CHARS, parse_hits
from fake_hub import FakeHub, load_examples, rlm_tui, rlm_tui_without_datasets
from rlm_tui.engine.sub_llm import run_tool
from rlm_tui.env import load_environment

# The shape of a /search response from google.serper.dev (the fields this environment reads, plus a few others).
SERPER = {
    "searchParameters": {"q": "ada lovelace", "gl": "us", "hl": "en", "type": "search", "num": 10, "engine": "google"},
    "answerBox": {"title": "Ada Lovelace / Born", "answer": "10 December 1815, London"},
    "knowledgeGraph": {
        "title": "Ada Lovelace",
        "type": "English mathematician",
        "website": "https://example.org/ada",
        "imageUrl": "https://example.org/ada.jpg",
        "description": "Augusta Ada King, Countess of Lovelace, was an English mathematician and writer.",
        "descriptionSource": "Wikipedia",
        "descriptionLink": "https://en.wikipedia.org/wiki/Ada_Lovelace",
        "attributes": {"Born": "December 10, 1815, London", "Parents": "Lord Byron, Lady Byron"},
    },
    "organic": [
        {
            "title": "Ada Lovelace - Wikipedia",
            "link": "https://en.wikipedia.org/wiki/Ada_Lovelace",
            "snippet": "Augusta Ada King, Countess of Lovelace was an English mathematician ...",
            "sitelinks": [{"title": "Early life", "link": "https://en.wikipedia.org/wiki/Ada_Lovelace#Early_life"}],
            "position": 1,
        },
        {
            "title": "Ada Lovelace | Biography",
            "link": "https://example.org/ada",
            "snippet": "Her notes on the engine ...",
            "date": "Mar 2, 2024",
            "position": 2,
        },
        {"title": "A result without a link", "position": 3},
        {"title": "Analytical Engine", "link": "https://example.org/engine", "snippet": "", "position": 4},
    ],
    "peopleAlsoAsk": [
        {
            "question": "What is Ada Lovelace famous for?",
            "snippet": "The first published algorithm.",
            "title": "Ada Lovelace",
            "link": "https://example.org/famous",
        },
        {"question": "Did Ada Lovelace have children?"},
    ],
    "relatedSearches": [{"query": "ada lovelace children"}],
    "credits": 1,
}

PAGE = """<!doctype html><html><head><title>Ada Lovelace &amp; the Engine</title>
<style>body { color: red }</style><script>var tracking = "do not show";</script></head>
<body><nav><a href="/">Home</a> | <a href="/about">About us</a></nav>
<h1>Ada Lovelace</h1><p>Ada was born in <a href="/london">London</a> in 1815.<br>She wrote the
   first   algorithm.</p>
<h2>Works</h2><ul><li>Notes on the <b>Analytical Engine</b></li><li>Letters</li></ul>
<table><tr><td>Born</td><td>1815</td></tr></table>
<form><input name="q"><button>Search</button></form><footer>Footer text</footer></body></html>"""


def handler(request: httpx.Request) -> httpx.Response:
    url = str(request.url)
    if url == SERPER_BASE_URL + "/search":
        assert request.method == "POST" and request.headers["X-API-KEY"] == "test-key"
        query = json.loads(request.content)["q"]
        if query == "forbidden":
            return httpx.Response(403, json={"message": "Unauthorized.", "statusCode": 403})
        return httpx.Response(200, json=SERPER)
    pages = {
        "https://example.org/ada": (200, "text/html; charset=utf-8", PAGE),
        "https://example.org/plain.txt": (200, "text/plain", "just text"),
        "https://example.org/paper.pdf": (200, "application/pdf", "%PDF-1.4"),
        "https://example.org/long": (200, "text/html", "<p>" + "lorem ipsum " * 5000 + "</p>"),
    }
    if url == "https://example.org/old":
        return httpx.Response(301, headers={"Location": "https://example.org/ada"})
    if url in pages:
        status, kind, body = pages[url]
        return httpx.Response(status, headers={"content-type": kind}, text=body)
    return httpx.Response(404, text="not found")


@pytest.fixture
def tools(monkeypatch):
    monkeypatch.setenv("SERPER_API_KEY", "test-key")
    env = load_environment("deepdive", {"source": "online", "results": "3"})
    env.http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    yield {t.name: t for t in env.sub_tools()}
    asyncio.run(env.http.aclose())


def call(tools, name, **arguments):
    events = []
    return asyncio.run(
        run_tool(tools, {"name": name, "arguments": json.dumps(arguments)}, events.append, "r", "o", "p")
    )


def test_search_formats_serper_results(tools):
    text = call(tools, "search", query="ada lovelace")
    assert text.startswith("Answer box: Ada Lovelace / Born — 10 December 1815, London")
    assert "Knowledge graph: Ada Lovelace (English mathematician)" in text
    assert "English mathematician and writer. [Wikipedia]" in text and "Parents: Lord Byron, Lady Byron" in text
    hits = parse_hits(text)
    assert [h.url for h in hits] == [
        "https://en.wikipedia.org/wiki/Ada_Lovelace",
        "https://example.org/ada",
        "https://example.org/engine",
    ]  # the one without a link is skipped
    assert (
        hits[0].title == "Ada Lovelace - Wikipedia" and hits[1].snippet == "Mar 2, 2024 — Her notes on the engine ..."
    )
    assert (
        "People also ask:\n- What is Ada Lovelace famous for? The first published algorithm. "
        "(https://example.org/famous)\n- Did Ada Lovelace have children?" in text
    )


def test_serper_without_extras_is_just_the_results():
    text = format_serper("q", {"organic": [{"title": "T", "link": "https://t.example", "snippet": "s"}]})
    assert text == "Results for 'q':\n1. T\n   https://t.example\n   s"
    assert format_serper("q", {}) == "No results for 'q'."


def test_a_serper_error_is_reported_to_the_model(tools):
    assert call(tools, "search", query="forbidden").startswith("[tool error] RuntimeError: Serper answered HTTP 403")


def test_open_reads_html_as_text(tools):
    text = call(tools, "open", url="https://example.org/ada")
    assert text.startswith("Ada Lovelace & the Engine\nhttps://example.org/ada\n\n# Ada Lovelace\n")
    assert "Ada was born in London in 1815.\nShe wrote the first algorithm." in text
    assert "algorithm.\n\n## Works\n- Notes on the Analytical Engine\n- Letters" in text and "Born 1815" in text
    for hidden in ("tracking", "color: red", "About us", "Search"):
        assert hidden not in text


def test_open_follows_redirects_and_handles_other_content(tools):
    assert call(tools, "open", url="https://example.org/old").startswith(
        "Ada Lovelace & the Engine\nhttps://example.org/ada"
    )
    assert call(tools, "open", url="example.org/plain.txt") == "https://example.org/plain.txt\n\njust text"
    assert call(tools, "open", url="https://example.org/paper.pdf").startswith(
        "[tool error] PdfError: could not read the PDF at https://example.org/paper.pdf: "
    )
    assert call(tools, "open", url="https://example.org/gone") == "[could not open https://example.org/gone: HTTP 404]"
    long = call(tools, "open", url="https://example.org/long")
    assert len(long) == PAGE_CHARS and "[page truncated: showing the first" in long


def test_html_to_text_keeps_structure():
    title, text = html_to_text(
        "<title> T </title><div><h3>Head</h3>a <i>b</i> c<p>d &lt; e</p></div>"
        "<ol><li>one<li>two</ol><script>x()</script>"
    )
    assert title == "T" and text == "### Head\na b c\nd < e\n- one\n- two"
    assert html_to_text("<p>a</p><h2>B</h2><p>c</p>")[1] == "a\n\n## B\nc"


ROWS = [{"id": i, "question": f"Question {i}?", "answer": f"Answer {i}", "conversations": []} for i in range(40)]


def test_row_to_example():
    example = row_to_example({"id": 7, "question": " Who? ", "answer": " 1921 ", "conversations": []}, "eval")
    assert (example.id, example.question) == ("deepdive-7", "Who?")
    assert example.target == {"answer": "1921", "aliases": []}
    assert example.info == {"source": "online", "hops": None, "question_type": "year", "split": "eval"}


@pytest.mark.parametrize(
    "answer, kind",
    [("1921", "year"), ("3.5", "number"), ("12%", "number"), ("Marie Curie", "entity"), ("March 1921", "entity")],
)
def test_question_type(answer, kind):
    assert question_type(answer) == kind


def test_the_eval_split_is_held_out_and_fixed():
    rows = ROWS + [{"id": 98, "question": "", "answer": "x"}, {"id": 99, "question": "q", "answer": None}]
    held = {e.id for e in examples_from_rows(rows, 100, 0, "eval", 10)}
    train = {e.id for e in examples_from_rows(rows, 100, 0, "train", 10)}
    assert len(held) == 10 and len(train) == 30 and not held & train
    assert held == {e.id for e in examples_from_rows(rows, 100, 5, "eval", 10)}  # the seed never moves a row
    first = [e.id for e in examples_from_rows(rows, 4, 0, "train", 10)]
    assert first == [e.id for e in examples_from_rows(rows, 4, 0, "train", 10)]
    assert first != [e.id for e in examples_from_rows(rows, 4, 1, "train", 10)]
    assert {"deepdive-98", "deepdive-99"}.isdisjoint(held | train)


def test_rows_are_read_from_the_qa_rl_split(tmp_path):
    rows = ROWS + [
        {"id": 98, "question": "", "answer": "x", "conversations": []},
        {"id": 99, "question": "q", "answer": None, "conversations": []},
    ]
    other = [{"id": 500, "question": "Other?", "answer": "Other", "conversations": []}]
    args = {"source": "online", "eval_size": "10"}
    with FakeHub({dataset.DATASET: {"default": {"qa_rl": rows, "sft": other}}}) as hub:
        held, train = load_examples(
            hub,
            tmp_path,
            [("deepdive", {**args, "split": "eval"}, 100, 0), ("deepdive", {**args, "split": "train"}, 100, 3)],
            SERPER_API_KEY="test-key",
        )
    assert held == [asdict(e) for e in examples_from_rows(rows, 100, 0, "eval", 10)]
    assert train == [asdict(e) for e in examples_from_rows(rows, 100, 3, "train", 10)]
    assert len(held) == 10 and len(train) == 30 and not {e["id"] for e in held} & {e["id"] for e in train}


@pytest.mark.parametrize(
    "errors, reason",
    [
        pytest.param({"/": 404}, "FileNotFoundError: ", id="404"),
        pytest.param({"/api/": 500}, "HfHubHTTPError: Server error '500", id="500"),
    ],
)
def test_a_failed_download_is_one_clear_line(tmp_path, errors, reason):
    with FakeHub({dataset.DATASET: {"default": {"qa_rl": ROWS}}}, errors=errors) as hub:
        proc = rlm_tui(
            hub,
            tmp_path,
            "run",
            "deepdive",
            "--headless",
            "-n",
            "1",
            "--model",
            "scripted",
            "--db",
            "t.db",
            "--env-arg",
            "source=online",
            SERPER_API_KEY="test-key",
        )
    (line,) = proc.stderr.strip().splitlines()  # one line, no traceback
    assert proc.returncode == 2
    assert line.startswith(f"rlm-tui: error: could not load zai-org/DeepDive (qa_rl): {reason}")


def test_a_missing_datasets_package_is_one_clear_line(tmp_path):
    proc = rlm_tui_without_datasets(
        tmp_path,
        "run",
        "deepdive",
        "--headless",
        "-n",
        "1",
        "--model",
        "scripted",
        "--env-arg",
        "source=online",
        "--db",
        "t.db",
        SERPER_API_KEY="test-key",
    )
    assert (proc.returncode, proc.stderr.strip()) == (
        2,
        "rlm-tui: error: loading zai-org/DeepDive needs the `datasets` package: pip install 'rlm-tui[online]'",
    )
