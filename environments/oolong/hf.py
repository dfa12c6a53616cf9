"""The online sources: oolongbench/oolong-synth and oolongbench/oolong-real (dnd) on Hugging Face."""

from __future__ import annotations

import ast
import itertools
import random
import re
from collections.abc import Iterable
from typing import Any

from environments.hf import load_dataset
from rlm_tui.env import EnvError, Example

from .score import parse_real

SYNTH, REAL, REAL_CONFIG = "oolongbench/oolong-synth", "oolongbench/oolong-real", "dnd"
BOX = "Give your final answer in \\boxed{}."


def load_rows(subset: str, split: str, context_len: int, wanted: int) -> list[dict[str, Any]]:
    """The first matching rows of a streamed split (the whole split is many gigabytes); `wanted` bounds the reading."""
    name = REAL if subset == "real" else SYNTH
    if subset == "real":
        rows = load_dataset(REAL, REAL_CONFIG, split=split, streaming=True)
    else:
        rows = (r for r in load_dataset(SYNTH, split=split, streaming=True) if r["context_len"] == context_len)
    try:  # streaming: the download happens while iterating
        return list(itertools.islice(rows, wanted))
    except Exception as exc:  # no network, no such split, a changed schema: one line either way
        raise EnvError(f"could not load {name} ({split}): {type(exc).__name__}: {exc}".splitlines()[0]) from None


def synth_gold(raw: Any) -> str:
    """Oolong-synth keeps answers as Python list literals: "[47]", "['spam']", "[datetime.date(2023, 1, 5)]"."""
    text = str(raw).strip()
    day = re.fullmatch(r"\[datetime\.date\((\d+), (\d+), (\d+)\)\]", text)
    if day:
        year, month, d = map(int, day.groups())
        return f"{month:02d}/{d:02d}/{year}"
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    if isinstance(value, (list, tuple)) and value:
        value = value[0]
    return str(value)


def answer_type(raw: Any) -> str:
    """ANSWER_TYPE.NUMERIC -> numeric."""
    return str(raw).rsplit(".", 1)[-1].lower() or "label"


def _pick(rows: list[dict[str, Any]], count: int, seed: int, what: str) -> list[dict[str, Any]]:
    if not rows:
        raise EnvError(f"no {what} rows to choose from")
    return random.Random(f"oolong-hf:{seed}").sample(rows, min(count, len(rows)))


def synth_examples(
    rows: Iterable[dict[str, Any]], subset: str, context_len: int, count: int, seed: int
) -> list[Example]:
    column = "context_window_text_with_labels" if subset == "synth_with_labels" else "context_window_text"
    matching = [r for r in rows if r.get("context_len") == context_len and r.get(column)]
    out = []
    for row in _pick(matching, count, seed, f"oolong-synth context_len={context_len}"):
        info = {
            "subset": subset,
            "context_len": context_len,
            "context_tokens": len(row[column]) // 4,
            "question_type": str(row.get("task", "")),
            "answer_type": answer_type(row.get("answer_type", "")),
            "dataset": row.get("dataset", ""),
            "task_group": row.get("task_group", ""),
            "source": "hf",
        }
        out.append(
            Example(
                id=f"ool-hf-{row['id']}",
                question=str(row["question"]),
                target=synth_gold(row["answer"]),
                context=row[column],
                info=info,
            )
        )
    return out


def real_examples(rows: Iterable[dict[str, Any]], count: int, seed: int) -> list[Example]:
    matching = [r for r in rows if r.get("context_window_text") and r.get("question")]
    out = []
    for row in _pick(matching, count, seed, "oolong-real (dnd)"):
        gold = str(row["answer"]).strip()
        kind = parse_real(gold)
        question = str(row["question"])
        info = {
            "subset": "real",
            "context_len": len(row["context_window_text"]) // 4,
            "context_tokens": len(row["context_window_text"]) // 4,
            "question_type": str(row.get("question_type", "")),
            "answer_type": "numeric" if isinstance(kind, int) else "list" if isinstance(kind, list) else "string",
            "dataset": "dnd",
            "source": "hf",
        }
        out.append(
            Example(
                id=f"ool-real-{row['id']}",
                question=question if "boxed" in question else f"{question}\n{BOX}",
                target=gold,
                context=row["context_window_text"],
                info=info,
            )
        )
    return out
