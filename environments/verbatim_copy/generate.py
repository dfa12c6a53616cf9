"""Deterministic generators of text that is hard to copy by heart: words, JSON, CSV, codes."""

from __future__ import annotations

import json
import random
import string

CONTENT_TYPES = ("words", "json", "csv", "codes", "mixed")

_ONSETS = [
    "b",
    "br",
    "c",
    "ch",
    "d",
    "dr",
    "f",
    "g",
    "gl",
    "h",
    "j",
    "k",
    "l",
    "m",
    "n",
    "p",
    "pr",
    "qu",
    "r",
    "s",
    "sh",
    "st",
    "t",
    "th",
    "tr",
    "v",
    "w",
    "z",
]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "ie"]
_CODAS = ["", "", "n", "r", "s", "t", "l", "m", "nd", "st", "x"]


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(rng.randint(1, 3)))


def words(rng: random.Random, length: int) -> str:
    out: list[str] = []
    size = 0
    while size < length:
        sentence = " ".join(_word(rng) for _ in range(rng.randint(4, 12)))
        sentence = sentence[0].upper() + sentence[1:] + rng.choice([".", ".", ".", "!", "?", ";"])
        out.append(sentence)
        size += len(sentence) + 1
    return " ".join(out)


def json_records(rng: random.Random, length: int) -> str:
    records: list[str] = []
    size = 0
    while size < length:
        record = {
            "id": rng.randint(1000, 99999),
            "name": _word(rng).title(),
            "tags": [_word(rng) for _ in range(rng.randint(0, 3))],
            "score": round(rng.uniform(-100, 100), rng.randint(0, 4)),
            "active": rng.random() < 0.5,
        }
        text = json.dumps(record, separators=(",", ":") if rng.random() < 0.5 else (", ", ": "))
        records.append(text)
        size += len(text) + 1
    return "\n".join(records)


def csv_rows(rng: random.Random, length: int) -> str:
    rows = ["id,name,city,amount,date"]
    size = len(rows[0])
    while size < length:
        row = ",".join(
            [
                str(rng.randint(1, 99999)),
                _word(rng).title(),
                f'"{_word(rng).title()}, {_word(rng).upper()[:2]}"' if rng.random() < 0.2 else _word(rng).title(),
                f"{rng.uniform(0, 10000):.2f}",
                f"20{rng.randint(10, 29)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            ]
        )
        rows.append(row)
        size += len(row) + 1
    return "\n".join(rows)


def codes(rng: random.Random, length: int) -> str:
    alphabet = string.ascii_uppercase + string.digits
    out: list[str] = []
    size = 0
    while size < length:
        groups = ["".join(rng.choice(alphabet) for _ in range(rng.randint(3, 6))) for _ in range(rng.randint(2, 4))]
        code = rng.choice("-_.:").join(groups)
        out.append(code)
        size += len(code) + 1
    return rng.choice([" ", "\n"]).join(out)


_GENERATORS = {"words": words, "json": json_records, "csv": csv_rows, "codes": codes}


def mixed(rng: random.Random, length: int) -> str:
    parts: list[str] = []
    size = 0
    while size < length:
        part = _GENERATORS[rng.choice(list(_GENERATORS))](rng, max(40, length // 4))
        parts.append(part)
        size += len(part) + 1
    return "\n".join(parts)


def generate(content_type: str, rng: random.Random, target_length: int, mean_fragment_length: int | None) -> str:
    """Text of exactly `target_length` chars; with fragments it is spliced from random slices of a larger pool."""
    make = mixed if content_type == "mixed" else _GENERATORS[content_type]
    if mean_fragment_length is None:
        return make(rng, target_length)[:target_length]
    pool = make(rng, max(4 * target_length, 2000))
    low, high = max(1, mean_fragment_length // 2), max(1, (3 * mean_fragment_length) // 2)
    pieces: list[str] = []
    size = 0
    while size < target_length:
        n = rng.randint(low, high)
        start = rng.randrange(0, max(1, len(pool) - n))
        pieces.append(pool[start : start + n])
        size += n
    return "".join(pieces)[:target_length]
