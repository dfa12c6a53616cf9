"""Offline Oolong-synth: dated, per-user records of labelled instances, and aggregation questions over them."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from .sources import COMPILED, DESCRIPTIONS

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
START = date(2021, 1, 1)
QUESTION_TYPES = (
    "count",
    "most_common",
    "least_common",
    "compare",
    "user_most",
    "user_label_most",
    "users_count",
    "range_count",
    "range_most_common",
    "date_most",
)
ANSWER_TYPES = {
    "count": "numeric",
    "users_count": "numeric",
    "range_count": "numeric",
    "most_common": "label",
    "least_common": "label",
    "range_most_common": "label",
    "compare": "comparison",
    "user_most": "user",
    "user_label_most": "user",
    "date_most": "date",
}
BATCH = 4096  # records drawn at once: rng.choices is much faster per item in bulk


@dataclass(frozen=True)
class Records:
    days: list[int]  # days after START
    users: list[int]
    labels: list[str]
    lines: list[str]  # as they appear in the context


def day_text(day: int) -> str:
    d = START + timedelta(days=day)
    return f"{MONTHS[d.month - 1]} {d.day:02d}, {d.year}"


def make_records(rng: random.Random, dataset: str, budget: int, with_labels: bool) -> Records:
    """Records whose lines (each plus a newline) fill at most `budget` characters."""
    templates = COMPILED[dataset]
    labels = list(templates)
    estimate = max(1, budget // 90)
    span = min(1095, max(60, estimate // 2))
    user_ids = rng.sample(range(10000, 100000), min(3000, max(6, estimate // 5)))
    label_weights = [0.2 + rng.random() for _ in labels]
    user_weights = [1 / (rank + 1) ** 0.7 for rank in range(len(user_ids))]  # a few busy users, many quiet ones
    dates = [day_text(d) for d in range(span)]
    out = Records([], [], [], [])
    size = 0
    while True:
        batch = zip(
            rng.choices(range(span), k=BATCH),
            rng.choices(user_ids, user_weights, k=BATCH),
            rng.choices(labels, label_weights, k=BATCH),
        )
        for day, user, label in batch:
            fmt, pools, _ = rng.choice(templates[label])
            text = fmt.format(*[pool[int(rng.random() * len(pool))] for pool in pools])
            line = f"Date: {dates[day]} || User: {user} || Instance: {text}"
            if with_labels:
                line += f" || Label: {label}"
            size += len(line) + 1
            if size > budget:
                return out
            out.days.append(day)
            out.users.append(user)
            out.labels.append(label)
            out.lines.append(line)


def header(dataset: str, count: int, with_labels: bool) -> str:
    what, meaning = DESCRIPTIONS[dataset]
    shown = ", an instance and its label" if with_labels else " and an instance"
    return (
        f"The following lines contain {count} {what}, one per line. Each line has a date, a user ID{shown}. Each "
        f"instance's label is {meaning}, one of: {', '.join(COMPILED[dataset])}."
    )


def _unique_top(counter: Counter, lowest: bool = False) -> Any:
    ranked = sorted(counter.items(), key=lambda kv: kv[1], reverse=not lowest)
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


def _mmddyyyy(day: int) -> str:
    d = START + timedelta(days=day)
    return f"{d.month:02d}/{d.day:02d}/{d.year}"


def make_question(rng: random.Random, dataset: str, records: Records, qtype: str) -> tuple[str, str, dict] | None:
    """(question, gold, spec) for one question type, or None when its answer would not be unique."""
    labels = list(COMPILED[dataset])
    label, other = rng.sample(labels, 2)
    spec: dict[str, Any] = {"qtype": qtype, "labels": labels, "label": label, "other": other, "key": "label"}
    scope, chosen = "In the data, ", range(len(records.lines))
    if qtype == "users_count":
        top = [u for u, _ in Counter(records.users).most_common(30)]
        spec["users"] = sorted(rng.sample(top, min(len(top), rng.randint(3, 8))))
        ids = ", ".join(map(str, spec["users"]))
        scope = f"Only consider the instances from the users with IDs {ids}. Among these instances, "
        chosen = [i for i, u in enumerate(records.users) if u in set(spec["users"])]
    elif qtype.startswith("range_"):
        span = max(records.days) + 1
        first = rng.randrange(0, max(1, span // 2))
        last = min(span - 1, first + rng.randint(span // 5, span // 2))
        spec["start"], spec["end"] = day_text(first), day_text(last)
        scope = (
            f"Only consider the instances dated between {spec['start']} and {spec['end']}, inclusive. Among these "
            "instances, "
        )
        chosen = [i for i, d in enumerate(records.days) if first <= d <= last]
    counts = Counter(records.labels[i] for i in chosen)
    form_label = (
        f"Give your final answer in the form 'Label: answer', where answer is one of the labels: {', '.join(labels)}."
    )
    if qtype in ("count", "users_count", "range_count"):
        gold = str(counts[label])
        ask = (
            f"how many instances should be classified as label '{label}'? Give your final answer in the form "
            "'Answer: number'."
        )
    elif qtype in ("most_common", "range_most_common", "least_common"):
        gold = _unique_top(Counter({lab: counts[lab] for lab in labels}), lowest=qtype == "least_common")
        ask = f"which of the labels is the {'least' if qtype == 'least_common' else 'most'} common? {form_label}"
    elif qtype == "compare":
        a, b = counts[label], counts[other]
        gold = "more common than" if a > b else "less common than" if a < b else "same frequency as"
        ask = (
            f"is label '{label}' more common, less common, or the same frequency as label '{other}'? Give your final "
            f"answer in the form 'Answer: {label} is [X] {other}', where [X] is 'more common than', 'less common "
            "than', or 'same frequency as'."
        )
    elif qtype in ("user_most", "user_label_most"):
        spec["key"] = "user"
        only = label if qtype == "user_label_most" else None
        spec["only_label"] = only
        gold = _unique_top(Counter(u for u, lab in zip(records.users, records.labels) if only in (None, lab)))
        what = f"has the most instances with the label '{label}'" if only else "is represented most often"
        ask = f"which user {what}? Give your final answer in the form 'User: [X]', where [X] is the user ID."
    else:  # date_most
        spec["key"] = "date"
        top = _unique_top(Counter(records.days))
        gold = None if top is None else _mmddyyyy(top)
        ask = (
            "which date is represented most often? Give your final answer in the form 'Date: [X]', where [X] is "
            "the date in the format MM/DD/YYYY."
        )
    if gold is None:
        return None
    return scope + ask, str(gold), spec
