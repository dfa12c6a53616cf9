"""verbatim-copy: generation by seed, knobs, scoring."""

import pytest

from environments.verbatim_copy import char_accuracy, levenshtein_similarity
from rlm_tui.env import EnvError, load_environment


def test_examples_are_deterministic_by_seed():
    env = load_environment("verbatim-copy")
    first = env.examples(5, seed=7)
    assert [e.target for e in first] == [e.target for e in env.examples(5, seed=7)]
    assert [e.target for e in first] != [e.target for e in env.examples(5, seed=8)]


def test_all_mixes_every_content_type_and_length_is_exact():
    env = load_environment("verbatim-copy", {"target_length": "300"})
    examples = env.examples(5, seed=1)
    assert {e.info["content_type"] for e in examples} == {"words", "json", "csv", "codes", "mixed"}
    assert all(len(e.target) == 300 for e in examples)
    assert all(e.target in e.question for e in examples)


@pytest.mark.parametrize("kind", ["words", "json", "csv", "codes", "mixed"])
def test_each_content_type(kind):
    env = load_environment("verbatim-copy", {"content_type": kind, "mean_fragment_length": "none"})
    (example,) = env.examples(1, seed=3)
    assert example.info == {"content_type": kind, "target_length": 500, "mean_fragment_length": None}
    assert len(example.target) == 500


def test_fragments_splice_slices_of_a_pool():
    whole = load_environment("verbatim-copy", {"content_type": "words", "mean_fragment_length": "none"})
    spliced = load_environment("verbatim-copy", {"content_type": "words", "mean_fragment_length": "10"})
    a, b = whole.examples(1, 0)[0].target, spliced.examples(1, 0)[0].target
    assert a != b
    assert b.count(". ") < a.count(". ") + 40  # still words, just cut and re-joined


def test_num_examples_knob_overrides_n():
    env = load_environment("verbatim-copy", {"num_examples": "3"})
    assert len(env.examples(10, 0)) == 3


@pytest.mark.parametrize(
    "args, fragment",
    [
        ({"content_type": "xml"}, "content_type"),
        ({"target_length": "0"}, "target_length"),
        ({"target_length": "abc"}, "target_length"),
        ({"colour": "red"}, "no knob 'colour'"),
    ],
)
def test_bad_knobs_are_one_line_errors(args, fragment):
    with pytest.raises(EnvError) as info:
        load_environment("verbatim-copy", args)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_unknown_environment():
    with pytest.raises(EnvError, match="unknown environment 'nope'"):
        load_environment("nope")


def test_scoring():
    env = load_environment("verbatim-copy")
    example = env.examples(1, 0)[0]
    exact = env.score(example, example.target)
    assert exact.reward == 1.0 and exact.metrics == {"char_accuracy": 1.0, "levenshtein_similarity": 1.0}
    off = env.score(example, example.target[:-1] + "#")
    assert off.reward == 0.0
    assert off.metrics["char_accuracy"] == pytest.approx(1 - 1 / len(example.target))
    assert env.score(example, "").reward == 0.0


def test_metrics_by_hand():
    assert char_accuracy("abcd", "abxd") == 0.75
    assert char_accuracy("abcd", "abc") == 0.75
    assert char_accuracy("", "") == 1.0
    assert levenshtein_similarity("abcd", "bcd") == 0.75  # one deletion, not four shifted characters
    assert levenshtein_similarity("abc", "xyz") == 0.0


def test_scripted_sub_makes_a_slip_to_correct():
    env = load_environment("verbatim-copy")
    assert env.scripted_sub_reply("Copy\n<text> a b.</text>") == " a b"
