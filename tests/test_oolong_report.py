"""oolong's report slices: reward by the measured context size (all subsets and each), and tokens by subset."""

from __future__ import annotations

import pytest

from rlm_tui.env import environment_class, load_environment
from rlm_tui.report import figures, stats
from rlm_tui.report.data import Row

SLICES = {(s.label, s.figure): s for s in environment_class("oolong").report_slices}


def row(subset, mode, reward, *, context_len, context_tokens=None, main=(0, 0), sub=(0, 0)):
    info = {"subset": subset, "context_len": context_len}
    if context_tokens is not None:
        info["context_tokens"] = context_tokens
    metrics = {
        "main_rlm_prompt_tokens": main[0],
        "main_rlm_completion_tokens": main[1],
        "sub_llm_prompt_tokens": sub[0],
        "sub_llm_completion_tokens": sub[1],
    }
    return Row("run", f"r{reward}", "oolong", mode, "m", "ex", reward, "answer_ready", 120.0, info, metrics)


ROWS = [
    # configured 8192 everywhere, measured otherwise: log2(5000) = 12.3 and log2(3000) = 11.55 bin to 4096,
    # log2(6000) = 12.55 to 8192, log2(100000) = 16.6 to 131072
    row("real", "rlm", 1.0, context_len=8192, context_tokens=5000, main=(1000, 200), sub=(3000, 300)),
    row("real", "rlm", 0.5, context_len=8192, context_tokens=3000, main=(2000, 100), sub=(0, 0)),
    row("real", "rlm", 0.0, context_len=8192, context_tokens=100000, main=(500, 500), sub=(1000, 0)),
    row("synth", "rlm", 0.25, context_len=8192, context_tokens=6000, main=(100, 0), sub=(0, 0)),
    row("synth", "llm", 1.0, context_len=8192, context_tokens=6000, main=(9000, 1000), sub=(0, 0)),
    row("synth", "llm", 0.0, context_len=2048),  # recorded before the measure: its configured size
]


def table(slice_, rows=ROWS):
    return {
        (r["value"], r["mode"]): (r["n"], r["mean"])
        for r in stats.by_value(rows, "oolong", slice_.group, slice_.measure or (lambda r: r.reward))
    }


def test_reward_by_measured_context_length():
    by_len = SLICES[("context length (tokens)", "oolong_by_context_len")]
    assert by_len.table
    assert table(by_len) == {
        (2048, "llm"): (1, 0.0),
        (4096, "rlm"): (2, 0.75),
        (8192, "rlm"): (1, 0.25),
        (8192, "llm"): (1, 1.0),
        (131072, "rlm"): (1, 0.0),
    }


def test_reward_by_measured_context_length_per_subset():
    real = SLICES[("context length (tokens), real", "oolong_real_by_context_len")]
    synth = SLICES[("context length (tokens), synth", "oolong_synth_by_context_len")]
    assert not real.table and not synth.table
    assert table(real) == {(4096, "rlm"): (2, 0.75), (131072, "rlm"): (1, 0.0)}
    assert table(synth) == {(2048, "llm"): (1, 0.0), (8192, "rlm"): (1, 0.25), (8192, "llm"): (1, 1.0)}
    assert {s.figure for s in SLICES.values()} >= {
        "oolong_real_by_context_len",
        "oolong_synth_by_context_len",
        "oolong_synth_with_labels_by_context_len",
    }


def test_tokens_by_subset_count_main_and_sub_tokens():
    tokens = SLICES[("subset", "oolong_tokens_by_subset")]
    assert not tokens.table and "tokens" in tokens.ylabel
    # real rlm: (1000+200+3000+300 + 2000+100 + 500+500+1000) / 3 = 8600 / 3
    assert table(tokens) == {
        ("real", "rlm"): (3, pytest.approx(8600 / 3)),
        ("synth", "rlm"): (1, 100.0),
        ("synth", "llm"): (2, 5000.0),  # (10000 + 0) / 2
    }


def test_examples_record_their_measured_size():
    for subset in ("real", "synth", "synth_with_labels"):
        (e,) = load_environment("oolong", {"subset": subset, "context_len": "2048"}).examples(1, 0)
        assert e.info["context_tokens"] == len(e.context) // 4 and e.info["context_len"] == 2048


def test_the_figures_are_written(tmp_path):
    written = {p.name for p in figures.write_all(ROWS, tmp_path, jobs=1)}
    for name in ("oolong_by_context_len", "oolong_real_by_context_len", "oolong_tokens_by_subset"):
        assert {f"{name}.png", f"{name}.svg"} <= written
    assert "oolong_synth_with_labels_by_context_len.png" not in written  # no rows of that subset
