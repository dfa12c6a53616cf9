"""Offline stand-in for Oolong-real: game-session transcripts where players announce dice rolls, and questions on them."""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any

PLAYERS = ["Laura", "Sam", "Travis", "Marisha", "Liam", "Taliesin", "Ashley", "Robbie"]
QUESTION_TYPES = ("total_rolls", "rolls_by", "most_rolls", "nat20_players")
ANSWER_TYPES = {"total_rolls": "numeric", "rolls_by": "numeric", "most_rolls": "string", "nat20_players": "list"}
ANSWER_FORMS = {
    "total_rolls": "a number",
    "rolls_by": "a number",
    "most_rolls": "a player's name",
    "nat20_players": "the players' names separated by commas",
}
POOLS = {
    "check": ["perception", "stealth", "athletics", "insight", "arcana", "investigation", "persuasion", "initiative"],
    "monster": ["goblin", "owlbear", "wraith", "troll", "giant spider", "cultist", "wyvern"],
    "place": ["tavern", "crypt", "market", "old mill", "sewer", "watchtower", "forest clearing"],
    "weapon": ["longsword", "crossbow", "dagger", "warhammer", "rapier", "quarterstaff"],
    "spell": ["Fire Bolt", "Healing Word", "Shield", "Misty Step", "Thunderwave", "Hex"],
    "object": ["map", "strange coin", "locked chest", "letter", "statue"],
}
DM_LINES = [
    "Roll for {check}.",
    "Make a {check} check.",
    "The {monster} lunges at you.",
    "You enter the {place}.",
    "The {monster} falls to the ground.",
    "Roll initiative, everyone.",
    "What do you do?",
]
CHATTER = [
    "I draw my {weapon}.",
    "Can I take a closer look at the {object}?",
    "Let's head to the {place}.",
    "I cast {spell} on the {monster}.",
    "I hide behind the {object}.",
    "Wait, where is the {object}?",
]
ROLLS = ["That's a {n}.", "I got {n} on that.", "{n} for {check}.", "Rolled a {n}."]
NAT20 = "Natural 20!"
LINE = re.compile(r"^([A-Z][A-Za-z]+): (.*)$")


def _fill(rng: random.Random, template: str) -> str:
    return re.sub(
        r"\{(\w+)\}",
        lambda m: str(rng.randint(2, 19)) if m.group(1) == "n" else rng.choice(POOLS[m.group(1)]),
        template,
    )


def is_roll(speaker: str, text: str) -> bool:
    """A player's line with a number or a natural 20 announces a roll; the DM's lines never do."""
    return speaker != "DM" and (text == NAT20 or bool(re.search(r"\d", text)))


def make_transcript(rng: random.Random, budget: int) -> tuple[list[str], list[str]]:
    """(lines, players): a few episodes of play filling at most `budget` characters."""
    players = rng.sample(PLAYERS, rng.randint(4, 6))
    weights = [0.5 + rng.random() for _ in players]
    lines, size, episode, turns = [], 0, 0, 0
    while True:
        if turns == 0:
            episode += 1
            turns = rng.randint(80, 400)
            line = f"=== Episode {episode} ==="
        elif rng.random() < 0.3:
            line = f"DM: {_fill(rng, rng.choice(DM_LINES))}"
        else:
            player = rng.choices(players, weights)[0]
            kind = rng.random()
            pool = ROLLS if kind < 0.45 else CHATTER
            text = NAT20 if kind < 0.03 else _fill(rng, rng.choice(pool))
            line = f"{player}: {text}"
        turns -= 1
        size += len(line) + 1
        if size > budget:
            return lines, players
        lines.append(line)


def tally(lines: list[str]) -> tuple[Counter, Counter]:
    """Rolls and natural 20s per player."""
    rolls, nat20 = Counter(), Counter()
    for line in lines:
        match = LINE.match(line)
        if match and is_roll(*match.groups()):
            rolls[match.group(1)] += 1
            nat20[match.group(1)] += match.group(2) == NAT20
    return rolls, nat20


def make_question(rng: random.Random, lines: list[str], players: list[str], qtype: str) -> tuple[str, str, dict] | None:
    rolls, nat20 = tally(lines)
    name = rng.choice(players)
    spec: dict[str, Any] = {"qtype": qtype, "name": name, "players": players}
    if qtype == "total_rolls":
        ask, gold = (
            "How many dice rolls did the players announce in total, across all episodes?",
            str(sum(rolls.values())),
        )
    elif qtype == "rolls_by":
        ask, gold = f"How many dice rolls did {name} announce across all episodes?", str(rolls[name])
    elif qtype == "most_rolls":
        ranked = rolls.most_common(2)
        if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
            return None
        ask, gold = "Which player announced the most dice rolls across all episodes?", ranked[0][0]
    else:
        lucky = sorted(p for p in players if nat20[p])
        if not lucky:
            return None
        ask, gold = "Which players rolled a natural 20 at least once?", ", ".join(lucky)
    form = ANSWER_FORMS[qtype]
    return f"{ask} Give your final answer as {form} in \\boxed{{}}.", gold, spec


def header(players: list[str]) -> str:
    return (
        f"The following is the transcript of a tabletop role-playing campaign played by {', '.join(players)} with "
        "a dungeon master (DM), one line per utterance. Players announce the results of their dice rolls aloud."
    )
