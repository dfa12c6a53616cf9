"""deepdive offline: the generated world, its pages and index, questions, and the scoring helpers."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from environments.deepdive.index import OfflineWeb, offline_web
from environments.deepdive.questions import make_questions, parse, resolve
from environments.deepdive.render import read_fact, render_pages
from environments.deepdive.scoring import matches, normalise, redundancy, search_queries
from environments.deepdive.tools import PAGE_CHARS, clip, format_hits, make_tools, parse_hits
from environments.deepdive.world import HOP_BY_PHRASE, build_world
from rlm_tui.engine.sub_llm import run_tool
from rlm_tui.env import EnvError, load_environment


@pytest.fixture(scope="module")
def web():
    return offline_web(0, 2000)


def test_the_world_is_deterministic_by_seed():
    a, b, c = build_world(7, 300), build_world(7, 300), build_world(8, 300)
    assert [e.name for e in a.entities] == [e.name for e in b.entities]
    assert dict(a.out) == dict(b.out)
    assert render_pages(a) == render_pages(b)
    assert [e.name for e in a.entities] != [e.name for e in c.entities]


def test_the_pages_are_the_same_in_every_process_whatever_its_hash_seed():
    """The engine, a resume and the scripted model each build the web in their own process: it must not differ."""
    code = (
        "import hashlib; from environments.deepdive.render import render_pages; "
        "from environments.deepdive.world import build_world; "
        "print(hashlib.sha256('\\0'.join(render_pages(build_world(3, 400))).encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=Path(__file__).resolve().parent.parent,  # this checkout's environments, first on the path
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    here = hashlib.sha256("\0".join(render_pages(build_world(3, 400))).encode()).hexdigest()
    assert digests == {here + "\n"}


def test_the_default_world_builds_thousands_of_pages(web):
    world = web.world
    assert len(world.entities) == len(web.pages) == 2000
    assert {e.kind for e in world.entities} == {
        "person",
        "city",
        "country",
        "company",
        "publisher",
        "studio",
        "label",
        "university",
        "novel",
        "film",
        "album",
    }
    assert offline_web(0, 2000) is web  # built once per process, shared by every rollout
    page = web.pages[world.entities[0].url]
    assert page.startswith(f"{world.entities[0].name}\n{world.entities[0].url}\n")


def test_names_and_aliases_are_unique_after_normalising(web):
    world = web.world
    keys = [normalise(n) for e in world.entities for n in (e.name, *e.aliases)]
    assert len(keys) == len(set(keys))
    assert any(e.aliases for e in world.entities)


def test_every_question_has_exactly_one_answer_stated_on_the_pages(web):
    world = web.world
    questions = make_questions(world, 150, seed=3, min_hops=2, max_hops=4)
    assert {len(q.phrases) for q in questions} == {2, 3, 4}
    assert {q.kind for q in questions} == {"entity", "year"}
    for q in questions:
        assert parse(q.text) == (q.start, list(q.phrases))
        (only,) = resolve(world, q.start, list(q.phrases))
        assert str(getattr(only, "name", only)) == q.answer
        entity = q.start
        for phrase in q.phrases:  # each hop can be read off the page of the entity before it
            entity = read_fact(web.open(world.lookup(entity).url), [entity], phrase)
        assert entity == q.answer


def test_the_reader_takes_only_the_page_entity_s_own_sentences():
    page = (
        "Marrow Vantreck\nhttps://wiki.example/Marrow_Vantreck\n\nMarrow Vantreck is a poet.\n\nCareer\n"
        "Ilsa Marrow Vantreck's spouse is Doran Kess. Ilsa Marrow Vantreck was born in Lisk. "
        "Her rival, Marrow Vantreck, was born in Tarn. Marrow Vantreck's spouse is Oda Fell. "
        "She is a native of Velmora. The birthplace of Ilsa Marrow Vantreck is Lisk."
    )
    assert read_fact(page, ["Marrow Vantreck"], "spouse") == "Oda Fell"
    assert read_fact(page, ["Marrow Vantreck"], "birthplace") == "Velmora"
    assert read_fact(page, ["Marrow Vantreck"], "birth year") is None
    assert read_fact(page, ["Marrow Vantreck"], "no such hop") is None


def test_questions_are_deterministic_by_seed():
    env = load_environment("deepdive", {"source": "offline"})
    first = env.examples(5, seed=1)
    assert [e.question for e in first] == [e.question for e in env.examples(5, seed=1)]
    assert [e.question for e in first] != [e.question for e in env.examples(5, seed=2)]
    assert all(e.info["source"] == "offline" and 2 <= e.info["hops"] <= 4 for e in first)
    assert all(set(e.target) == {"answer", "aliases"} for e in first)


def test_resolve_sees_every_reading_of_a_description(web):
    world = web.world
    city = next(e for e in world.entities if e.kind == "city" and len(world.into[(e.id, "born_in")]) > 1)
    person = world.entities[world.into[(city.id, "born_in")][0]]
    assert resolve(world, person.name, ["birthplace"]) == [city]
    assert resolve(world, "Nobody At All", ["birthplace"]) == []
    assert len(world.follow(city, HOP_BY_PHRASE["country"])) == 1


def test_search_ranks_the_entity_page_first(web):
    sample = random.Random(0).sample(web.world.entities, 80)
    for entity in sample:
        assert web.search(entity.name)[0].url == entity.url, entity.name
    person = next(e for e in sample if e.kind == "person")
    assert person.url in [h.url for h in web.search(f"where was {person.name} born", 5)]
    assert web.search("!!!") == [] and "No results" in format_hits("zzqx", web.search("zzqx"))


def test_search_output_lists_title_url_and_snippet(web):
    entity = web.world.entities[5]
    text = format_hits(entity.name, web.search(entity.name, 3))
    hits = parse_hits(text)
    assert len(hits) == 3 and hits[0].title == entity.name and hits[0].url == entity.url and hits[0].snippet


def test_open_returns_the_page(web):
    entity = web.world.entities[42]
    page = web.pages[entity.url]
    assert web.open(entity.url) == page
    assert web.open(entity.url.removeprefix("https://")) == page
    assert web.open(entity.name) == page
    assert web.open("https://wiki.example/No_Such_Page").startswith("[no page at")


def test_open_is_clipped_to_20000_characters_through_the_engine():
    small = build_world(5, 120)
    web = OfflineWeb(small, render_pages(small))
    web.add("https://wiki.example/Long", "Long", "Long\nhttps://wiki.example/Long\n\n" + "word " * 12_000)

    async def read():
        async def search(query):
            return format_hits(query, web.search(query))

        async def open_page(url):
            return web.open(url)

        tools = {t.name: t for t in make_tools(search, open_page)}
        seen = []
        result = await run_tool(
            tools,
            {"name": "open", "arguments": '{"url": "https://wiki.example/Long"}'},
            seen.append,
            "run",
            "rollout",
            "parent",
        )
        return result, seen

    result, seen = asyncio.run(read())
    assert len(result) == PAGE_CHARS and result.endswith("of 60,032 characters]")
    assert "[truncated:" not in result  # the page was clipped by the tool, not cut again by the engine
    assert seen[0].name == "open" and seen[0].result == result
    assert clip("short") == "short"


@pytest.mark.parametrize(
    "answer, target, expected",
    [
        ("Velmora", "Velmora", True),
        ("  velmora. ", "Velmora", True),
        ("The Glass Orchard", "Glass Orchard", True),
        ("glass orchard!", "The Glass Orchard", True),
        ("Élodie Marsh", "Elodie Marsh", True),
        ("1873", "1873", True),
        ("Ilsa Vantreck", {"answer": "Ilsa Marrow Vantreck", "aliases": ["Ilsa Vantreck"]}, True),
        ("Ilsa", {"answer": "Ilsa Marrow Vantreck", "aliases": ["Ilsa Vantreck"]}, False),
        ("Velmora, Ostrand", "Velmora", False),
        ("", "Velmora", False),
        ("the", "The", False),
    ],
)
def test_normalised_match(answer, target, expected):
    assert matches(target, answer) is expected


def test_normalise():
    assert normalise("  The  Hollow-Bell's  Archive, (A) novel ") == "hollow bell s archive novel"


def test_redundancy_by_hand():
    assert redundancy([]) == redundancy(["only one"]) == 0.0
    assert redundancy(["a b", "a b"]) == 1.0
    assert redundancy(["a b", "c d"]) == 0.0
    assert redundancy(["a b", "a c"]) == pytest.approx(1 / 3)
    # pairs: {a,b}-{a,c} 1/3, {a,b}-{b,c,d} 1/4, {a,c}-{b,c,d} 1/4
    assert redundancy(["A b", "a, C", "b c d"]) == pytest.approx((1 / 3 + 1 / 4 + 1 / 4) / 3)


def test_search_queries_come_from_sub_calls_and_root_turns():
    tool = lambda name, **args: SimpleNamespace(name=name, arguments=args)  # noqa: E731
    call = SimpleNamespace(tools=[tool("search", query="x y"), tool("open", url="u"), tool("search", query="x z")])
    turn = SimpleNamespace(
        tool_calls=[{"name": "search", "arguments": '{"query": "root q"}'}, {"name": "search", "arguments": "{broken"}]
    )
    rollout = SimpleNamespace(batches=[SimpleNamespace(calls=[call])], turns=[turn])
    assert search_queries(rollout) == ["x y", "x z", "root q"]


@pytest.mark.parametrize(
    "args, fragment",
    [
        ({"hops": "5-2"}, "hops"),
        ({"hops": "x"}, "hops"),
        ({"source": "cloud"}, "source"),
        ({"num_entities": "10"}, "num_entities"),
        ({"colour": "red"}, "no knob 'colour'"),
    ],
)
def test_bad_knobs_are_one_line_errors(args, fragment):
    with pytest.raises(EnvError) as info:
        load_environment("deepdive", args)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_online_needs_a_serper_key(monkeypatch):
    monkeypatch.delenv("SERPER_API_KEY", raising=False)
    with pytest.raises(EnvError, match="SERPER_API_KEY"):
        load_environment("deepdive", {"source": "online"})
    assert load_environment("deepdive").source == "offline"
    monkeypatch.setenv("SERPER_API_KEY", "k")
    assert load_environment("deepdive").source == "online"
    assert load_environment("deepdive", {"source": "offline"}).source == "offline"
