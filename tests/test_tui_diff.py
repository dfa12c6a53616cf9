"""The answer's diff marks exactly what an edit brought, on answers of any size."""

from __future__ import annotations

import random
import string

from rich.text import Text

from rlm_tui import events as ev
from rlm_tui.state import RolloutState
from rlm_tui.textdiff import changed_middle, changed_spans
from rlm_tui.tui.widgets.answer import CHANGED


def kept(new: str, spans: list[tuple[int, int]]) -> str:
    """The characters of `new` left unmarked."""
    out, at = [], 0
    for a, b in spans:
        out.append(new[at:a])
        at = b
    return "".join(out) + new[at:]


def is_subsequence(short: str, long: str) -> bool:
    rest = iter(long)
    return all(c in rest for c in short)


def test_small_edits_mark_the_words_they_change():
    assert changed_spans("the cat sat on the mat", "the dog sat on a mat") == [(4, 7), (15, 16)]
    assert changed_spans("hello world", "hello brave new world") == [(6, 16)]
    assert changed_spans("same", "same") == []
    assert changed_spans("", "new") == [(0, 3)]
    assert changed_spans("a long text", "a text") == []  # a deletion leaves nothing of the new text to mark


def test_a_20k_char_answer_edit_marks_exactly_the_inserted_text():
    rng = random.Random(7)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(400)]
    old = " ".join(rng.choices(words, k=3600))[:20_000]
    inserts = sorted(rng.sample(range(1, len(old) // 100), 25), reverse=True)
    new = old
    for k in inserts:  # at word starts, so each insertion is a whole new word
        at = new.index(" ", k * 100) + 1
        new = new[:at] + f"EDIT{k} " + new[at:]
    spans = changed_spans(old, new)
    # each insertion marked whole: with or without the blank before or after it, which is the same edit
    assert [new[a:b].strip() for a, b in spans] == [f"EDIT{k}" for k in sorted(inserts)]
    assert all(b - a == len(f"EDIT{k} ") for (a, b), k in zip(spans, sorted(inserts)))
    assert kept(new, spans) == old


def test_scattered_replacements_leave_only_old_text_unmarked():
    rng = random.Random(3)
    old = "".join(rng.choices(string.ascii_lowercase + "    \n", k=20_000))
    chars = list(old)
    for _ in range(40):
        at = rng.randrange(len(chars))
        chars[at : at + rng.randrange(1, 30)] = rng.choices(string.ascii_uppercase, k=rng.randrange(1, 30))
    new = "".join(chars)
    spans = changed_spans(old, new)
    assert all(a < b for a, b in spans) and all(b < c for (_, b), (c, _) in zip(spans, spans[1:]))
    assert is_subsequence(kept(new, spans), old)
    marked = "".join(new[a:b] for a, b in spans)
    assert sum(c.isupper() for c in new) == sum(c.isupper() for c in marked)  # every new letter is marked
    assert len(marked) < 3 * sum(c.isupper() for c in new)  # and not much else


def test_an_unrelated_answer_is_marked_whole_enough():
    old, new = "alpha beta gamma " * 1000, "one two three " * 1000
    spans = changed_spans(old, new)
    assert is_subsequence(kept(new, spans), old)


def test_past_the_limit_only_the_changed_middle_is_found():
    old = "x" * 300_000
    new = old[:1000] + "CHANGED" + old[1000:]
    assert changed_middle(old, new) == [(1000, 1007)]
    assert changed_middle(old, old) == []


def test_the_answer_view_colours_the_changed_span(tmp_path):
    import asyncio

    from textual.app import App, ComposeResult

    from rlm_tui.tui.widgets.answer import AnswerView

    old = "word " * 4000
    new = old[:10_000] + "NEW " + old[10_000:]
    r = RolloutState(id="r")
    for text in (old, new):
        r.apply(ev.AnswerUpdated(run_id="run", rollout_id="r", content=text, ready=False))

    class One(App):
        def compose(self) -> ComposeResult:
            yield AnswerView(id="answer")

    async def main() -> Text:
        app = One()
        async with app.run_test(size=(80, 20)) as pilot:
            view = app.query_one(AnswerView)
            view.show(r)
            await pilot.pause()
            return view.blocks[-1].renderable

    body = asyncio.run(main())
    marked = [body.plain[s.start : s.end] for s in body.spans if str(s.style) == CHANGED]
    assert marked == ["NEW "]
