"""Entity pages: each fact in one of several phrasings, among distractors and filler; and a reader for them."""

from __future__ import annotations

import random
import re
from functools import cache

from . import names
from .world import HOP_BY_PHRASE, ORG_KINDS, Entity, World

# {s}: the page's entity opening a sentence (name or pronoun); {n}: its name; {o}: the other side of the fact.
TEMPLATES: dict[tuple[str, str], list[str]] = {
    ("born_in", "s"): ["{s} was born in {o}.", "{s} is a native of {o}.", "The birthplace of {n} is {o}."],
    ("married_to", "s"): ["{s} married {o}.", "{s} is married to {o}.", "{n}'s spouse is {o}."],
    ("studied_at", "s"): ["{s} studied at {o}.", "{s} is a graduate of {o}.", "{s} was educated at {o}."],
    ("works_for", "s"): ["{s} works for {o}.", "{s} is employed by {o}.", "{s} has long worked at {o}."],
    ("located_in", "s"): ["{s} is situated in {o}.", "{s} lies in {o}.", "{n} is a city in {o}."],
    ("capital_of", "s"): ["{s} is the capital of {o}."],
    ("capital_of", "o"): [
        "The capital of {n} is {o}.",
        "{s}'s capital is {o}.",
        "{s} is governed from its capital, {o}.",
    ],
    ("founded", "o"): ["{s} was founded by {o}.", "{s} was established by {o}.", "The founder of {n} is {o}."],
    ("headquartered_in", "s"): [
        "{s} is headquartered in {o}.",
        "{s} has its headquarters in {o}.",
        "{s} is based in {o}.",
    ],
    ("wrote", "o"): ["{n} is a novel by {o}.", "{s} was written by {o}.", "The author of {n} is {o}."],
    ("directed", "o"): ["{n} is a film directed by {o}.", "{s} was directed by {o}.", "The director of {n} is {o}."],
    ("recorded", "o"): ["{n} is an album by {o}.", "{s} was recorded by {o}.", "{n} was recorded by the artist {o}."],
    ("published", "o"): [
        "{s} was published by {o}.",
        "{s} first appeared under the imprint of {o}.",
        "The publisher of {n} is {o}.",
    ],
    ("produced", "o"): ["{s} was produced by {o}.", "{n} is a production of {o}.", "The studio behind {n} is {o}."],
    ("released", "o"): [
        "{s} was released by {o}.",
        "{s} was issued on the {o} label.",
        "The record label of {n} is {o}.",
    ],
}
YEAR_TEMPLATES: dict[str, list[str]] = {
    "person": ["{s} was born in the year {o}.", "{n}'s year of birth is {o}."],
    "org": ["{s} was founded in {o}.", "{n} dates its founding to {o}.", "{s} was established in the year {o}."],
    "novel": ["{s} was first published in {o}.", "{n} appeared in {o}."],
    "film": ["{s} was released in {o}.", "{n} came out in {o}."],
}
YEAR_TEMPLATES["album"] = YEAR_TEMPLATES["film"]
PRONOUNS = {
    "city": "The city",
    "country": "The country",
    "company": "The company",
    "publisher": "The publisher",
    "studio": "The studio",
    "label": "The label",
    "university": "The university",
    "novel": "The novel",
    "film": "The film",
    "album": "The album",
}
_ALL_PRONOUNS = ["She", "He", *PRONOUNS.values()]
HEADINGS = {
    "person": ["Early life", "Career", "Personal life"],
    "city": ["Geography", "History", "Culture"],
    "country": ["Geography", "Government", "Culture"],
    "org": ["History", "Operations", "Reputation"],
    "work": ["Background", "Production", "Reception"],
}
_FORWARD = ["born_in", "married_to", "studied_at", "works_for", "located_in", "headquartered_in"]
_BACKWARD = ["capital_of", "founded", "wrote", "directed", "recorded", "published", "produced", "released"]


def _group(kind: str) -> str:
    return "org" if kind in ORG_KINDS else "work" if kind in ("novel", "film", "album") else kind


def _year_key(kind: str) -> str:
    return "org" if kind in ORG_KINDS else kind


class _Page:
    def __init__(
        self, world: World, entity: Entity, rng: random.Random, *, named: bool = False, peers: dict | None = None
    ) -> None:
        self.world, self.e, self.rng, self.named, self.peers = world, entity, rng, named, peers or {}
        self.pronoun = {"f": "She", "m": "He"}.get(entity.gender) or PRONOUNS[entity.kind]
        self.year_in_lead = not named and entity.kind == "person" and rng.random() < 0.5

    def say(self, template: str, other: str) -> str:
        subject = self.e.name if self.named or self.rng.random() < 0.6 else self.pronoun
        return template.format(s=subject, n=self.e.name, o=other)

    def facts(self) -> list[str]:
        w, e, out = self.world, self.e, []
        for relation in _FORWARD:
            for j in w.out.get((e.id, relation), ()):
                out.append(self.say(self.rng.choice(TEMPLATES[(relation, "s")]), w.entities[j].name))
        for relation in _BACKWARD:
            for j in w.into.get((e.id, relation), ()):
                out.append(self.say(self.rng.choice(TEMPLATES[(relation, "o")]), w.entities[j].name))
        if e.kind == "city" and w.out.get((e.id, "capital_of")):
            out.append(self.say(TEMPLATES[("capital_of", "s")][0], w.entities[w.out[(e.id, "capital_of")][0]].name))
        if e.year and not self.year_in_lead:
            out.append(self.say(self.rng.choice(YEAR_TEMPLATES[_year_key(e.kind)]), str(e.year)))
        return out

    def what(self) -> str:
        e = self.e
        return {
            "person": e.detail,
            "city": f"{self.rng.choice(['small', 'coastal', 'river', 'hill'])} city",
            "country": "country",
            "company": f"{e.detail} company",
            "publisher": "publishing house",
            "studio": "film studio",
            "label": "record label",
            "university": "university",
            "novel": f"{e.detail} novel",
            "film": f"{e.detail} film",
            "album": f"{e.detail} album",
        }[e.kind]

    def lead(self) -> str:
        e = self.e
        aka = f", also known as {e.aliases[0]}," if e.aliases else ""
        born = f" (born {e.year})" if self.year_in_lead else ""
        return f"{e.name}{born}{aka} is {_a(self.what())}."

    def lists(self) -> list[str]:
        w, e, out = self.world, self.e, []
        groups = [
            ("born_in", "Notable people born in {n} include {x}."),
            ("located_in", "Cities in {n} include {x}."),
            ("studied_at", "Alumni of {n} include {x}."),
            ("works_for", "People who have worked at {n} include {x}."),
            ("headquartered_in", "Organisations based in {n} include {x}."),
        ]
        for relation, text in groups:
            members = [w.entities[j].name for j in w.into.get((e.id, relation), ())]
            if members:
                out.append(text.format(n=e.name, x=_join(self.rng.sample(members, min(6, len(members))))))
        made = [
            w.entities[j].name
            for r in ("founded", "wrote", "directed", "recorded", "published", "produced", "released")
            for j in w.out.get((e.id, r), ())
        ]
        if made:
            out.append(f"Works and ventures associated with {e.name} include {_join(made[:8])}.")
        return out

    def distractors(self) -> list[str]:
        """True facts about neighbours and lookalikes, always naming them, to tempt a careless reader."""
        w, e, rng, out = self.world, self.e, self.rng, []
        neighbours = [
            w.entities[j]
            for r in ("married_to", "born_in", "located_in", "headquartered_in")
            for j in w.out.get((e.id, r), ())[:1]
        ]
        neighbours += [w.entities[j] for r in _BACKWARD for j in w.into.get((e.id, r), ())[:1]]
        lookalikes = [w.entities[j] for j in self.peers.get(e.id, ())]
        for other in rng.sample(neighbours, min(2, len(neighbours))) + lookalikes:
            facts = _Page(w, other, rng, named=True).facts()
            out += rng.sample(facts, min(1, len(facts)))
        for other in lookalikes[:1]:
            out.append(f"Not to be confused with {other.name}, {_a(_Page(w, other, rng).what())}.")
        return out

    def filler(self) -> list[str]:
        rng = self.rng
        out = []
        for _ in range(rng.randint(3, 6)):
            adj, adj2 = rng.sample(names.FILLER_ADJECTIVES, 2)
            out.append(
                rng.choice(names.FILLER).format(
                    s=self.e.name,
                    n=self.e.name,
                    adj=adj,
                    adj2=adj2,
                    a_adj=_a(adj).capitalize(),
                    noun=rng.choice(names.NOUNS).lower(),
                )
            )
        return out

    def text(self) -> str:
        body = self.facts() + self.distractors() + self.filler()
        self.rng.shuffle(body)
        headings = HEADINGS[_group(self.e.kind)]
        cut = [len(body) * i // len(headings) for i in range(len(headings) + 1)]
        sections = [f"{h}\n" + " ".join(body[cut[i] : cut[i + 1]]) for i, h in enumerate(headings)]
        parts = [self.e.name, self.e.url, "", self.lead(), "", "\n\n".join(sections)]
        related = self.lists()
        if related:
            parts += ["", "See also", *(f"- {line}" for line in related)]
        return "\n".join(parts)


def _a(phrase: str) -> str:
    vowel = phrase[:1].lower() in "aeiou" and not phrase.lower().startswith(("uni", "eu", "use"))
    return ("an " if vowel else "a ") + phrase


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def lookalikes(world: World) -> dict[int, list[int]]:
    """For each entity, up to two others of its kind that share a word of its name (a surname, a base name)."""
    by_word: dict[tuple[str, str], list[int]] = {}
    for e in world.entities:
        for token in set(e.name.split()) - {"The", "of", "and", "the"}:
            by_word.setdefault((e.kind, token), []).append(e.id)
    peers = {}
    for e in world.entities:
        words = dict.fromkeys(e.name.split())  # in name order: a set's order changes with the hash seed
        groups = sorted((by_word.get((e.kind, t), []) for t in words), key=len)  # rarest word first
        found = [j for group in groups for j in group[:3] if j != e.id]
        peers[e.id] = list(dict.fromkeys(found))[:2]
    return peers


def render_pages(world: World) -> list[str]:
    """Every entity's page, in entity order; deterministic by the world's seed."""
    peers = lookalikes(world)
    return [_Page(world, e, random.Random(f"page:{world.seed}:{e.id}"), peers=peers).text() for e in world.entities]


@cache
def _pattern(template: str, subjects: tuple[str, ...], year: bool) -> re.Pattern[str]:
    names_ = "|".join(re.escape(s) for s in sorted(subjects, key=len, reverse=True))
    anyone = "|".join(re.escape(s) for s in sorted(set(subjects) | set(_ALL_PRONOUNS), key=len, reverse=True))
    obj = r"(?P<o>\d{4})" if year else r"(?P<o>[A-Z][^.,;:()\"\n]*?)"
    start = r"(?:^|(?<=\. )|(?<=\n))"  # a sentence start, so "Ada Byron" never matches inside "Lady Ada Byron"
    regex = re.escape(template)
    regex = regex.replace(r"\{s\}", rf"{start}(?:{anyone})", 1)
    if template.startswith("{n}"):
        regex = start + regex
    regex = regex.replace(r"\{n\}", rf"(?<![\w-])(?:{names_})(?![\w-])").replace(r"\{o\}", obj)
    return re.compile(regex, re.M)


def read_fact(page: str, subjects: list[str], phrase: str) -> str | None:
    """The answer to "the {phrase} of" the page's entity, read from the page's own sentences; None if absent."""
    hop = HOP_BY_PHRASE.get(phrase)
    if hop is None:
        return None
    if hop.relation == "year":
        templates = [t for kind in hop.kinds for t in YEAR_TEMPLATES[_year_key(kind)]]
        templates.append("{n} (born {o})")
    else:
        templates = TEMPLATES[(hop.relation, "s" if hop.forward else "o")]
    names_ = tuple(dict.fromkeys(s for s in subjects if s))
    for template in templates:
        match = _pattern(template, names_, hop.relation == "year").search(page)
        if match:
            return match.group("o").strip()
    return None
