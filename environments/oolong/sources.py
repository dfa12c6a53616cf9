"""Instance templates by dataset and label: a reader infers the label from the text, and so does `classify`."""

from __future__ import annotations

import re

POOLS = {
    "place": [
        "the Danube",
        "Lake Titicaca",
        "Mount Kenya",
        "the Atacama Desert",
        "Kyoto",
        "the Gobi",
        "Tasmania",
        "the Dead Sea",
        "Reykjavik",
        "the Amazon basin",
        "Lake Baikal",
        "Patagonia",
        "Cappadocia",
        "Zanzibar",
    ],
    "work": [
        "Moby-Dick",
        "The Starry Night",
        "Don Quixote",
        "the Odyssey",
        "Guernica",
        "Middlemarch",
        "The Night Watch",
        "War and Peace",
        "Things Fall Apart",
        "the Mona Lisa",
        "Frankenstein",
    ],
    "feat": [
        "climb Everest",
        "fly across the Atlantic alone",
        "reach the South Pole",
        "walk on the Moon",
        "swim the English Channel",
        "sail around the world alone",
    ],
    "org": ["the Red Cross", "the Boy Scouts", "Amnesty International", "the Royal Society", "the Nobel Foundation"],
    "things": ["bones", "islands", "lakes", "bridges", "museums", "provinces", "languages"],
    "event": [
        "the fall of the Berlin Wall",
        "the first Moon landing",
        "the Battle of Hastings",
        "the signing of the Magna Carta",
        "the opening of the Suez Canal",
    ],
    "term": [
        "photosynthesis",
        "entropy",
        "a haiku",
        "a sonnet",
        "osmosis",
        "inflation",
        "a fjord",
        "irony",
        "a palindrome",
        "a monsoon",
        "a catalyst",
    ],
    "abbr": ["NASA", "UNESCO", "DNA", "RSVP", "GDP", "NATO", "LASER", "SCUBA", "HTML", "FIFA"],
    "animal": ["dog", "cat", "horse", "shark", "parrot", "beetle", "whale", "snake"],
    "musician": ["Miles Davis", "Jimi Hendrix", "Yo-Yo Ma", "Ravi Shankar", "Louis Armstrong", "Glenn Gould"],
    "product": [
        "blender",
        "kettle",
        "backpack",
        "phone case",
        "desk lamp",
        "toaster",
        "rain jacket",
        "headset",
        "coffee grinder",
        "yoga mat",
        "water bottle",
        "bike light",
    ],
    "weekday": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "relative": ["sister", "father", "grandmother", "cousin", "son", "neighbour"],
    "color": ["grey", "blue", "green", "white", "brown"],
    "n": [str(i) for i in range(2, 40)],
    "team": [
        "Riverside Rovers",
        "Northgate United",
        "the Harbour Hawks",
        "Eastfield City",
        "the Valley Foxes",
        "Port Albany",
        "the Summit Lions",
    ],
    "competition": ["cup", "league", "regional", "championship"],
    "athlete": ["Ana Silva", "Kenji Mori", "Lea Novak", "Omar Haddad", "Ingrid Berg", "Tomas Ruiz"],
    "race": ["marathon", "time trial", "sprint final", "downhill race", "triathlon"],
    "company": [
        "Acme Foods",
        "Borealis Energy",
        "Cobalt Systems",
        "Delta Freight",
        "Evergreen Bank",
        "Fjord Telecom",
        "Granite Motors",
    ],
    "country": ["Norvania", "Estland", "Kazaria", "Portavia", "Lumeria", "Santoro", "Veldany"],
    "planet": ["Jupiter", "Saturn", "Mars", "Neptune", "Venus"],
    "university": ["Lakeside University", "the Institute of Northbridge", "Old Harbour College", "Pinecrest Tech"],
    "device": ["battery", "microscope", "solar cell", "quantum sensor", "water filter"],
}

DATASETS: dict[str, dict[str, list[str]]] = {
    "questions": {  # which kind of answer a question asks for
        "location": [
            "Where is {place} located?",
            "In which country would you find {place}?",
            "Which continent is {place} on?",
            "What is the nearest city to {place}?",
        ],
        "person": [
            "Who wrote {work}?",
            "Who was the first person to {feat}?",
            "Who founded {org}?",
            "Which artist created {work}?",
        ],
        "number": [
            "How many {things} are there in {place}?",
            "In what year did {event} happen?",
            "How many people work for {org}?",
            "How old was the author of {work} when it appeared?",
        ],
        "description": [
            "What does the word {term} mean?",
            "How would you explain {term} to a child?",
            "Why is {term} important?",
            "What is the definition of {term}?",
        ],
        "abbreviation": [
            "What does {abbr} stand for?",
            "What is the full form of the abbreviation {abbr}?",
            "Expand the acronym {abbr}.",
        ],
        "entity": [
            "Which breed of {animal} is the largest?",
            "What instrument did {musician} play?",
            "What kind of {animal} lives longest?",
            "Which album made {musician} famous?",
        ],
    },
    "reviews": {  # the sentiment of a product review
        "positive": [
            "I love this {product}, it works perfectly.",
            "Best {product} I have bought in years!",
            "The {product} exceeded all my expectations.",
            "Great {product}, I would happily buy it again.",
        ],
        "negative": [
            "The {product} broke after {n} days.",
            "Terrible {product}, I want my money back.",
            "I regret buying this {product}.",
            "The {product} stopped working within a week, awful.",
        ],
        "neutral": [
            "The {product} arrived on {weekday}.",
            "I bought the {product} for my {relative}.",
            "The {product} comes in a {color} box.",
            "I have had the {product} for {n} weeks.",
        ],
    },
    "news": {  # the section of a headline
        "sports": [
            "{team} beat the visitors {n} to 1 in the {competition} final.",
            "{athlete} won the {race} on {weekday}.",
            "The coach of {team} was sacked after {n} straight losses.",
        ],
        "business": [
            "Shares of {company} rose {n} percent after strong earnings.",
            "{company} agreed to buy a rival for {n} billion dollars.",
            "The central bank of {country} raised interest rates to {n} percent.",
        ],
        "science": [
            "Researchers found {n} new species of {animal} in {place}.",
            "A new telescope spotted a comet passing near {planet}.",
            "Scientists at {university} built a cheaper {device}.",
        ],
        "world": [
            "Protesters gathered in the capital of {country} on {weekday}.",
            "The president of {country} met foreign ministers to discuss the border.",
            "Floods in {country} forced {n} thousand people from their homes.",
        ],
    },
}

DESCRIPTIONS = {  # (what the instances are, what their label says)
    "questions": ("general-knowledge questions", "the kind of answer the question asks for"),
    "reviews": ("product reviews", "the sentiment of the review"),
    "news": ("news headlines", "the section of the paper the headline belongs in"),
}

_SLOT = re.compile(r"\{(\w+)\}")


def _compile(template: str) -> tuple[str, list[list[str]], re.Pattern]:
    """A template as a positional format string, its slot pools, and a pattern that matches its fillings."""
    pools = [POOLS[name] for name in _SLOT.findall(template)]
    fmt = _SLOT.sub("{}", template)
    pattern = re.compile(
        "".join(re.escape(part) if i % 2 == 0 else "(.+?)" for i, part in enumerate(_SLOT.split(template))) + "$"
    )
    return fmt, pools, pattern


COMPILED = {
    dataset: {label: [_compile(t) for t in templates] for label, templates in labels.items()}
    for dataset, labels in DATASETS.items()
}
_PATTERNS = [(pattern, label) for labels in COMPILED.values() for label, ts in labels.items() for _, _, pattern in ts]


def classify(instance: str) -> str | None:
    """The label of an instance, by the template it was filled from: the rule a careful reader follows."""
    for pattern, label in _PATTERNS:
        if pattern.match(instance):
            return label
    return None
