"""Word pools and name generators for the fictional world."""

from __future__ import annotations

import random

_ONSETS = [
    "b",
    "br",
    "c",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "h",
    "j",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "st",
    "t",
    "th",
    "v",
    "w",
    "z",
    "tr",
    "ch",
    "sh",
]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou"]
_MIDDLES = ["l", "r", "n", "v", "d", "s", "m", "th", "nd", "rl"]
_CODAS = ["n", "r", "s", "l", "m", "nd", "rk", "th", "x", "nt", "ll", "st"]
_PLACE_ENDINGS = ["ton", "mere", "ford", "holm", "vale", "burg", "wick", "stad", "port", "by", "grad", "moor"]
_COUNTRY_ENDINGS = ["ia", "and", "mark", "ova", "istan", "ar", "ene", "os"]
_SURNAME_ENDINGS = ["", "", "son", "er", "ski", "ell", "ard", "ane", "ov", "ez", "ley", "ing"]
_FEMININE = ["a", "ia", "elle", "ine", "is", "a", "eth"]
_MASCULINE = ["o", "an", "ic", "us", "en", "ard", "im"]

OCCUPATIONS = [
    "cartographer",
    "novelist",
    "engineer",
    "painter",
    "botanist",
    "architect",
    "composer",
    "journalist",
    "physician",
    "economist",
    "historian",
    "sculptor",
    "chemist",
    "diplomat",
    "photographer",
    "astronomer",
    "merchant",
    "poet",
    "lawyer",
    "mathematician",
]
INDUSTRIES = [
    "shipbuilding",
    "textile",
    "railway",
    "glassworks",
    "brewing",
    "instrument-making",
    "mining",
    "printing",
    "clockmaking",
    "shipping",
    "porcelain",
    "telegraph",
]
ADJECTIVES = [
    "Glass",
    "Silent",
    "Crimson",
    "Hollow",
    "Northern",
    "Last",
    "Quiet",
    "Iron",
    "Paper",
    "Winter",
    "Golden",
    "Broken",
    "Distant",
    "Salt",
    "Velvet",
    "Burning",
    "Lantern",
    "Copper",
    "Amber",
    "Hidden",
    "Wandering",
    "Pale",
    "Emerald",
    "Sleeping",
    "Twelfth",
    "Lost",
    "Bitter",
    "Drowned",
    "Patient",
    "Ashen",
]
NOUNS = [
    "Orchard",
    "Harbour",
    "Cartographer",
    "Lighthouse",
    "Garden",
    "Archive",
    "Bell",
    "River",
    "Ledger",
    "Meridian",
    "Orchestra",
    "Tide",
    "Atlas",
    "Observatory",
    "Clockmaker",
    "Season",
    "Bridge",
    "Mirror",
    "Compass",
    "Ferryman",
    "Telegram",
    "Kingdom",
    "Threshold",
    "Cathedral",
    "Caravan",
    "Monsoon",
    "Weaver",
    "Citadel",
    "Almanac",
    "Voyage",
    "Quarry",
    "Pilgrim",
    "Furnace",
    "Lagoon",
    "Sonata",
    "Vineyard",
]
GENRES = {
    "novel": ["historical", "gothic", "epistolary", "picaresque", "coming-of-age", "detective"],
    "film": ["silent", "documentary", "drama", "comedy", "war", "adventure"],
    "album": ["folk", "jazz", "choral", "orchestral", "ambient", "chamber"],
}
ORG_SUFFIXES = {
    "company": ["Works", "Industries", "Company", "Holdings", "Manufacturing", "Trading Company"],
    "publisher": ["House", "Press", "Books", "Publishing"],
    "studio": ["Pictures", "Film Studio", "Studios"],
    "label": ["Records", "Recordings", "Music"],
}
FILLER = [
    "{s} is often mentioned in local histories.",
    "Accounts of {n} differ in small details.",
    "{s} appears in several regional almanacs.",
    "Little of the early record of {n} survives.",
    "{s} was the subject of a short study in a provincial journal.",
    "Archives hold letters and papers connected with {n}.",
    "Visitors often remark on the {adj} character of {n}.",
    "{s} has been described as {adj} and {adj2}.",
    "The {noun} is sometimes used as an emblem of {n}.",
    "Several guidebooks single out {n} for its {adj} reputation.",
    "{a_adj} account of {n} circulated widely in the last century.",
    "Opinions about {n} remain {adj} rather than {adj2}.",
]
FILLER_ADJECTIVES = [
    "austere",
    "lively",
    "modest",
    "stubborn",
    "ambitious",
    "careful",
    "restless",
    "generous",
    "reserved",
    "inventive",
    "weathered",
    "elegant",
]


def word(rng: random.Random, syllables: int) -> str:
    text = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables))
    return text + rng.choice(_CODAS) if rng.random() < 0.6 else text


def given_name(rng: random.Random, gender: str) -> str:
    ending = rng.choice(_FEMININE if gender == "f" else _MASCULINE)
    return (rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_MIDDLES) + ending).capitalize()


def surname(rng: random.Random) -> str:
    stem = rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_MIDDLES)
    if rng.random() < 0.5:
        stem += rng.choice(_VOWELS) + rng.choice(_CODAS)
    return (stem + rng.choice(_SURNAME_ENDINGS)).capitalize()


def place(rng: random.Random) -> str:
    base = word(rng, rng.choice([1, 2])) + rng.choice(_PLACE_ENDINGS)
    name = base.capitalize()
    if rng.random() < 0.12:
        name = rng.choice(["Port", "New", "Upper", "Saint"]) + " " + name
    return name


def country(rng: random.Random) -> str:
    return (word(rng, 2) + rng.choice(_COUNTRY_ENDINGS)).capitalize()


def org_base(rng: random.Random) -> str:
    return (word(rng, 2) if rng.random() < 0.7 else word(rng, 1) + rng.choice(_SURNAME_ENDINGS)).capitalize()


def title(rng: random.Random) -> str:
    form = rng.random()
    if form < 0.5:
        return f"The {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
    if form < 0.7:
        return f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}s"
    if form < 0.85:
        return f"The {rng.choice(NOUNS)} and the {rng.choice(NOUNS)}"
    return f"The {rng.choice(NOUNS)} of {word(rng, 2).capitalize()}"  # open-ended, so big worlds never run out
