"""Scoring: the DeepDive authors' LLM judge, normalised exact or alias match offline, and search redundancy."""

from __future__ import annotations

import itertools
import json
import re
import string
import unicodedata
from typing import Any

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation + "‘’“”–—…"})

# The judge prompt of the DeepDive authors' reward server (THUDM/DeepDive training/reward_server/launch_server.py).
JUDGE_PROMPT = """You are judging a DeepDive deep-search agent answer.

Question:
{question}

Reference answer:
{answer}

Agent response:
{response}

Decide whether the response answers the question correctly. Be strict about
entity identity, dates, and numeric values, but accept equivalent wording.

Return exactly:
Correct: yes/no
Extracted final answer: <short answer>
Reason: <one sentence>
"""
_VERDICT = re.compile(r"(?i)correct\s*:\s*(yes|no)")  # the authors' server reads the first "Correct: yes/no"


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
    """The authors' template filled in; like their server, the reference is the one labelled answer."""
    return JUDGE_PROMPT.format(question=question, answer=answers(target)[0], response=response)


def verdict(text: str) -> bool:
    """The judge's "Correct: yes/no"; a reply without one raises ValueError (it judged nothing)."""
    found = _VERDICT.search(text)
    if found is None:
        shown = " ".join(text.split())
        raise ValueError(f"the judge's reply has no 'Correct: yes/no': {shown[:200]!r}")
    return found.group(1).lower() == "yes"
