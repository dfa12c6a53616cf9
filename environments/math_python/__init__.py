"""math-python: exact-answer math problems solved with Python, answered in \\boxed{}."""

from __future__ import annotations

import inspect
import random
from dataclasses import dataclass
from typing import Any

from environments.boxed import last_boxed
from rlm_tui.env import NUM_EXAMPLES, Environment, Example, Judge, Knob, Score, Slice, choice, tips_knob

from .. import study_tips
from . import hf
from .generate import DIFFICULTIES, generate, to_latex
from .problems import TOPICS

BOX = hf.BOX
DETAILED_TIPS = (
    "Do every calculation in Python, not in your head. sympy is installed (Rational, solve, integrate, limit, "
    "summation, factorint, binomial), and fractions.Fraction keeps probabilities exact. Check the result a second "
    "way (substitute it back, brute-force a small case, or compute it by another method) before you write "
    "answer['content'] = '\\\\boxed{...}' with the exact answer and set answer['ready'] = True."
)
TIPS = {
    "default": study_tips.MATH_PYTHON,
    "sub_llms": study_tips.MATH_PYTHON_SUB_LLMS,
    "detailed": study_tips.wrapped(DETAILED_TIPS),
    "detailed_sub_llms": study_tips.wrapped(
        DETAILED_TIPS + " Sub-LLMs can check your work independently: give llm_batch a few prompts, each with the "
        "problem and the step or final answer to check, and compare their verdicts with your own result before you "
        "finish."
    ),
}


@dataclass(frozen=True)
class MathExample(Example):
    code: str = ""  # Python that computes the answer (offline problems); the scripted model runs it


def _topics(raw: str) -> tuple[str, ...]:
    # "+" joins topics too, since a comma list in `rlm-tui ablate --env-arg` sweeps a knob instead
    names = tuple(dict.fromkeys(t.strip() for t in raw.replace("+", ",").split(",") if t.strip()))
    if names == ("all",):
        return tuple(TOPICS)
    bad = [t for t in names if t not in TOPICS]
    if bad or not names:
        raise ValueError(f"choose all or a comma list of {', '.join(TOPICS)}")
    return names


class MathPython(Environment):
    name = "math-python"
    knobs = (
        NUM_EXAMPLES,
        Knob("topics", "all", f"all, or a comma (or +) list of {', '.join(TOPICS)}", _topics),
        Knob("difficulty", "all", "easy|medium|hard, or all (a mix)", choice(*DIFFICULTIES, "all")),
        tips_knob(TIPS),
        Knob(
            "source",
            "offline",
            "offline (generated problems) or hf (PrimeIntellect/INTELLECT-3-RL, math)",
            choice("offline", "hf"),
        ),
    )
    tip_variants = TIPS
    python_tool_in_llm_mode = True
    report_slices = (
        Slice("timeout (s)", lambda row: row.timeout),
        Slice("cell timeout (s)", lambda row: row.timeout, table=False, figure="math_python_reward_by_timeout"),
        Slice(
            "cell timeout (s)",
            lambda row: row.timeout,
            table=False,
            figure="math_python_sub_calls_by_timeout",
            measure=lambda row: row.m("sub_llm_call_count"),
            ylabel="sub-LLM calls per rollout",
        ),
    )

    def __init__(self, **args: str) -> None:
        super().__init__(**args)
        if self.args["topics"] == "all":  # the default, unparsed
            self.args["topics"] = tuple(TOPICS)

    @property
    def data_note(self) -> str:
        if self.args["source"] == "hf":
            return ""
        return "offline stand-in for the study's math problems: generated problems, not the real data"

    def examples(self, n: int, seed: int) -> list[Example]:
        count = self.args["num_examples"] or n
        if self.args["source"] == "hf":
            return hf.to_examples(hf.load_rows(), count, seed, self.args["difficulty"])
        rng = random.Random(f"math-python:{seed}")
        topics, seen, out = self.args["topics"], set(), []
        for i in range(count):
            topic = topics[i % len(topics)]
            level = self.args["difficulty"]
            if level == "all":
                level = DIFFICULTIES[(i // len(topics)) % len(DIFFICULTIES)]
            for _ in range(50):  # a template with few numbers to draw can repeat itself
                problem = generate(rng, topic, level)
                if problem.question not in seen:
                    break
            seen.add(problem.question)
            info = {"topic": topic, "difficulty": level, "template": problem.template, "source": "offline"}
            out.append(
                MathExample(
                    id=f"mp-{seed}-{i}",
                    question=f"{problem.question}\n\n{BOX}",
                    target=problem.answer,
                    info=info,
                    code=problem.code,
                )
            )
        return out

    def score(self, example: Example, answer: str) -> Score:
        from .grade import grader, to_score  # the worker's pipes and threads: only scoring needs them

        return to_score(answer, grader().check(answer, str(example.target)))

    async def score_async(
        self, example: Example, answer: str, rollout: Any = None, judge: Judge | None = None
    ) -> Score:
        from .grade import grader, to_score

        return to_score(answer, await grader().check_async(answer, str(example.target)))

    # --- the scripted model ---------------------------------------------------------------------

    def scripted_cells(self, example: Example, mode: str) -> list[str]:
        code = getattr(example, "code", "")
        if not code:  # an online problem: the stand-in model cannot solve it, it only asks and answers
            return [
                f"problem = {example.question!r}\nprint(problem)",
                "replies = llm_batch([problem + '\\nGive only the final answer in \\\\boxed{}.'] * 3)\n"
                "print(replies)\nanswer['content'] = replies[0]",
                "answer['ready'] = True",
            ]
        return [
            f"{code}\nprint(result)",
            f"{inspect.getsource(to_latex)}\n"
            "answer['content'] = '\\\\boxed{' + to_latex(result) + '}'\nprint(answer['content'])",
            f"problem = {example.question!r}\n"
            "checks = llm_batch([\n"
            '    f\'{problem}\\nProposed answer: {answer["content"]}\\nSolve it yourself and give only your final '
            "answer in \\\\boxed{{}}.',\n"
            '    f\'{problem}\\nProposed answer: {answer["content"]}\\nIs the answer in the exact form the problem '
            "asks for? Reply OK or say what to change.',\n"
            '    f\'{problem}\\nProposed answer: {answer["content"]}\\nEstimate the answer roughly: is the '
            "proposed one plausible?',\n"
            "])\n"
            "for c in checks:\n    print('-', c)",
            "agree = sum(answer['content'] in c for c in checks)\n"
            "print(f'{agree} of {len(checks)} checks repeat the answer')\nanswer['ready'] = True",
        ]

    def scripted_sub_reply(self, prompt: str) -> str:
        line = prompt.split("Proposed answer:")[-1].split("\n")[0] if "Proposed answer:" in prompt else ""
        proposed = last_boxed(line)
        if proposed is None:
            return "I cannot solve this one reliably."
        if "Solve it yourself" in prompt:
            return f"Working it through again I get \\boxed{{{proposed}}}."
        if "exact form" in prompt:
            return "OK: it is exact and in the requested form."
        return f"Plausible: a rough estimate agrees with \\boxed{{{proposed}}}."

    def scripted_llm_turn(self, example: Example, messages: list[dict[str, Any]]) -> tuple[str, list[tuple[str, dict]]]:
        code = getattr(example, "code", "")
        results = [m["content"] for m in messages if m["role"] == "tool"]
        if code and not results:
            program = f"{code}\n{inspect.getsource(to_latex)}\nprint('\\\\boxed{{' + to_latex(result) + '}}')"
            return "Let me compute this exactly in Python.", [("python", {"code": program})]
        boxed = last_boxed(results[-1]) if results else None
        if boxed is None:
            return "I could not compute this offline, so this is a guess: \\boxed{0}", []
        return f"Python gives the exact value, so the answer is $\\boxed{{{boxed}}}$.", []


ENVIRONMENT = MathPython
