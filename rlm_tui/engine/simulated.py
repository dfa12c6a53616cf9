"""How the simulated model slips, from what it is shown and a seeded RNG: its window, copy errors, mistaken cells,
failing sub-LLMs."""

from __future__ import annotations

import ast
import builtins
import hashlib
import json
import keyword
import math
import random
import re
import string
from dataclasses import dataclass, replace
from typing import Any

from rlm_tui.env import Example

LABEL = "simulated model"  # what a report or summary calls the `scripted` model
CHARS_PER_TOKEN = 4  # how the simulated model measures a prompt against its window
DEFAULT_WINDOW = 32_000  # tokens: a small real model's context
COPY_ERROR_RATE = 0.0005  # character errors per character of a final reply in llm mode: one per 2,000
CELL_SLIP_RATE = {"rlm": 0.2, "rlm-tips": 0.1}  # chance a cell is first written with a mistake; tips name the plan
SUB_FAILURE_RATE = 0.05  # chance a sub-LLM's final reply comes back empty or garbled
GARBLE_RATE = 0.2  # character errors per character of a garbled sub-LLM reply
TYPOS = string.ascii_lowercase
ERROR_LINE = re.compile(r"^\w*(?:Error|Exception)\b.*$", re.M)


@dataclass(frozen=True)
class Simulation:
    """The simulated model's knobs: the run seed, its context window, and one scale on every slip rate."""

    seed: int = 0
    window: int = DEFAULT_WINDOW  # tokens it can read in llm mode
    errors: float = 1.0  # 0: a model that never slips; 2: twice as sloppy (rates are capped at 1)

    @classmethod
    def recorded(cls, seed: int, knobs: Any) -> Simulation:
        """The simulation a stored run recorded (untrusted: what is not a number in range keeps its default)."""
        knobs = knobs if isinstance(knobs, dict) else {}
        window, errors = knobs.get("window"), knobs.get("errors")
        return cls(
            seed=seed,
            window=window
            if isinstance(window, int) and not isinstance(window, bool) and window > 0
            else DEFAULT_WINDOW,
            errors=float(errors)
            if isinstance(errors, (int, float)) and not isinstance(errors, bool) and 0 <= errors <= 100
            else 1.0,
        )

    def rng(self, *parts: Any) -> random.Random:
        """A generator for one decision, from the seed and what the decision is about: order never matters."""
        return random.Random(":".join(["simulated", str(self.seed), *map(str, parts)]))

    def rate(self, base: float) -> float:
        return min(1.0, base * self.errors)


def prompt_chars(messages: list[dict[str, Any]]) -> int:
    return sum(len(m.get("content") or "") for m in messages)


def fit_window(example: Example, messages: list[dict[str, Any]], window: int) -> tuple[Example, bool]:
    """The example as far as a model with a `window`-token context reads its prompt: the head, cut where it is
    full (the question comes before the context in the prompt). True when something was cut."""
    over = prompt_chars(messages) - window * CHARS_PER_TOKEN
    if over <= 0:
        return example, False
    context = example.context if isinstance(example.context, str) else ""
    from_context = min(over, len(context))
    question = example.question[: max(0, len(example.question) - (over - from_context))]
    if isinstance(example.context, str):
        return replace(example, question=question, context=context[: len(context) - from_context]), True
    return replace(example, question=question), True


def copy_with_errors(text: str, rng: random.Random, rate: float) -> str:
    """`text` with round(len * rate) character errors, rounded up or down at random so that the mean is exact;
    each error substitutes a different letter for a character or drops it."""
    count = min(len(text), math.floor(len(text) * rate + rng.random()))
    if count == 0:
        return text
    out = list(text)
    for i in rng.sample(range(len(text)), count):
        if rng.random() < 0.5:
            out[i] = ""
        else:
            out[i] = rng.choice([c for c in TYPOS if c != text[i]])
    return "".join(out)


def sub_failure(text: str, rng: random.Random, rate: float) -> str:
    """A sub-LLM's final reply, or with probability `rate` an empty or a garbled one."""
    if rng.random() >= rate:
        return text
    return "" if rng.random() < 0.5 or not text else copy_with_errors(text, rng, GARBLE_RATE)


def prompt_digest(messages: list[dict[str, Any]]) -> str:
    contents = json.dumps([m.get("content") or "" for m in messages])
    return hashlib.sha256(contents.encode()).hexdigest()[:16]


def error_line(output: str) -> str | None:
    """The last "SomethingError: ..." line of a cell's output, as a model would read it off a traceback."""
    found = ERROR_LINE.findall(output)
    return found[-1].strip() if found else None


def _typo(name: str, rng: random.Random, taken: set[str]) -> str | None:
    """A misspelling of `name` that names nothing the cell or the builtins define."""
    for _ in range(20):
        i = rng.randrange(len(name))
        kind = rng.choice(("drop", "swap", "double")) if len(name) > 2 else "double"
        if kind == "drop":
            new = name[:i] + name[i + 1 :]
        elif kind == "swap" and i + 1 < len(name):
            new = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
        else:
            new = name[: i + 1] + name[i:]
        if new != name and new.isidentifier() and not keyword.iskeyword(new) and new not in taken:
            return new
    return None


class _Reads(ast.NodeVisitor):
    """The names a cell reads as it runs, leaving out function and lambda bodies, which run later if at all."""

    def __init__(self) -> None:
        self.reads: list[ast.Name] = []
        self.names: set[str] = set()

    def visit_Name(self, node: ast.Name) -> None:
        self.names.add(node.id)
        if isinstance(node.ctx, ast.Load):
            self.reads.append(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):  # `x += 1` reads x before it writes it
            self.reads.append(node.target)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self.names.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name))

    visit_AsyncFunctionDef = visit_Lambda = visit_FunctionDef


def slip(code: str, rng: random.Random) -> str | None:
    """`code` with one mistake that makes it raise before it does anything that a re-run would not redo: the first
    name it reads misspelt (NameError), or its last closing bracket dropped (SyntaxError). None: no such mistake."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    if rng.random() < 0.5 and code.rstrip().endswith((")", "]")):
        end = code.rstrip()
        return end[:-1] + code[len(end) :]
    reads = _Reads()
    reads.visit(tree)
    if not reads.reads:
        return None
    first = min(reads.reads, key=lambda n: (n.lineno, n.col_offset))
    lines = code.splitlines(keepends=True)
    line = lines[first.lineno - 1]
    col = len(line.encode()[: first.col_offset].decode(errors="replace"))  # ast counts UTF-8 bytes
    typo = _typo(first.id, rng, reads.names | set(dir(builtins)))
    if line[col : col + len(first.id)] != first.id or typo is None:
        return None
    lines[first.lineno - 1] = line[:col] + typo + line[col + len(first.id) :]
    return "".join(lines)
