"""The online sources: oolongbench/oolong-synth and oolongbench/oolong-real (dnd) on Hugging Face."""

from __future__ import annotations

import ast
import random
import re
from collections.abc import Iterable, Sequence
from typing import Any

from environments.hf import load_dataset
from rlm_tui.env import EnvError, Example

from .score import parse_real

SYNTH, REAL, REAL_CONFIG = "oolongbench/oolong-synth", "oolongbench/oolong-real", "dnd"
BOX = "Give your final answer in \\boxed{}."


def load_split(subset: str, split: str) -> Any:
    """The whole split as a `datasets.Dataset`, downloaded once into the Hugging Face cache and memory-mapped."""
    if subset == "real":
        return load_dataset(REAL, REAL_CONFIG, split=split)
    return load_dataset(SYNTH, split=split)


def sample(candidates: Sequence[int], count: int, seed: int, what: str = "matching") -> list[int]:
    """A uniform random sample of the candidate rows, the same for one seed in every mode and setting; a larger
    count only adds rows (the study's `shuffle(seed)` then the first n)."""
    if not candidates:
        raise EnvError(f"no {what} rows to choose from")
    order = list(candidates)
    random.Random(f"oolong-hf:{seed}").shuffle(order)
    return order[:count]


def load_examples(subset: str, split: str, context_len: int, count: int, seed: int) -> list[Example]:
    """`count` examples drawn uniformly from the split (the data is sorted by size, so its head is no sample)."""
    data = load_split(subset, split)
    name = REAL if subset == "real" else SYNTH
    try:
        if subset == "real":
            candidates: Sequence[int] = range(len(data))
        else:  # reading one column of the memory-mapped split is cheap; the rows' texts are read only when drawn
            candidates = [i for i, n in enumerate(data["context_len"]) if n == context_len]
        what = f"{name} ({split})" + ("" if subset == "real" else f" context_len={context_len}")
        rows = [data[i] for i in sample(candidates, count, seed, what)]
    except (KeyError, TypeError, ValueError) as exc:  # a changed schema: one line
        raise EnvError(f"could not read {name} ({split}): {type(exc).__name__}: {exc}".splitlines()[0]) from None
    if subset == "real":
        return real_examples(rows)
    return synth_examples(rows, subset, context_len)


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


def _text(row: dict[str, Any], column: str, name: str) -> str:
    value = row.get(column)
    if not isinstance(value, str) or not value:
        raise EnvError(f"{name} row {str(row.get('id'))[:40]!r}: {column} is not a non-empty text")
    return value


def synth_examples(rows: Iterable[dict[str, Any]], subset: str, context_len: int) -> list[Example]:
    column = "context_window_text_with_labels" if subset == "synth_with_labels" else "context_window_text"
    out = []
    for row in rows:
        context = _text(row, column, SYNTH)
        info = {
            "subset": subset,
            "context_len": context_len,
            "context_tokens": len(context) // 4,
            "question_type": str(row.get("task", "")),
            "answer_type": answer_type(row.get("answer_type", "")),
            "dataset": str(row.get("dataset", "")),
            "task_group": str(row.get("task_group", "")),
            "source": "hf",
        }
        out.append(
            Example(
                id=f"ool-hf-{row.get('id')}",
                question=_text(row, "question", SYNTH),
                target=synth_gold(row.get("answer")),
                context=context,
                info=info,
            )
        )
    return out


def real_examples(rows: Iterable[dict[str, Any]]) -> list[Example]:
    out = []
    for row in rows:
        context, question = _text(row, "context_window_text", REAL), _text(row, "question", REAL)
        gold = str(row.get("answer")).strip()
        kind = parse_real(gold)
        info = {
            "subset": "real",
            "context_len": len(context) // 4,
            "context_tokens": len(context) // 4,
            "question_type": str(row.get("question_type", "")),
            "answer_type": "numeric" if isinstance(kind, int) else "list" if isinstance(kind, list) else "string",
            "dataset": "dnd",
            "source": "hf",
        }
        out.append(
            Example(
                id=f"ool-real-{row.get('id')}",
                question=question if "boxed" in question else f"{question}\n{BOX}",
                target=gold,
                context=context,
                info=info,
            )
        )
    return out
