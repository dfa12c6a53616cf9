"""Oolong's official scoring rules: synth answers after the last colon, real answers in \\boxed{}; partial credit for numbers.

The rules are those of the benchmark's own harness, abertsch72/oolong src/eval/eval_helpers.py
(synth_attempt_answer_parse, synth_process_response, dnd_parse_answer, dnd_parse_response, dnd_process_response).
"""

from __future__ import annotations

import re
from datetime import datetime

PHRASES = ("more common", "less common", "same frequency")
SHORT = 20  # characters: a shorter synth candidate is taken as it is
BOXED_TEXT = re.compile(r"\\boxed\{\\text\{([^}]*)\}\}")
BOXED = re.compile(r"\\boxed\{+([^}]*)\}+")


def candidate(answer: str) -> str:
    """The part of a synth answer that is scored (synth_attempt_answer_parse)."""
    if ":" not in answer:  # a short answer whole, a long one its last word; no markup is removed
        return answer if len(answer) < SHORT else (answer.split() or [""])[-1]
    text = answer.split(":")[-1].strip().replace("*", "").replace("[", "").replace("]", "")
    if len(text) >= SHORT:  # a long comparison sentence counts as the phrase it contains
        return next((phrase for phrase in PHRASES if phrase in text), text)
    return text


def _partial(gold: int, got: int) -> float:
    """0.75 ** |error|; an error too large for a float is no credit (its limit) rather than a crash."""
    try:
        return 0.75 ** abs(gold - got)
    except OverflowError:
        return 0.0


def synth_gold(gold: str, answer_type: str) -> str | datetime:
    """The gold as the harness compares it: a date gold is a datetime at midnight, every other gold its text."""
    if answer_type == "date":
        try:
            return datetime.strptime(gold, "%m/%d/%Y")
        except ValueError:
            return gold
    return gold


def score_synth(answer: str, gold: str, answer_type: str) -> float:
    """1 for the exact (case-sensitive) gold or its comparison phrase, 0.75 ** |error| for numbers, 1 for the date."""
    got, target = candidate(answer), synth_gold(gold, answer_type)
    if got == str(target):
        return 1.0
    if got in PHRASES:
        return float(got in str(target))
    if answer_type == "numeric":
        try:
            return _partial(int(gold), int(got))
        except ValueError:
            return 0.0
    if answer_type == "date":
        import dateutil.parser  # lazily: only date questions need it

        try:  # the harness's parser fills a missing day, month or year from today, as it does there
            return float(dateutil.parser.parse(got) == target)
        except (ValueError, OverflowError):
            return 0.0
    return 0.0


def parse_real(text: str) -> int | str | list[str]:
    """An integer, a comma list, or the text itself, as Oolong-real reads a gold or a boxed answer (dnd_parse_answer)."""
    try:
        return int(text)
    except ValueError:
        pass
    if "," in text:
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


def real_candidate(answer: str) -> int | str | list[str]:
    """The first \\boxed{\\text{...}} or else the first \\boxed{...}, parsed; an unboxed answer stays its raw text."""
    match = BOXED_TEXT.search(answer) or BOXED.search(answer)
    return parse_real(match.group(1)) if match else answer


def score_real(answer: str, gold: str) -> float:
    """Integers 0.75 ** |error|, strings case-insensitively, lists by the share of gold items found; else 0."""
    got, target = real_candidate(answer), parse_real(gold)
    if isinstance(target, int) and isinstance(got, int):
        return _partial(target, got)
    if isinstance(target, str) and isinstance(got, str):
        return float(target.strip().lower() == got.strip().lower())
    if isinstance(target, list) and isinstance(got, list):
        return len(set(target) & set(got)) / len(target) if target else 0.0
    return 0.0
