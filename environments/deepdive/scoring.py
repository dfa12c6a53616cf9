"""Scoring: normalised exact or alias match, an optional LLM judge, and the search-redundancy metric."""

from __future__ import annotations

import itertools
import json
import re
import string
import unicodedata
from typing import Any

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation + "‘’“”–—…"})

JUDGE_PROMPT = """You are grading the response to a question against the ground-truth answer.

Question: {question}
Ground truth: {answer}
Response: {response}

Does the response give the same answer as the ground truth? Spelling variants, aliases and extra detail are fine; \
a different or missing answer is not. Reply with one word: yes or no."""


def normalise(text: str) -> str:
    """Lowercase, strip accents, punctuation and articles, collapse spaces."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answers(target: Any) -> list[str]:
    """The accepted answers of a target: {"answer", "aliases"} or a bare string."""
    if isinstance(target, dict):
        return [str(target["answer"]), *map(str, target.get("aliases") or ())]
    return [str(target)]


def matches(target: Any, response: str) -> bool:
    got = normalise(response)
    return bool(got) and any(got == normalise(a) for a in answers(target))


def search_queries(rollout: Any) -> list[str]:
    """Every `search` query of a rollout: sub-LLMs' tool calls, and the root's own in llm mode."""
    queries = []
    for batch in getattr(rollout, "batches", ()):
        for call in batch.calls:
            queries += [str(t.arguments.get("query", "")) for t in call.tools if t.name == "search"]
    for turn in getattr(rollout, "turns", ()):
        for call in turn.tool_calls:
            if call.get("name") == "search":
                try:
                    queries.append(str(json.loads(call.get("arguments") or "{}").get("query", "")))
                except (ValueError, AttributeError):
                    pass  # a malformed call never ran, so it searched nothing
    return queries


def redundancy(queries: list[str]) -> float:
    """Mean pairwise Jaccard similarity of the queries' lowercase word sets; 0 with fewer than two."""
    sets = [set(re.findall(r"\w+", q.lower())) for q in queries]
    pairs = list(itertools.combinations(sets, 2))
    if not pairs:
        return 0.0
    return sum(len(a & b) / len(a | b) if a | b else 1.0 for a, b in pairs) / len(pairs)


def judge_prompt(question: str, target: Any, response: str) -> str:
    accepted = answers(target)
    answer = accepted[0] + (f" (also accepted: {', '.join(accepted[1:])})" if accepted[1:] else "")
    return JUDGE_PROMPT.format(question=question, answer=answer, response=response)


def verdict(text: str) -> bool:
    words = re.findall(r"[a-z]+", text.lower())
    return bool(words) and words[0] == "yes"
