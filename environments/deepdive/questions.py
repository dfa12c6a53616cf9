"""Multi-hop questions: random walks through the world, each checked to have exactly one answer."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from .world import HOP_BY_PHRASE, HOPS, Entity, World

YEAR_SHARE = 0.3  # how often the last hop asks for a year instead of an entity


@dataclass(frozen=True)
class Question:
    text: str
    start: str  # the one entity the question names
    phrases: tuple[str, ...]  # the hops, innermost first
    answer: str
    aliases: tuple[str, ...]
    kind: str  # entity or year


def phrase(start: str, phrases: tuple[str, ...], person: bool = False) -> str:
    chain = " of ".join(f"the {p}" for p in reversed(phrases))
    return f'{"Who" if person else "What"} is {chain} of "{start}"? Reply with just the name or year.'


def parse(text: str) -> tuple[str, list[str]] | None:
    """(start, hops innermost first) of a question in this environment's phrasing; None for any other text."""
    quoted = re.search(r'"([^"]+)"', text)
    phrases = re.findall(r"the ([a-z ]+?) of", text.split('"', 1)[0])[::-1]
    if not quoted or not phrases:
        return None
    return quoted.group(1), phrases


def resolve(world: World, start: str, phrases: list[str]) -> list[Entity | int]:
    """Everything the description can denote, read with no assumption that a relation has one value."""
    entity = world.lookup(start)
    current: list[Entity | int] = [entity] if entity else []
    for p in phrases:
        hop = HOP_BY_PHRASE[p]
        found = [x for e in current if isinstance(e, Entity) for x in world.follow(e, hop)]
        current = list({(x.id if isinstance(x, Entity) else ("year", x)): x for x in found}.values())
    return current


def _walk(world: World, rng: random.Random, hops: int) -> Question | None:
    start = rng.choice(world.entities)
    node, seen, path = start, {start.id}, []
    answer: Entity | int = start
    for i in range(hops):
        last = i == hops - 1
        options = [h for h in HOPS if node.kind in h.kinds and h.relation != "year"]
        years = [h for h in HOPS if node.kind in h.kinds and h.relation == "year"]
        rng.shuffle(options)
        if last and years and rng.random() < YEAR_SHARE:
            options = years
        step = None
        for hop in options:
            found = world.follow(node, hop)
            if len(found) == 1 and (hop.relation == "year" or found[0].id not in seen):
                step, answer = hop, found[0]
                break
        if step is None:
            return None
        path.append(step.phrase)
        if isinstance(answer, Entity):
            node = answer
            seen.add(node.id)
    phrases = tuple(path)
    if resolve(world, start.name, list(phrases)) != [answer]:
        return None  # the words could mean something else: not a question with one answer
    if isinstance(answer, int):
        return Question(phrase(start.name, phrases), start.name, phrases, str(answer), (), "year")
    text = phrase(start.name, phrases, person=answer.kind == "person")
    return Question(text, start.name, phrases, answer.name, tuple(answer.aliases), "entity")


def make_questions(world: World, n: int, seed: int, min_hops: int, max_hops: int) -> list[Question]:
    """`n` distinct questions of min_hops..max_hops hops, deterministic by the world and `seed`."""
    rng = random.Random(f"deepdive-questions:{world.seed}:{world.size}:{seed}")
    out: dict[tuple[str, tuple[str, ...]], Question] = {}
    for _ in range(400 * n + 100):
        if len(out) == n:
            break
        q = _walk(world, rng, rng.randint(min_hops, max_hops))
        if q is not None:
            out.setdefault((q.start, q.phrases), q)
    if len(out) < n:
        raise ValueError(f"the world has only {len(out)} distinct questions of {min_hops}-{max_hops} hops")
    return list(out.values())
