"""The scripted strategy's pieces: what a sub-LLM is asked per chunk, the stand-in sub's reply, and the final answer."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from . import real
from .sources import classify

RECORD = re.compile(r"^Date: (.+?) \|\| User: (\d+) \|\| Instance: (.*?)(?: \|\| Label: (.+))?$")
MONTHS = {
    m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)
}
REAL_TASK = (
    "For each player (not the DM), count the lines where they announce a dice roll result, and how many of "
    'those are a natural 20. Reply with only a JSON object: {"rolls": {player: count}, "nat20": {player: '
    "count}}."
)


def _sortable(day: str) -> tuple[int, int, int]:
    month, rest = day.split(" ", 1)
    d, y = rest.split(", ")
    return int(y), MONTHS[month], int(d)


def sub_task(spec: dict[str, Any]) -> str:
    """The instruction for one chunk of records: which records count, and what to count them by."""
    if "name" in spec:
        return REAL_TASK
    parts = []
    if spec.get("users"):
        parts.append(f"Only count records whose user ID is one of: {', '.join(map(str, spec['users']))}.")
    if spec.get("start"):
        parts.append(f"Only count records dated from {spec['start']} to {spec['end']}, inclusive.")
    if spec.get("only_label"):
        parts.append(f"Only count records whose label is '{spec['only_label']}'.")
    key = {"label": "label", "user": "user ID", "date": "date (as written)"}[spec["key"]]
    parts.append(f"Count the records per {key} and reply with only a JSON object mapping each {key} to its count.")
    return " ".join(parts)


def count_records(lines: list[str], task: str) -> dict[str, int]:
    """What a careful reader would count in these record lines, following the task sentence."""
    users = re.search(r"user ID is one of: ([\d, ]+)\.", task)
    wanted = set(users.group(1).replace(" ", "").split(",")) if users else None
    dates = re.search(r"dated from (\w{3} \d{2}, \d{4}) to (\w{3} \d{2}, \d{4})", task)
    only = re.search(r"whose label is '([^']+)'", task)
    key = "user" if "per user ID" in task else "date" if "per date" in task else "label"
    counts: Counter = Counter()
    for line in lines:
        match = RECORD.match(line.strip())
        if not match:
            continue
        day, user, instance, label = match.groups()
        label = label or classify(instance) or "unknown"
        if wanted is not None and user not in wanted:
            continue
        if dates and not _sortable(dates.group(1)) <= _sortable(day) <= _sortable(dates.group(2)):
            continue
        if only and label != only.group(1):
            continue
        counts[{"user": user, "date": day, "label": label}[key]] += 1
    return dict(counts)


def sub_reply(prompt: str) -> str:
    """The stand-in sub-LLM: reads the chunk between <records> tags and counts as its instruction says."""
    match = re.search(r"<records>\n?(.*?)</records>", prompt, re.S)
    lines = match.group(1).splitlines() if match else []
    if REAL_TASK in prompt:
        rolls, nat20 = real.tally(lines)
        return json.dumps({"rolls": dict(rolls), "nat20": {k: v for k, v in nat20.items() if v}})
    return json.dumps(count_records(lines, prompt))


def decide(spec, counts):
    """The answer from the summed counts, for each kind of question."""
    q = spec["qtype"]
    if q in ("count", "users_count", "range_count"):
        return str(counts.get(spec["label"], 0))
    labels = spec.get("labels") or list(counts) or [""]
    if q in ("most_common", "range_most_common"):
        return max(labels, key=lambda label: counts.get(label, 0))
    if q == "least_common":
        return min(labels, key=lambda label: counts.get(label, 0))
    if q == "compare":
        a, b = counts.get(spec["label"], 0), counts.get(spec["other"], 0)
        return "more common than" if a > b else "less common than" if a < b else "same frequency as"
    if q in ("user_most", "user_label_most", "most_rolls"):
        return max(counts, key=counts.get) if counts else ""
    if q == "date_most":
        month, day, year = max(counts, key=counts.get).replace(",", "").split()
        months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        return f"{months.index(month) + 1:02d}/{day}/{year}"
    if q == "total_rolls":
        return str(sum(counts.values()))
    if q == "rolls_by":
        return str(counts.get(spec["name"], 0))
    return ", ".join(sorted(k for k, v in counts.items() if v))  # nat20_players: counts holds the natural 20s


def present(spec, value):
    """The answer in the form the question asks for."""
    q = spec["qtype"]
    if "name" in spec:
        return "\\boxed{" + value + "}"
    if q == "compare":
        return f"Answer: {spec['label']} is {value} {spec['other']}"
    if q in ("user_most", "user_label_most"):
        return f"User: {value}"
    if q == "date_most":
        return f"Date: {value}"
    if q in ("most_common", "least_common", "range_most_common"):
        return f"Label: {value}"
    return f"Answer: {value}"
