"""The fictional knowledge graph: entities, typed relations, and the hops a question may take."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import quote

from . import names
from .scoring import normalise

ORG_KINDS = ("company", "publisher", "studio", "label", "university")
WORK_KINDS = ("novel", "film", "album")
BASE_URL = "https://wiki.example/"


def page_url(name: str) -> str:
    return BASE_URL + quote(name.replace(" ", "_"), safe="_'(),-&")


@dataclass
class Entity:
    id: int
    kind: str  # person, city, country, one of ORG_KINDS or WORK_KINDS
    name: str
    aliases: list[str] = field(default_factory=list)
    year: int = 0  # birth, founding or release year; 0 for places
    gender: str = ""  # f or m, for people
    detail: str = ""  # occupation, industry or genre

    @property
    def url(self) -> str:
        return page_url(self.name)


@dataclass(frozen=True)
class Hop:
    """One step of a question: "the {phrase} of X", following `relation` out of (forward) or into X."""

    phrase: str
    relation: str  # a relation name, or "year" for the entity's year
    forward: bool
    kinds: tuple[str, ...]  # the kinds of X this step applies to


HOPS = (
    Hop("birthplace", "born_in", True, ("person",)),
    Hop("spouse", "married_to", True, ("person",)),
    Hop("alma mater", "studied_at", True, ("person",)),
    Hop("employer", "works_for", True, ("person",)),
    Hop("country", "located_in", True, ("city",)),
    Hop("capital", "capital_of", False, ("country",)),
    Hop("founder", "founded", False, ORG_KINDS),
    Hop("headquarters city", "headquartered_in", True, ORG_KINDS),
    Hop("author", "wrote", False, ("novel",)),
    Hop("director", "directed", False, ("film",)),
    Hop("recording artist", "recorded", False, ("album",)),
    Hop("publisher", "published", False, ("novel",)),
    Hop("studio", "produced", False, ("film",)),
    Hop("record label", "released", False, ("album",)),
    Hop("birth year", "year", True, ("person",)),
    Hop("founding year", "year", True, ORG_KINDS),
    Hop("publication year", "year", True, ("novel",)),
    Hop("release year", "year", True, ("film", "album")),
)
HOP_BY_PHRASE = {h.phrase: h for h in HOPS}
CREATED = {
    "novel": ("wrote", "published", "publisher"),
    "film": ("directed", "produced", "studio"),
    "album": ("recorded", "released", "label"),
}


class World:
    def __init__(self, seed: int, size: int) -> None:
        self.seed, self.size = seed, size
        self.entities: list[Entity] = []
        self.out: dict[tuple[int, str], list[int]] = defaultdict(list)
        self.into: dict[tuple[int, str], list[int]] = defaultdict(list)
        self.keys: dict[str, int] = {}  # normalised name or alias -> entity id

    def add(self, subject: int, relation: str, obj: int) -> None:
        self.out[(subject, relation)].append(obj)
        self.into[(obj, relation)].append(subject)

    def follow(self, entity: Entity, hop: Hop) -> list[Entity] | list[int]:
        """Everything `hop` leads to from `entity`: entities, or the year for a year hop."""
        if entity.kind not in hop.kinds:
            return []
        if hop.relation == "year":
            return [entity.year]
        edges = self.out if hop.forward else self.into
        return [self.entities[i] for i in edges.get((entity.id, hop.relation), ())]

    def lookup(self, name: str) -> Entity | None:
        i = self.keys.get(normalise(name))
        return None if i is None else self.entities[i]

    def _new(self, rng: random.Random, kind: str, make, **fields) -> Entity:
        """An entity with a name no other entity has (also after normalising)."""
        for _ in range(1000):
            name = make()
            if normalise(name) not in self.keys:
                break
        else:
            raise RuntimeError(f"cannot find a fresh {kind} name")
        entity = Entity(id=len(self.entities), kind=kind, name=name, **fields)
        self.entities.append(entity)
        self.keys[normalise(name)] = entity.id
        return entity

    def _alias(self, entity: Entity, alias: str) -> None:
        if normalise(alias) not in self.keys:  # an alias that collides would make answers ambiguous
            entity.aliases.append(alias)
            self.keys[normalise(alias)] = entity.id


def build_world(seed: int, size: int) -> World:
    """A deterministic world of about `size` entities."""
    rng = random.Random(f"deepdive-world:{seed}:{size}")
    world = World(seed, size)
    n_countries = max(3, size // 60)
    n_cities = max(2 * n_countries, size * 15 // 100)
    n_people = size * 42 // 100
    n_orgs = size * 20 // 100
    n_works = max(3, size - n_countries - n_cities - n_people - n_orgs)

    countries = [world._new(rng, "country", lambda: names.country(rng)) for _ in range(n_countries)]
    for c in countries:
        if rng.random() < 0.5:
            world._alias(c, f"{rng.choice(['Republic', 'Kingdom', 'Federation', 'Commonwealth'])} of {c.name}")
    cities = [world._new(rng, "city", lambda: names.place(rng)) for _ in range(n_cities)]
    for i, city in enumerate(cities):
        country = countries[i] if i < len(countries) else rng.choice(countries)
        world.add(city.id, "located_in", country.id)
        if i < len(countries):
            world.add(city.id, "capital_of", country.id)
        if rng.random() < 0.1:
            world._alias(city, names.place(rng))

    people = []
    for _ in range(n_people):
        gender = rng.choice("fm")
        given, family = names.given_name(rng, gender), names.surname(rng)
        middle = names.given_name(rng, rng.choice("fm")) if rng.random() < 0.25 else ""
        full = " ".join(p for p in (given, middle, family) if p)
        first = [full]  # the drawn name first; fresh ones only if it is taken

        def name(first: list[str] = first, gender: str = gender) -> str:
            return first.pop() if first else f"{names.given_name(rng, gender)} {names.surname(rng)}"

        person = world._new(
            rng,
            "person",
            name,
            year=rng.randint(1820, 1990),
            gender=gender,
            detail=rng.choice(names.OCCUPATIONS),
        )
        if middle and person.name == full:
            world._alias(person, f"{given} {family}")
        world.add(person.id, "born_in", rng.choice(cities).id)
        people.append(person)

    orgs = []
    for _ in range(n_orgs):
        kind = rng.choices(ORG_KINDS, weights=[35, 20, 15, 15, 15])[0]
        if kind == "university":
            org = world._new(rng, kind, lambda: f"{names.org_base(rng)} University")
            world._alias(org, f"University of {org.name.removesuffix(' University')}")
        else:
            org = world._new(rng, kind, lambda: f"{names.org_base(rng)} {rng.choice(names.ORG_SUFFIXES[kind])}")  # noqa: B023
        founder = rng.choice(people)
        org.year = min(2020, founder.year + rng.randint(22, 55))
        org.detail = rng.choice(names.INDUSTRIES) if kind == "company" else ""
        world.add(founder.id, "founded", org.id)
        world.add(org.id, "headquartered_in", rng.choice(cities).id)
        orgs.append(org)
    by_kind = {k: [o for o in orgs if o.kind == k] or orgs for k in ORG_KINDS}

    singles = list(people)
    rng.shuffle(singles)
    for a, b in zip(singles[0 : len(singles) * 2 // 5 : 2], singles[1 : len(singles) * 2 // 5 : 2]):
        world.add(a.id, "married_to", b.id)
        world.add(b.id, "married_to", a.id)
    employers = [o for o in orgs if o.kind != "university"] or orgs
    for person in people:
        if rng.random() < 0.6:
            world.add(person.id, "studied_at", rng.choice(by_kind["university"]).id)
        if rng.random() < 0.5:
            world.add(person.id, "works_for", rng.choice(employers).id)

    creators = {"novel": "novelist", "film": "film director", "album": "composer"}
    for _ in range(n_works):
        kind = rng.choices(WORK_KINDS, weights=[45, 30, 25])[0]
        creator = rng.choice(people)
        creator.detail = creators[kind]
        work = world._new(
            rng,
            kind,
            lambda: names.title(rng),
            year=min(2023, creator.year + rng.randint(20, 60)),
            detail=rng.choice(names.GENRES[kind]),
        )
        made, issued, org_kind = CREATED[kind]
        world.add(creator.id, made, work.id)
        world.add(rng.choice(by_kind[org_kind]).id, issued, work.id)
    return world
