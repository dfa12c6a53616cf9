"""oolong: aggregate over a long context of records (how many, which most, which more common), in the spirit of Oolong."""

from __future__ import annotations

import inspect
import random
from dataclasses import dataclass
from typing import Any

from rlm_tui.env import (
    NUM_EXAMPLES,
    EnvError,
    Environment,
    Example,
    Knob,
    Score,
    Slice,
    choice,
    info_value,
    power_of_two_bin,
    tips_knob,
)

from .. import study_tips
from . import hf, real, synth
from .score import score_real, score_synth
from .solve import count_records, decide, present, sub_reply, sub_task
from .sources import DATASETS

SUBSETS = ("synth", "synth_with_labels", "real")
CONTEXT_LENS = tuple(2**k for k in range(10, 23))  # 1K to 4M tokens
HEADER_ROOM = 400  # characters kept for the header line
TIPS = {
    "default": study_tips.OOLONG,
    "detailed": study_tips.wrapped(
        "`context` is far too long to read at once. Split its lines into chunks of a few thousand lines, write one "
        "prompt per chunk that says exactly which records to count and what to count them by (classify each "
        "instance when the labels are not shown) and asks for the counts as JSON, and send all the prompts in a "
        "single llm_batch call. Add the counts up in Python, compute the answer from the totals, print it, and "
        "write it in answer['content'] in the form the question asks for before you set answer['ready'] = True."
    ),
}


def _context_bin(row: Any) -> int | None:
    """The example's measured context size in tokens (characters / 4), binned; runs recorded before the measure
    have only the configured size."""
    return power_of_two_bin(row.info.get("context_tokens", row.info.get("context_len")))


def _context_bin_in(subset: str) -> Any:
    return lambda row: _context_bin(row) if row.info.get("subset") == subset else None


def _total_tokens(row: Any) -> float:
    """Every token a rollout spent: the root model's and the sub-LLMs', prompt and completion."""
    return sum(
        row.m(name)
        for name in (
            "main_rlm_prompt_tokens",
            "main_rlm_completion_tokens",
            "sub_llm_prompt_tokens",
            "sub_llm_completion_tokens",
        )
    )


@dataclass(frozen=True)
class OolongExample(Example):
    spec: dict[str, Any] | None = None  # what the question asks, for the scripted model; None for online rows


def _context_len(raw: str) -> int:
    value = int(raw)
    if value not in CONTEXT_LENS:
        raise ValueError(f"choose a power of two from {CONTEXT_LENS[0]} to {CONTEXT_LENS[-1]}")
    return value


class Oolong(Environment):
    name = "oolong"
    knobs = (
        # the study's default: "the most important dataset is real"
        Knob("subset", "real", "real (game transcripts), synth or synth_with_labels (labels shown)", choice(*SUBSETS)),
        Knob(
            "context_len", 8192, "context size in tokens (chars / 4): a power of two from 1024 to 4194304", _context_len
        ),
        Knob("dataset", "all", f"synth records: {', '.join(DATASETS)}, or all (a mix)", choice(*DATASETS, "all")),
        Knob(
            "question_type",
            "all",
            "all, or one of the subset's question types (see docs/environments.md)",
            choice("all", *synth.QUESTION_TYPES, *real.QUESTION_TYPES),
        ),
        NUM_EXAMPLES,
        Knob("source", "offline", "offline (generated) or hf (oolongbench on Hugging Face)", choice("offline", "hf")),
        Knob("split", "test", "Hugging Face split with source=hf: validation or test", choice("validation", "test")),
        tips_knob(TIPS),
    )
    tip_variants = TIPS
    report_slices = (
        Slice("subset", info_value("subset"), figure="oolong_by_subset"),
        Slice("context length (tokens)", _context_bin, figure="oolong_by_context_len"),
        # one figure per subset: a context of one length is a different task in each
        *(
            Slice(
                f"context length (tokens), {subset}",
                _context_bin_in(subset),
                table=False,
                figure=f"oolong_{subset}_by_context_len",
            )
            for subset in sorted(SUBSETS)
        ),
        Slice(
            "subset",
            info_value("subset"),
            table=False,
            figure="oolong_tokens_by_subset",
            measure=_total_tokens,
            ylabel="mean tokens per rollout (main + sub)",
        ),
    )

    def __init__(self, **args: str) -> None:
        super().__init__(**args)
        qtype, allowed = self.args["question_type"], self._types()
        if qtype != "all" and qtype not in allowed:
            raise EnvError(f"question_type {qtype!r} is not one of subset {self.args['subset']}: {', '.join(allowed)}")

    @property
    def data_note(self) -> str:
        if self.args["source"] == "hf":
            return ""
        subset = self.args["subset"]
        what = "game transcripts" if subset == "real" else "records"
        return f"offline stand-in for oolong-{subset}: generated {what}, not the real data"

    def _types(self) -> tuple[str, ...]:
        return real.QUESTION_TYPES if self.args["subset"] == "real" else synth.QUESTION_TYPES

    def examples(self, n: int, seed: int) -> list[Example]:
        count, subset = self.args["num_examples"] or n, self.args["subset"]
        if self.args["source"] == "hf":
            return hf.load_examples(subset, self.args["split"], self.args["context_len"], count, seed)
        return [self._example(seed, i) for i in range(count)]

    def _example(self, seed: int, index: int) -> OolongExample:
        subset, context_len = self.args["subset"], self.args["context_len"]
        rng = random.Random(f"oolong:{subset}:{context_len}:{seed}:{index}")  # example i is the same whatever n is
        budget = context_len * 4 - HEADER_ROOM
        wanted = self.args["question_type"]
        for _ in range(50):  # a question without a unique answer (a tie) is drawn again
            types = list(self._types()) if wanted == "all" else [wanted]
            rng.shuffle(types)
            if subset == "real":
                lines, players = real.make_transcript(rng, budget)
                head, dataset = real.header(players), "transcripts"
                made = next(filter(None, (real.make_question(rng, lines, players, t) for t in types)), None)
            else:
                dataset = self.args["dataset"]
                if dataset == "all":
                    dataset = list(DATASETS)[index % len(DATASETS)]
                records = synth.make_records(rng, dataset, budget, subset == "synth_with_labels")
                lines, head = records.lines, synth.header(dataset, len(records.lines), subset == "synth_with_labels")
                made = next(filter(None, (synth.make_question(rng, dataset, records, t) for t in types)), None)
            if made is not None:
                break
        else:
            raise EnvError(f"could not make a {wanted} question with a unique answer at context_len {context_len}")
        question, gold, spec = made
        answer_type = (real.ANSWER_TYPES if subset == "real" else synth.ANSWER_TYPES)[spec["qtype"]]
        context = head + "\n" + "\n".join(lines)
        info = {
            "subset": subset,
            "context_len": context_len,
            "context_tokens": len(context) // 4,  # measured, as the knob counts: characters / 4
            "question_type": spec["qtype"],
            "answer_type": answer_type,
            "dataset": dataset,
            "source": "offline",
        }
        return OolongExample(
            id=f"ool-{seed}-{index}",
            question=question,
            target=gold,
            context=context,
            info=info,
            spec=spec,
        )

    def score(self, example: Example, answer: str) -> Score:
        if example.info.get("subset") == "real":
            reward = score_real(answer, str(example.target))
        else:
            reward = score_synth(answer, str(example.target), example.info.get("answer_type", ""))
        return Score(reward=reward, metrics={"exact": float(reward == 1.0)})

    # --- the scripted model ---------------------------------------------------------------------

    def _spec(self, example: Example) -> dict[str, Any]:
        spec = getattr(example, "spec", None)
        if spec is not None:
            return spec
        if example.info.get("subset") == "real":  # an online row: the stand-in only counts what it can
            return {"qtype": "total_rolls", "name": "", "players": []}
        return {"qtype": "most_common", "labels": [], "key": "label"}

    def scripted_cells(self, example: Example, mode: str) -> list[str]:
        spec = self._spec(example)
        if "name" in spec:
            tally = (
                "rolls, nat20 = Counter(), Counter()\nfor r in replies:\n    data = read(r)\n"
                "    rolls.update(data.get('rolls', {}))\n    nat20.update(data.get('nat20', {}))\n"
                f"counts = {'nat20' if spec['qtype'] == 'nat20_players' else 'rolls'}\n"
                "print('rolls:', rolls.most_common(8), 'natural 20s:', dict(nat20))"
            )
        else:
            tally = "counts = Counter()\nfor r in replies:\n    counts.update(read(r))\nprint(counts.most_common(8))"
        return [
            "lines = context.splitlines()\nintro, rows = lines[0], lines[1:]\n"
            "size = -(-len(rows) // max(4, -(-len(rows) // 2000)))  # at least 4 chunks, at most 2000 lines each\n"
            "chunks = ['\\n'.join(rows[i:i + size]) for i in range(0, len(rows), size)]\n"
            "print(f'{len(rows)} lines in {len(chunks)} chunks of up to {size}')\nprint(intro)",
            "import json, re\nfrom collections import Counter\n\n"
            "def read(reply):\n    match = re.search(r'\\{.*\\}', reply, re.S)\n    try:\n"
            "        return json.loads(match.group(0)) if match else {}\n    except ValueError:\n"
            "        print('unreadable reply:', reply[:200])\n        return {}\n\n"
            f"task = {sub_task(spec)!r}\n"
            "prompts = [f'{intro}\\n{task}\\n<records>\\n{c}\\n</records>' for c in chunks]\n"
            f"replies = llm_batch(prompts)\n{tally}",
            f"{inspect.getsource(decide)}\nspec = {spec!r}\nvalue = decide(spec, counts)\n"
            "answer['content'] = value\nprint(answer['content'])",
            f"{inspect.getsource(present)}\nanswer['content'] = present(spec, value)\nprint(answer['content'])",
            "answer['ready'] = True",
        ]

    def scripted_sub_reply(self, prompt: str) -> str:
        return sub_reply(prompt)

    def scripted_text(self, example: Example) -> str:
        spec, lines = self._spec(example), str(example.context or "").splitlines()
        if "name" in spec:
            rolls, nat20 = real.tally(lines)
            return present(spec, decide(spec, dict(nat20 if spec["qtype"] == "nat20_players" else rolls)))
        return present(spec, decide(spec, count_records(lines, sub_task(spec))))


ENVIRONMENT = Oolong
