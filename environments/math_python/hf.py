"""The online source: the math subset of PrimeIntellect/INTELLECT-3-RL on Hugging Face."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from environments.hf import load_dataset
from rlm_tui.env import EnvError, Example

DATASET, CONFIG, SPLIT = "PrimeIntellect/INTELLECT-3-RL", "math", "train"
SOLVE_RATE = "avg@8_qwen3_4b_instruct_2507"  # share of 8 samples a small model solved: our difficulty
BOX = "Put your final answer in \\boxed{}."


def load_rows() -> list[dict[str, Any]]:
    return list(load_dataset(DATASET, CONFIG, split=SPLIT))


def difficulty_of(rate: Any) -> str:
    if not isinstance(rate, (int, float)):
        return "unknown"
    return "easy" if rate >= 2 / 3 else "medium" if rate >= 1 / 3 else "hard"


def to_examples(rows: Iterable[dict[str, Any]], count: int, seed: int, difficulty: str) -> list[Example]:
    """Rows with a question and an answer, of the wanted difficulty, `count` of them picked by `seed`."""
    picked = []
    for index, row in enumerate(rows):
        question, answer = str(row.get("question") or "").strip(), str(row.get("answer") or "").strip()
        level = difficulty_of(row.get(SOLVE_RATE))
        if question and answer and difficulty in ("all", level):
            picked.append((index, question, answer, level, row.get(SOLVE_RATE)))
    if not picked:
        raise EnvError(f"{DATASET} has no {difficulty} math rows with a question and an answer")
    chosen = random.Random(f"math-python-hf:{seed}").sample(picked, min(count, len(picked)))
    out = []
    for index, question, answer, level, rate in chosen:
        prompt = question if "boxed" in question else f"{question}\n\n{BOX}"
        info = {"topic": "hf", "difficulty": level, "template": "hf", "source": "hf", "row": index, "solve_rate": rate}
        out.append(Example(id=f"mp-hf-{index}", question=prompt, target=answer, info=info))
    return out
