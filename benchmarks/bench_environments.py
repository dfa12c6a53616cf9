"""Generating oolong's largest contexts and grading math-python's answers, each beside a floor measured in the same run."""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import subprocess
import sys
import time

from rlm_tui.env import load_environment
from table import row

CONTEXT_LEN = 4_194_304  # tokens, oolong's largest
REPEATS = 3
ANSWERS = 200  # math-python answers graded, one per offline problem


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


# math-verify called directly in a fresh process, as cold as a new worker: seconds per answer after one warm-up
MATH_FLOOR = """
import json, logging, sys, time
from math_verify import parse, verify
logging.disable(logging.WARNING)
answers = json.loads(sys.stdin.read())
verify(parse("\\\\boxed{1}", parsing_timeout=None), parse("\\\\boxed{1}", parsing_timeout=None), timeout_seconds=None)
t0 = time.perf_counter()
for answer, gold in answers:
    g, a = parse("\\\\boxed{" + gold + "}", parsing_timeout=None), parse("\\\\boxed{" + answer + "}", parsing_timeout=None)
    assert verify(g, a, timeout_seconds=None)
each = (time.perf_counter() - t0) / len(answers)
t0 = time.perf_counter()
for _ in range(len(answers)):  # one answer again and again: math-verify's cache leaves little but the call
    g, a = parse("\\\\boxed{0.5}", parsing_timeout=None), parse("\\\\boxed{\\\\frac{1}{2}}", parsing_timeout=None)
    assert verify(g, a, timeout_seconds=None)
print(each, (time.perf_counter() - t0) / len(answers))
"""


def math_answers() -> list[tuple[str, str]]:
    """(reply, gold) of every offline problem, the reply boxing the gold with its spaces taken out."""
    examples = load_environment("math-python").examples(ANSWERS, seed=0)
    return [(f"so \\boxed{{{e.target.replace(' ', '')}}}", e.target) for e in examples]


def math_floor(answers: list[tuple[str, str]]) -> tuple[float, float]:
    """Seconds per answer of math-verify called directly: (every answer once, one answer again and again)."""
    from environments.math_python.grade import extract_answer

    plain = json.dumps([(extract_answer(reply), gold) for reply, gold in answers])
    done = subprocess.run([sys.executable, "-P", "-c", MATH_FLOOR], input=plain, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    each, again = done.stdout.split()
    return float(each), float(again)


def math_graded(answers: list[tuple[str, str]]) -> tuple[float, float, float]:
    """Seconds of the first answer (it starts the worker), then per answer: every answer once, one again and again."""
    from environments.math_python.grade import Grader

    grader = Grader(workers=1)
    t0 = time.perf_counter()
    assert grader.check("\\boxed{1}", "1").correct
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert all(grader.check(reply, gold).correct for reply, gold in answers)
    each = (time.perf_counter() - t0) / len(answers)
    t0 = time.perf_counter()
    assert all(grader.check("\\boxed{\\frac{1}{2}}", "0.5").correct for _ in answers)
    again = (time.perf_counter() - t0) / len(answers)
    grader.close()
    return first, each, again


def math_at_once(answers: list[tuple[str, str]]) -> float:
    """Wall seconds per answer of every answer graded at once (as by a run of 64 rollouts and more) by warm workers."""
    from environments.math_python.grade import WORKERS, Grader

    grader = Grader()

    async def graded() -> float:
        await asyncio.gather(*(grader.check_async("\\boxed{1}", "1") for _ in range(WORKERS)))  # every worker up
        t0 = time.perf_counter()
        verdicts = await asyncio.gather(*(grader.check_async(reply, gold) for reply, gold in answers))
        assert all(v.correct for v in verdicts)
        return (time.perf_counter() - t0) / len(answers)

    try:
        return asyncio.run(graded())
    finally:
        grader.close()


def math_grading() -> None:
    answers = math_answers()
    floors, graded, bare_import = [], [], []
    for _ in range(REPEATS):  # interleaved, so that a busy machine weighs on both alike
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-P", "-c", "import math_verify"], check=True)
        bare_import.append(time.perf_counter() - t0)
        floors.append(math_floor(answers))
        graded.append(math_graded(answers))
    floor_ms, again_floor_ms = (statistics.median(f[i] for f in floors) * 1e3 for i in (0, 1))
    firsts, each, again = ([g[i] for g in graded] for i in (0, 1, 2))
    row(
        "math-python first answer (starts a worker)",
        statistics.median(firsts),
        "s",
        floor=statistics.median(bare_import),
        floor_name="python -c 'import math_verify'",
    )
    row(
        f"math-python answer, warm worker ({ANSWERS} answers)",
        statistics.median(each) * 1e3,
        "ms",
        floor=floor_ms,
        floor_name="math-verify called directly",
        max_ratio=1.3,
    )
    row(
        "math-python answer, one answer again (math-verify cached)",
        statistics.median(again) * 1e3,
        "ms",
        floor=again_floor_ms,
        floor_name="math-verify called directly",
        max_value=5,
        note="the worker's round trip: a pipe each way",
    )
    row(
        f"math-python answer, all {ANSWERS} at once (wall / answer)",
        statistics.median(math_at_once(answers) for _ in range(REPEATS)) * 1e3,
        "ms",
        floor=floor_ms,
        floor_name="math-verify called directly, one by one",
        note="workers share the machine's cores",
    )


def main() -> None:
    math_grading()
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
