"""The one interface every environment implements, and the registry that finds them."""

from __future__ import annotations

import importlib
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

MODES = ("rlm", "rlm-tips", "llm")
MAX_EXAMPLES = 100_000  # rollouts in one run, and examples an environment is asked for
MAX_KNOB_CHARS = 1000  # a knob's raw value: names, lists and URLs, never data
SEED_RANGE = (-(2**63), 2**63 - 1)


class EnvError(Exception):
    """A user-facing problem with an environment or its knobs; the message is one line."""


@dataclass(frozen=True)
class Example:
    id: str
    question: str  # what the model is asked; always in the prompt
    target: Any  # the gold answer
    context: Any = None  # extra input data: in the prompt in llm mode, only in the REPL otherwise
    info: dict[str, Any] = field(default_factory=dict)  # fields to slice results by


@dataclass(frozen=True)
class Tool:
    """A tool a sub-LLM (or the root model in llm mode) may call."""

    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments
    run: Callable[..., Awaitable[str]]

    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass(frozen=True)
class Score:
    reward: float
    metrics: dict[str, float | str] = field(default_factory=dict)  # a str labels (e.g. which judge scored)


class Judge(Protocol):
    """An LLM judge the engine lends a scorer, so that no environment builds a model client of its own."""

    model: str | None  # the run's sub model, a scorer's default judge; None when the run is offline (scripted)

    async def __call__(self, model: str, prompt: str, *, base_url: str | None = None) -> str:
        """The reply of `model` to one user message `prompt`, at `base_url` (else the engine's default endpoint)."""
        ...


@dataclass(frozen=True)
class Slice:
    """One breakdown of an environment's rollouts in `rlm-tui report`: a table, a figure, or both.

    `group` and `measure` receive a report row: `row.info` (the example's info), `row.timeout` (the run's cell
    timeout), `row.reward`, and `row.m(name)` (a metric, 0 when absent)."""

    label: str  # what the groups are ("content type"): the table's column, the figure's axis
    group: Callable[[Any], Any]  # a row's group; None leaves the row out
    table: bool = True  # print the mean reward per group and mode as "<env>: reward by <label>"
    figure: str | None = None  # with --out, write the measure per group and mode as <figure>.png and .svg
    measure: Callable[[Any], float] | None = None  # the figure's measure; None is the reward
    ylabel: str = "mean reward"  # the figure's name for the measure


def info_value(name: str) -> Callable[[Any], Any]:
    """A Slice group: the info field `name`, "none" when it is empty, and rows without it left out."""
    return lambda row: (row.info[name] or "none") if name in row.info else None


def power_of_two_bin(n: Any) -> int | None:
    """Sizes (context lengths) into power-of-two bins; None for what is not a positive number."""
    try:
        n = int(n)
    except (TypeError, ValueError):
        return None
    return 2 ** round(math.log2(n)) if n > 0 else None


@dataclass(frozen=True)
class Knob:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str


def between(low: int, high: int) -> Callable[[str], int]:
    """A knob parser: a whole number from `low` to `high`."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"expected a whole number from {low:,} to {high:,}") from None
        if not low <= value <= high:
            raise ValueError(f"must be from {low:,} to {high:,}")
        return value

    return parse


def seed(raw: str) -> int:
    """A knob parser: a seed, any 64-bit signed whole number."""
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not SEED_RANGE[0] <= value <= SEED_RANGE[1]:
        raise ValueError(f"expected a 64-bit whole number, from {SEED_RANGE[0]} to {SEED_RANGE[1]}")
    return value


def http_url(raw: str) -> str:
    """A parser for an endpoint: an http:// or https:// URL with a host."""
    from urllib.parse import urlsplit

    if not raw.strip():
        raise ValueError("must not be empty")
    try:
        parts = urlsplit(raw.strip())
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL, got {raw!r}")
    return raw.strip()


def choice(*options: str) -> Callable[[str], str]:
    """A knob parser that accepts one of `options`."""

    def parse(raw: str) -> str:
        if raw not in options:
            raise ValueError(f"choose one of {', '.join(options)}")
        return raw

    return parse


NUM_EXAMPLES = Knob("num_examples", None, "how many examples (default: -n)", between(1, MAX_EXAMPLES))


def tips_knob(variants: dict[str, str]) -> Knob:
    """The `tips` knob: which text `rlm-tips` appends to the user prompt; the first, the study's, is the default."""
    names = list(variants)
    return Knob("tips", names[0], f"the rlm-tips text: {', '.join(names)} (default: the study's)", choice(*names))


class Environment:
    """Base class: subclasses set `name`, `knobs`, `tip_variants`, `report_slices` and implement the methods below."""

    name: str = ""
    knobs: tuple[Knob, ...] = ()
    tip_variants: ClassVar[dict[str, str]] = {}  # the `tips` knob's texts by name; the first is the default
    report_slices: tuple[Slice, ...] = ()  # how `rlm-tui report` breaks this environment's results down

    @property
    def data_note(self) -> str:
        """Empty when the examples are the real data, else one short line saying what they are (a generated stand-in)."""
        return ""

    def __init__(self, **args: str) -> None:
        known = {k.name: k for k in self.knobs}
        unknown = sorted(set(args) - set(known))
        if unknown:
            names = ", ".join(known) or "none"
            raise EnvError(f"{self.name} has no knob {unknown[0]!r}; its knobs are: {names}")
        self.args: dict[str, Any] = {}
        for knob in self.knobs:
            raw = args.get(knob.name)
            if raw is not None and len(raw) > MAX_KNOB_CHARS:
                raise EnvError(
                    f"the value of {self.name} knob {knob.name} has {len(raw):,} characters; "
                    f"at most {MAX_KNOB_CHARS:,} characters"
                )
            try:
                self.args[knob.name] = knob.default if raw is None else knob.parse(raw)
            except (TypeError, ValueError) as exc:
                raise EnvError(f"bad value {raw!r} for {self.name} knob {knob.name}: {exc}") from None

    def examples(self, n: int, seed: int) -> list[Example]:
        raise NotImplementedError

    @property
    def tips(self) -> str:
        """The text `rlm-tips` appends to the user prompt: the `tips` knob's choice, else the first variant."""
        chosen = self.args.get("tips")
        return self.tip_variants.get(chosen, "") if chosen else next(iter(self.tip_variants.values()), "")

    def user_prompt(self, example: Example, mode: str) -> str:
        """The user message; in llm mode it carries the context, in the RLM modes only the question, and in
        rlm-tips the question with the tips appended, as the study placed them."""
        if mode == "llm" and example.context is not None:
            return f"{example.question}\n\n<context>\n{example.context}\n</context>"
        return example.question + (self.tips if mode == "rlm-tips" else "")

    def sub_tools(self) -> list[Tool]:
        return []

    def llm_tools(self) -> list[Tool]:
        """Tools the root model calls directly in llm mode; by default the sub-LLMs' tools."""
        return self.sub_tools()

    def score(self, example: Example, answer: str) -> Score:
        raise NotImplementedError

    async def score_async(
        self, example: Example, answer: str, rollout: Any = None, judge: Judge | None = None
    ) -> Score:
        """What the engine calls: override for a scorer that awaits (an LLM `judge`, passed in by the engine) or
        reads the rollout's folded state (`rlm_tui.state.RolloutState`, e.g. its tool calls); by default `score`."""
        return self.score(example, answer)

    python_tool_in_llm_mode: bool = False  # in llm mode, give the root a `python` tool that runs in the sandbox

    # --- the offline scripted model plays these ------------------------------------------------

    def scripted_cells(self, example: Example, mode: str) -> list[str]:
        """Code cells the scripted root model runs, one per turn, in the RLM modes."""
        return ['answer["content"] = ""\nanswer["ready"] = True']

    def scripted_text(self, example: Example) -> str:
        """The scripted root model's final reply in llm mode."""
        return ""

    def scripted_sub_reply(self, prompt: str) -> str:
        """The scripted sub-LLM's reply to one prompt."""
        return ""

    def scripted_sub_turn(self, messages: list[dict[str, Any]]) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        """One scripted sub-LLM model call: (text, tool calls as (name, arguments)); a sub-LLM with tools
        sees its earlier tool results in `messages`. By default a single reply to the first prompt."""
        return self.scripted_sub_reply(messages[0]["content"] or ""), []

    def scripted_llm_turn(
        self, example: Example, messages: list[dict[str, Any]]
    ) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        """One scripted root call in llm mode, where the root may call tools directly; by default the final text."""
        return self.scripted_text(example), []


MAX_DATA_NOTE_CHARS = 200


def recorded_data_note(config: Any) -> str:
    """The data note a run recorded in its config, as one printable line; "" when absent or not a string."""
    note = config.get("data_note") if isinstance(config, dict) else None
    if not isinstance(note, str):
        return ""
    note = " ".join(note.split())
    return note if len(note) <= MAX_DATA_NOTE_CHARS else note[: MAX_DATA_NOTE_CHARS - 1] + "…"


ENVIRONMENTS = {
    "verbatim-copy": "environments.verbatim_copy",
    "deepdive": "environments.deepdive",
    "math-python": "environments.math_python",
    "oolong": "environments.oolong",
}


def environment_class(name: str) -> type[Environment]:
    module_name = ENVIRONMENTS.get(name)
    if module_name is None:
        raise EnvError(f"unknown environment {name!r}; choose one of: {', '.join(ENVIRONMENTS)}")
    return importlib.import_module(module_name).ENVIRONMENT


def load_environment(name: str, args: dict[str, str] | None = None) -> Environment:
    return environment_class(name)(**(args or {}))
