"""verbatim-copy: reproduce generated text exactly, character for character."""

from __future__ import annotations

import random
import re

from rlm_tui.env import NUM_EXAMPLES, Environment, Example, Knob, Score, Slice, between, info_value, tips_knob

from .. import study_tips
from .generate import CONTENT_TYPES, generate

MAX_LENGTH = 1_000_000  # characters: generated and copied by the scripted model in seconds

CHUNK = 200
TIPS = {
    "default": study_tips.VERBATIM_COPY,
    "detailed": study_tips.wrapped(
        "Type the text into a Python string in the REPL in pieces, then check each piece against the prompt "
        "before you build the answer. Sub-LLMs can copy chunks in parallel with llm_batch; compare what they "
        "return with your own chunks and fix any that differ. Print answer['content'] to check it, and only set "
        "answer['ready'] = True when it matches exactly."
    ),
}


def _content_type(raw: str) -> str:
    if raw not in (*CONTENT_TYPES, "all"):
        raise ValueError(f"choose one of {', '.join((*CONTENT_TYPES, 'all'))}")
    return raw


def _fragment_length(raw: str) -> int | None:
    return None if raw.lower() == "none" else between(1, MAX_LENGTH)(raw)


def char_accuracy(target: str, answer: str) -> float:
    """Share of positions where the copy has the right character, over the longer length."""
    longest = max(len(target), len(answer))
    if longest == 0:
        return 1.0
    return sum(a == b for a, b in zip(target, answer)) / longest


def levenshtein_similarity(target: str, answer: str) -> float:
    import Levenshtein  # it pulls rapidfuzz: only scoring needs it

    longest = max(len(target), len(answer))
    return 1.0 if longest == 0 else 1.0 - Levenshtein.distance(target, answer) / longest


def shown_text(question: str) -> str:
    """The text a question asks to copy, as far as the question shows it (a model may read only its head)."""
    start, end = question.find("<text>"), question.rfind("</text>")
    return "" if start < 0 else question[start + len("<text>") : end if end > start else None]


class VerbatimCopy(Environment):
    name = "verbatim-copy"
    knobs = (
        Knob("content_type", "all", "words|json|csv|codes|mixed, or all (a mix of the others)", _content_type),
        Knob("target_length", 500, "characters of text to copy", between(1, MAX_LENGTH)),
        Knob(
            "mean_fragment_length",
            20,
            "splice the text from slices of 0.5x-1.5x this length; none: one piece",
            _fragment_length,
        ),
        NUM_EXAMPLES,
        tips_knob(TIPS),
    )
    tip_variants = TIPS
    report_slices = (
        Slice("content type", info_value("content_type"), figure="verbatim_copy_by_content_type"),
        Slice("target length", info_value("target_length"), figure="verbatim_copy_by_target_length"),
        Slice("fragment length", info_value("mean_fragment_length")),
        Slice(
            "mean fragment length",
            info_value("mean_fragment_length"),
            table=False,
            figure="verbatim_copy_by_mean_fragment_length",
        ),
    )

    def examples(self, n: int, seed: int) -> list[Example]:
        count = self.args["num_examples"] or n
        rng = random.Random(f"verbatim-copy:{seed}")
        out = []
        for i in range(count):
            kind = self.args["content_type"]
            if kind == "all":
                kind = CONTENT_TYPES[i % len(CONTENT_TYPES)]
            text = generate(kind, rng, self.args["target_length"], self.args["mean_fragment_length"])
            question = (
                "Copy the text inside the tags below exactly, character for character, with no other words.\n"
                f"<text>{text}</text>"
            )
            info = {
                "content_type": kind,
                "target_length": self.args["target_length"],
                "mean_fragment_length": self.args["mean_fragment_length"],
            }
            out.append(Example(id=f"vc-{seed}-{i}", question=question, target=text, info=info))
        return out

    def score(self, example: Example, answer: str) -> Score:
        target = example.target
        return Score(
            reward=1.0 if answer == target else 0.0,
            metrics={
                "char_accuracy": char_accuracy(target, answer),
                "levenshtein_similarity": levenshtein_similarity(target, answer),
            },
        )

    def scripted_cells(self, example: Example, mode: str) -> list[str]:
        return [
            f"text = {shown_text(example.question)!r}\n"
            f"size = -(-len(text) // max(4, len(text) // {CHUNK}))  # at least four chunks\n"
            "chunks = [text[i:i + size] for i in range(0, len(text), size)]\n"
            'print(f"{len(text)} characters in {len(chunks)} chunks")',
            'prompts = [f"Copy the text between the tags exactly, with nothing else.\\n<text>{c}</text>" for c in chunks]\n'
            "copies = llm_batch(prompts)\n"
            'answer["content"] = "".join(copies)\n'
            'print(answer["content"])',
            "bad = [i for i, (c, got) in enumerate(zip(chunks, copies)) if c != got]\n"
            'print(f"{len(bad)} of {len(chunks)} chunks differ: {bad}")\n'
            "for i in bad:\n"
            "    copies[i] = chunks[i]\n"
            'answer["content"] = "".join(copies)\n'
            'answer["content"] == text',
            'answer["ready"] = True',
        ]

    def scripted_text(self, example: Example) -> str:
        return shown_text(example.question)

    def scripted_sub_reply(self, prompt: str) -> str:
        # A sloppy sub-LLM that drops the last character of its chunk, so the root has something to correct.
        match = re.search(r"<text>(.*)</text>", prompt, re.S)
        return match.group(1)[:-1] if match else ""


ENVIRONMENT = VerbatimCopy
