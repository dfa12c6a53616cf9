"""Oolong's scoring rules: synth answers after the last colon, real answers in \\boxed{}; partial credit for numbers."""

from __future__ import annotations

import re
from datetime import date, datetime

from environments.boxed import last_boxed

PHRASES = ("more common", "less common", "same frequency")
DATE_FORMATS = ("%m/%d/%Y", "%Y-%m-%d", "%b %d, %Y", "%B %d, %Y", "%d %B %Y", "%b %d %Y", "%B %d %Y")


def candidate(answer: str) -> str:
    """The part of a synth answer that is scored: after the last colon (or a short whole answer), without markup."""
    text = answer.strip()
    if ":" in text:
        text = text.rsplit(":", 1)[1]
    elif len(text) >= 20:
        text = (text.split() or [""])[-1]  # a long answer without a colon: its last word
    text = re.sub(r"[*\[\]\"'`]", "", text).strip().rstrip(".").strip()
    for phrase in PHRASES:
        if phrase in text.lower():
            return phrase
    return text


def parse_date(text: str) -> date | None:
    text = text.strip().rstrip(".")
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def _integer(text: str) -> int | None:
    text = text.replace(",", "").strip()
    return int(text) if re.fullmatch(r"-?\d+", text) else None


def score_synth(answer: str, gold: str, answer_type: str) -> float:
    """1 for an exact (case-insensitive) match or the right comparison phrase; 0.75 ** |error| for numbers."""
    got = candidate(answer)
    if got.lower() == gold.strip().lower():
        return 1.0
    if got in PHRASES:
        return float(got in gold.lower())
    if answer_type == "numeric":
        value, target = _integer(got), _integer(gold)
        return 0.75 ** abs(target - value) if value is not None and target is not None else 0.0
    if answer_type == "date":
        value, target = parse_date(got), parse_date(gold)
        return float(value is not None and value == target)
    return 0.0


def parse_real(text: str) -> int | str | list[str]:
    """An integer, a comma list, or a string, as Oolong-real reads its answers."""
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if "," in text:
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


def score_real(answer: str, gold: str) -> float:
    """Integers 0.75 ** |error|, strings case-insensitively, lists by the share of gold items found."""
    boxed = last_boxed(answer)
    got, target = parse_real(answer if boxed is None else boxed), parse_real(gold)
    if isinstance(target, int) and isinstance(got, int):
        return 0.75 ** abs(target - got)
    if isinstance(target, str) and isinstance(got, str):
        return float(bool(target) and target.lower() == got.lower())
    if isinstance(target, list) and isinstance(got, list):
        return len(set(target) & set(got)) / len(target)
    return 0.0
