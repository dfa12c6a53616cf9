"""math-python's grading: math-verify's verdicts on hand-decided answers, the study's answer extraction, and the
worker processes: killed and replaced on a runaway answer, shared safely by threads and event loops, gone at exit."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from environments.math_python import grade
from rlm_tui.env import Example, load_environment

ROOT = Path(__file__).resolve().parent.parent
HANG = 120  # seconds: only a bound on a hang, never a measure
POWER_TOWER = r"\boxed{9^{9^{9^{9}}}}"  # sympy evaluates it: digits beyond any memory, in C code no signal reaches
NESTED = r"\boxed{" + "(" * 400 + "1" + ")" * 400 + "}"  # a giant expression for the LaTeX parser


@pytest.fixture
def grader():
    """A grader of its own with a one-second limit, closed after the test."""
    g = grade.Grader(workers=2, timeout=1.0)
    yield g
    g.close()


def score(response: str, gold: str):
    return load_environment("math-python").score(Example(id="x", question="q", target=gold), response)


# --- verdicts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "response, gold, reward",
    [
        (r"\boxed{1{,}000}", "1000", 1),  # a thousands separator in braces
        (r"\boxed{1,000}", "1000", 1),
        (r"\boxed{50\%}", "0.5", 1),  # math-verify reads 50\% as 50/100 ...
        (r"\boxed{50\%}", "50", 1),  # ... and also accepts the bare number of percent
        (r"\boxed{0.5}", r"50\%", 1),
        (r"\boxed{0.5}", r"\frac{1}{2}", 1),
        (r"\boxed{\dfrac{1}{2}}", "0.5", 1),
        (r"\boxed{\frac12}", r"\frac{1}{2}", 1),
        (r"The answer is $\boxed{\frac{\sqrt{3}}{2}}$.", r"\frac{\sqrt{3}}{2}", 1),
        (r"\boxed{2\sqrt{2}}", r"\sqrt{8}", 1),
        (r"\boxed{\pi/4}", r"\frac{\pi}{4}", 1),
        (r"\boxed{x = 12}", "12", 1),
        (r"\boxed{12 \text{ ways}}", "12", 1),
        (r"\boxed{(1, 2]}", "(1, 2]", 1),  # intervals
        (r"\boxed{(0, 1) \cup (2, 3)}", r"(2,3) \cup (0,1)", 1),
        (r"\boxed{[1, 2]}", "(1, 2]", 0),  # a closed end where the gold is open
        (r"\boxed{\{3, -2, 1\}}", r"\{-2, 1, 3\}", 1),  # sets, in any order
        (r"\boxed{x=1, x=3, x=-2}", r"\{-2, 1, 3\}", 1),
        (r"\boxed{\{1, 2\}}", r"\{-2, 1, 3\}", 0),
        (r"\boxed{(3, -\frac{1}{2})}", r"\left(3, - \frac{1}{2}\right)", 1),  # tuples, in order
        (r"\boxed{(-\frac{1}{2}, 3)}", r"\left(3, - \frac{1}{2}\right)", 0),
        (r"\boxed{3} no wait \boxed{4}", "4", 1),  # the last box counts
        (r"\boxed{0.33}", r"\frac{1}{3}", 0),
        (r"\boxed{13}", "12", 0),
        (r"\boxed{#$%@}", "12", 0),
    ],
)
def test_math_verify_decides(response, gold, reward):
    result = score(response, gold)
    assert result.reward == reward
    assert "grade_error" not in result.metrics and result.metrics["boxed"] == 1.0


@pytest.mark.parametrize(
    "response, gold, reward, reason",
    [
        ("12", "12", 1, ""),  # no box: the study grades the whole reply
        ("The answer is 12.", "12", 1, ""),
        ("The answer is 13.", "12", 0, ""),
        (r"\boxed{12", "12", 1, ""),  # a box that never closes is no box: the whole reply again
        (r"\boxed{}", "12", 0, "no answer"),
        ("", "12", 0, "no answer"),
        (r"<think>so \boxed{12}", "12", 0, "no answer"),  # an unfinished thought has no answer yet
        (r"<think>\boxed{13}</think> so \boxed{12}", "12", 1, ""),  # only what follows the thought counts
    ],
)
def test_answers_without_a_box(response, gold, reward, reason):
    result = score(response, gold)
    assert result.reward == reward
    assert result.metrics.get("grade_error", "") == reason


@pytest.mark.parametrize(
    "text, answer",
    [
        (r"a \boxed{1} b \boxed{\frac{1}{\sqrt{2}}} c", r"\frac{1}{\sqrt{2}}"),
        ("  no box  ", "no box"),
        (r"\boxed{a} \boxed{b", r"\boxed{a} \boxed{b"),  # the last box does not close: no box at all
        (r"<think>x</think>", ""),
        (r"<think>x", ""),
    ],
)
def test_extract_answer(text, answer):
    assert grade.extract_answer(text) == answer


def test_an_answer_too_long_is_not_parsed(grader):
    verdict = grader.check(r"\boxed{" + "1" * (grade.MAX_CHARS + 1) + "}", "1")
    assert verdict == grade.Verdict(False, f"the answer has more than {grade.MAX_CHARS:,} characters")


# --- the time limit ----------------------------------------------------------------------------


@pytest.mark.parametrize("hostile", [POWER_TOWER, NESTED], ids=["power-tower", "nested"])
def test_a_runaway_answer_is_killed_and_the_next_is_graded(grader, hostile):
    assert grader.check(r"\boxed{7}", "7") == grade.Verdict(True)
    (worker,) = grader._workers
    assert grader.check(hostile, "12") == grade.Verdict(False, "grading took longer than 1 s")
    assert worker.proc.returncode == -signal.SIGKILL  # killed by the host, not ended on its own
    assert grader.check(r"\boxed{12}", "12") == grade.Verdict(True)
    (replacement,) = grader._workers
    assert replacement is not worker and replacement.alive


async def test_the_engine_path_scores_a_runaway_answer_zero_with_the_reason():
    env = load_environment("math-python")
    example = Example(id="x", question="q", target="12")
    result = await env.score_async(example, POWER_TOWER)
    assert (result.reward, result.metrics["grade_error"]) == (0.0, f"grading took longer than {grade.TIMEOUT:g} s")
    assert (await env.score_async(example, r"\boxed{12}")).reward == 1.0


# --- threads, event loops, many at once --------------------------------------------------------


async def test_a_runaway_answer_blocks_neither_the_loop_nor_the_other_worker(grader):
    runaway = asyncio.ensure_future(grader.check_async(POWER_TOWER, "12"))
    quick = asyncio.ensure_future(grader.check_async(r"\boxed{\frac{1}{2}}", "0.5"))
    done, _ = await asyncio.wait({runaway, quick}, return_when=asyncio.FIRST_COMPLETED)
    assert done == {quick} and quick.result() == grade.Verdict(True)
    assert (await runaway).error == "grading took longer than 1 s"


async def test_sixty_four_answers_at_once_share_two_workers(grader):
    golds = [str(n) for n in range(64)]
    answers = [rf"\boxed{{{n if n % 3 else n + 1}}}" for n in range(64)]  # every third one is wrong
    verdicts = await asyncio.gather(*(grader.check_async(a, g) for a, g in zip(answers, golds)))
    assert [v.correct for v in verdicts] == [n % 3 != 0 for n in range(64)]
    assert all(v.error == "" for v in verdicts)
    assert 1 <= len(grader._workers) <= 2


def test_threads_and_event_loops_share_one_grader(grader):
    results: dict[str, grade.Verdict] = {}

    def in_a_thread(name: str, response: str) -> None:
        results[name] = grader.check(response, "1000")

    def a_loop_in_a_thread() -> None:
        results["loop"] = asyncio.run(grader.check_async(r"\boxed{1{,}000}", "1000"))

    threads = [
        threading.Thread(target=in_a_thread, args=("right", r"\boxed{10^3}")),
        threading.Thread(target=in_a_thread, args=("wrong", r"\boxed{999}")),
        threading.Thread(target=a_loop_in_a_thread),
    ]
    for t in threads:
        t.start()
    results["main"] = grader.check(r"\boxed{1000}", "1000")
    for t in threads:
        t.join(HANG)
    assert results == {
        "right": grade.Verdict(True),
        "wrong": grade.Verdict(False),
        "loop": grade.Verdict(True),
        "main": grade.Verdict(True),
    }


# --- a worker that misbehaves ------------------------------------------------------------------


@pytest.mark.parametrize(
    "script, reason",
    [
        ("print('not json')", "the grading worker answered out of protocol"),
        ("print('[1, 2]')", "the grading worker answered out of protocol"),
        ("print('{\"ready\": false}')", "the grading worker answered out of protocol"),
        ("print('x' * 10000)", "the grading worker answered out of protocol"),
        (
            "print('{\"ready\": true}', flush=True); import sys; sys.stdin.readline(); print('{\"correct\": 1}')",
            "the grading worker answered out of protocol",
        ),
        ("import sys; sys.exit(3)", "the grading worker exited with code 3"),
    ],
)
def test_a_worker_out_of_protocol_fails_the_answer_not_the_grader(grader, monkeypatch, tmp_path, script, reason):
    bad = tmp_path / "worker.py"
    bad.write_text(script + "\n")
    monkeypatch.setattr(grade, "WORKER", bad)
    assert grader.check(r"\boxed{1}", "1") == grade.Verdict(False, reason)
    monkeypatch.undo()
    assert grader.check(r"\boxed{1}", "1") == grade.Verdict(True)  # a real worker replaced the bad one


# --- start-up and exit -------------------------------------------------------------------------


def run_python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=HANG
    )


def test_importing_the_environment_loads_no_grading_library():
    done = run_python("""
        import sys
        import environments.math_python
        from rlm_tui.env import load_environment
        print(sorted({m.split(".")[0] for m in sys.modules} & {"sympy", "math_verify", "latex2sympy2_extended"}))
        load_environment("math-python").examples(5, seed=0)  # the problems' own code uses sympy: grading is apart
        print("math_verify" in sys.modules, "environments.math_python.grade" in sys.modules)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "False False"]


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
def test_the_workers_are_gone_when_the_process_exits(busy):
    done = run_python(f"""
        import json
        from environments.math_python import grade
        g = grade.grader()
        assert g.check(r"\\boxed{{2}}", "2").correct
        (worker,) = g._workers
        print(worker.proc.pid, flush=True)
        if {busy}:  # the process ends while its worker computes a power tower
            job = json.dumps({{"answer": "9^{{9^{{9^{{9}}}}}}", "gold": "1", "limit": 60}}) + "\\n"
            worker.proc.stdin.write(job.encode())
            worker.proc.stdin.flush()
    """)
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.split()[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
