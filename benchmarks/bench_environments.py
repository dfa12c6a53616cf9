"""Generating oolong's largest contexts, each beside a floor measured in the same run."""

from __future__ import annotations

import random
import statistics
import time

from rlm_tui.env import load_environment
from table import row

CONTEXT_LEN = 4_194_304  # tokens, oolong's largest
REPEATS = 3


def generate(subset: str) -> tuple[float, str]:
    env = load_environment("oolong", {"subset": subset, "context_len": str(CONTEXT_LEN)})
    t0 = time.perf_counter()
    (example,) = env.examples(1, 0)
    return time.perf_counter() - t0, example.context


def floor(context: str) -> float:
    """The least any generator does: as many random lines of the same mean length, formatted and joined."""
    lines = context.count("\n") + 1
    width = max(1, len(context) // lines - 40)
    rng = random.Random(0)
    t0 = time.perf_counter()
    text = "\n".join(
        f"Date: {rng.randrange(10**6):06d} || User: {rng.randrange(10**6)} || Instance: {'w' * width}"
        for _ in range(lines)
    )
    elapsed = time.perf_counter() - t0
    assert len(text) > 0.5 * len(context)
    return elapsed


def main() -> None:
    for subset in ("synth", "real"):
        runs = [generate(subset) for _ in range(REPEATS)]
        seconds = statistics.median(t for t, _ in runs)
        context = runs[0][1]
        base = statistics.median(floor(context) for _ in range(REPEATS))
        row(
            f"oolong {subset} context of {CONTEXT_LEN:,} tokens ({len(context):,} chars)",
            seconds,
            "s",
            floor=base,
            floor_name="random lines, joined",
        )


if __name__ == "__main__":
    main()
