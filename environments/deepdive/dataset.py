"""The DeepDive QA data (zai-org/DeepDive, split qa_rl) as examples, with a fixed held-out eval split."""

from __future__ import annotations

import random
import re
from functools import lru_cache
from typing import Any

from environments.hf import load_dataset
from rlm_tui.env import Example

DATASET, SPLIT = "zai-org/DeepDive", "qa_rl"


def question_type(answer: str) -> str:
    if re.fullmatch(r"\d{3,4}", answer):
        return "year"
    return "number" if re.fullmatch(r"[-+]?[\d,]*\.?\d+\s*%?", answer) else "entity"


def row_to_example(row: dict[str, Any], split: str) -> Example:
    answer = str(row["answer"]).strip()
    return Example(
        id=f"deepdive-{row['id']}",
        question=str(row["question"]).strip(),
        target={"answer": answer, "aliases": []},
        info={"source": "online", "hops": None, "question_type": question_type(answer), "split": split},
    )


def examples_from_rows(rows: list[dict[str, Any]], n: int, seed: int, split: str, eval_size: int) -> list[Example]:
    """`n` examples of one split; the partition never depends on `seed`, only the order drawn from it does."""
    usable = sorted(
        (r for r in rows if str(r.get("question") or "").strip() and str(r.get("answer") or "").strip()),
        key=lambda r: str(r["id"]),
    )
    random.Random("deepdive-eval-split").shuffle(usable)
    chosen = usable[:eval_size] if split == "eval" else usable[eval_size:]
    random.Random(f"deepdive-online:{seed}").shuffle(chosen)
    return [row_to_example(r, split) for r in chosen[:n]]


@lru_cache(maxsize=1)
def load_rows() -> list[dict[str, Any]]:
    data = load_dataset(DATASET, split=SPLIT)
    return [{"id": r["id"], "question": r["question"], "answer": r["answer"]} for r in data]
