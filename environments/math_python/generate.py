"""Deterministic math problems: a template by topic and difficulty, its code run here for the exact answer."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .problems import TOPICS

DIFFICULTIES = ("easy", "medium", "hard")


@dataclass(frozen=True)
class Problem:
    topic: str
    difficulty: str
    template: str
    question: str
    code: str  # Python that sets `result`; the same code runs in the sandbox in the scripted strategy
    answer: str  # LaTeX of the computed result


def to_latex(value):
    """LaTeX of an answer: a number or expression, a tuple as (a, b), a set as \\{a, b\\}."""
    from sympy import latex, sympify

    if isinstance(value, tuple):
        return "\\left(" + ", ".join(to_latex(v) for v in value) + "\\right)"
    if isinstance(value, (set, frozenset)):
        return "\\{" + ", ".join(to_latex(v) for v in sorted(value, key=lambda v: float(sympify(v)))) + "\\}"
    return latex(sympify(value))


def compute(code: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # our own template code, never a model's
    return namespace["result"]


def generate(rng: random.Random, topic: str, difficulty: str) -> Problem:
    template = rng.choice(TOPICS[topic])
    question, code = template(rng, DIFFICULTIES.index(difficulty))
    return Problem(
        topic=topic,
        difficulty=difficulty,
        template=template.__name__,
        question=question,
        code=code,
        answer=to_latex(compute(code)),
    )
