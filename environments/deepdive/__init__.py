"""deepdive: multi-hop questions answered with web search, online (Serper) or in a generated offline world."""

from __future__ import annotations

import os
from typing import Any

from rlm_tui.env import (
    EnvError,
    Environment,
    Example,
    Judge,
    Knob,
    Score,
    Slice,
    Tool,
    between,
    choice,
    http_url,
    seed,
    tips_knob,
)

from .. import study_tips
from . import scripted
from .dataset import examples_from_rows, load_rows
from .index import offline_web, world_of
from .questions import make_questions
from .scoring import judge_prompt, matches, redundancy, search_queries, verdict
from .tools import format_hits, make_tools

SOURCES = ("auto", "offline", "online")
TIPS = {
    "default": study_tips.DEEPDIVE,
    "detailed": study_tips.wrapped(
        "The question chains several facts. Decompose it into sub-questions, one per hop, and research them with "
        "llm_batch: sub-LLMs can search and open pages, so give each a focused prompt and run independent prompts "
        "in parallel (for example the same hop phrased two ways). Cross-check what they return, follow the chain "
        "hop by hop, and iterate where answers disagree or come back empty. Write the answer into "
        "answer['content'], print it, correct it to just the answer, then set answer['ready'] = True."
    ),
}
OFFLINE_JUDGE = "exact match (offline)"  # the scorer's label when no LLM judges: the run's model is the scripted one


def hop_range(raw: str) -> tuple[int, int]:
    low, dash, high = raw.partition("-")
    if dash and not high:
        raise ValueError("give N or N-M with 1 <= N <= M <= 6")
    span = (int(low), int(high or low))
    if not 1 <= span[0] <= span[1] <= 6:
        raise ValueError("give N or N-M with 1 <= N <= M <= 6")
    return span


def _hops(raw: str) -> str:
    hop_range(raw)
    return raw


class DeepDive(Environment):
    name = "deepdive"
    knobs = (
        Knob(
            "source",
            "auto",
            "offline (a generated world), online (DeepDive data, Serper, the live web), "
            "or auto: online when SERPER_API_KEY is set",
            choice(*SOURCES),
        ),
        Knob("num_entities", 2000, "offline: entities (and pages) in the generated world", between(100, 200_000)),
        Knob("world_seed", 0, "offline: which generated world", seed),
        Knob("hops", "2-4", "offline: hops per question, N or N-M", _hops),
        Knob("results", 5, "search results shown per query", between(1, 20)),
        Knob(
            "judge_model",
            "",
            "the LLM judge (the DeepDive authors' prompt); default: the sub model, or exact match offline; "
            "none: exact match",
        ),
        Knob("judge_base_url", "", "the judge's OpenAI-compatible endpoint (default: the run's)", http_url),
        Knob("split", "eval", "online: eval (held out) or train", choice("eval", "train")),
        Knob("eval_size", 200, "online: questions held out for the eval split", between(1, 2000)),
        tips_knob(TIPS),
    )
    tip_variants = TIPS
    report_slices = (
        Slice("examples", lambda row: "all", table=False, figure="deepdive_reward"),
        Slice(
            "examples",
            lambda row: "all",
            table=False,
            figure="deepdive_search_redundancy",
            measure=lambda row: row.m("search_query_redundancy"),
            ylabel="search-query redundancy (Jaccard)",
        ),
    )

    def __init__(self, **args: str) -> None:
        super().__init__(**args)
        self.http = None  # an httpx.AsyncClient for the online web; tests give one with a mock transport
        self.online: Any = None  # the run's OnlineWeb, made with the first rollout's tools
        if self.args["source"] == "online" and not os.environ.get("SERPER_API_KEY"):
            raise EnvError("deepdive source=online needs SERPER_API_KEY for web search")
        if self.source == "online":
            from .online import serper_url

            serper_url()  # a bad SERPER_BASE_URL is the run's one-line error, not every search's
        judge_url = self.args["judge_base_url"] or os.environ.get("OPENAI_BASE_URL")
        if self.args["judge_model"] not in ("", "none") and not (os.environ.get("OPENAI_API_KEY") or judge_url):
            raise EnvError("judge_model needs OPENAI_API_KEY (or judge_base_url for a local server)")

    @property
    def source(self) -> str:
        if self.args["source"] == "auto":
            return "online" if os.environ.get("SERPER_API_KEY") else "offline"
        return self.args["source"]

    @property
    def data_note(self) -> str:
        if self.source == "online":
            return ""
        return (
            "offline stand-in for DeepDive: questions about a generated world of fictional entities, not the real data"
        )

    def web(self):
        return offline_web(self.args["world_seed"], self.args["num_entities"])

    def examples(self, n: int, seed: int) -> list[Example]:
        if self.source == "online":
            return examples_from_rows(load_rows(), n, seed, self.args["split"], self.args["eval_size"])
        try:
            questions = make_questions(
                world_of(self.args["world_seed"], self.args["num_entities"]), n, seed, *hop_range(self.args["hops"])
            )
        except ValueError as exc:
            raise EnvError(f"deepdive: {exc}; use a larger num_entities or a wider hops range") from None
        return [
            Example(
                id=f"dd-{seed}-{i}",
                question=q.text,
                target={"answer": q.answer, "aliases": list(q.aliases)},
                info={
                    "source": "offline",
                    "hops": len(q.phrases),
                    "question_type": q.kind,
                    "path": " > ".join(q.phrases),
                },
            )
            for i, q in enumerate(questions)
        ]

    def sub_tools(self) -> list[Tool]:
        k = self.args["results"]
        if self.source == "online":
            if self.online is None:  # one per run: its rollouts share the pages it has opened
                from .online import OnlineWeb

                self.online = OnlineWeb(os.environ.get("SERPER_API_KEY", ""), client=self.http, k=k)
            return make_tools(self.online.search, self.online.open)
        offline = self.web()

        async def search(query: str) -> str:
            return format_hits(query, offline.search(query, k))

        async def open_page(url: str) -> str:
            return offline.open(url)

        return make_tools(search, open_page)

    def score(self, example: Example, answer: str) -> Score:
        exact = float(matches(example.target, answer))
        return Score(reward=exact, metrics={"exact_match": exact, "judge": OFFLINE_JUDGE})

    async def score_async(
        self, example: Example, answer: str, rollout: Any = None, judge: Judge | None = None
    ) -> Score:
        queries = search_queries(rollout) if rollout is not None else []
        exact = float(matches(example.target, answer))
        metrics: dict[str, float | str] = {
            "exact_match": exact,
            "search_count": float(len(queries)),
            "search_query_redundancy": redundancy(queries),
        }
        model = self.args["judge_model"] or (judge.model if judge is not None else None)
        if not model or model == "none":
            metrics["judge"] = OFFLINE_JUDGE if not model else "exact match (judge_model=none)"
            return Score(reward=exact, metrics=metrics)
        metrics["judge"] = f"llm judge {model}"
        if not answer.strip():  # as the authors' server: an empty response scores 0 unasked
            return Score(reward=0.0, metrics=metrics)
        if judge is None:
            raise EnvError("an LLM judge is to score but none was given to score with")
        reply = await judge(
            model, judge_prompt(example.question, example.target, answer), base_url=self.args["judge_base_url"] or None
        )
        try:
            reward = 1.0 if verdict(reply) else 0.0
        except ValueError as exc:
            raise EnvError(str(exc)) from None
        return Score(reward=reward, metrics=metrics)

    def scripted_cells(self, example: Example, mode: str) -> list[str]:
        return scripted.cells(example)

    def scripted_sub_turn(self, messages: list[dict[str, Any]]) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        return scripted.sub_turn(messages)

    def scripted_llm_turn(
        self, example: Example, messages: list[dict[str, Any]]
    ) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        return scripted.llm_turn(example, messages)


ENVIRONMENT = DeepDive
