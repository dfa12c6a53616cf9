"""math-python: generation by seed, the online mapping, and scripted runs in every mode (grading: test_math_grade)."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from environments.math_python import grade, hf
from environments.math_python.generate import compute, to_latex
from environments.math_python.problems import TOPICS
from fake_hub import FakeHub, load_examples, rlm_tui, rlm_tui_without_datasets
from rlm_tui.env import EnvError, load_environment
from rlm_tui.export import rollout_record
from rlm_tui.state import fold
from rlm_tui.store import open_db, read_events
from runs import stored_run


def execute(tmp_path, env_args, *, mode, n=2):
    return stored_run(tmp_path, load_environment("math-python", env_args), mode=mode, n=n)[1]


# --- generation -------------------------------------------------------------------------------


def test_examples_are_deterministic_by_seed():
    env = load_environment("math-python")
    first = env.examples(10, seed=3)
    assert [(e.question, e.target) for e in first] == [(e.question, e.target) for e in env.examples(10, seed=3)]
    assert [e.question for e in first] != [e.question for e in env.examples(10, seed=4)]


def test_two_hundred_problems_whose_answers_are_computed():
    examples = load_environment("math-python").examples(200, seed=0)
    assert len({e.question for e in examples}) == 200
    assert {e.info["topic"] for e in examples} == set(TOPICS)
    assert {e.info["difficulty"] for e in examples} == {"easy", "medium", "hard"}
    assert len({e.info["template"] for e in examples}) >= 30
    for e in examples:
        assert e.target == to_latex(compute(e.code))  # the gold is what the problem's own code computes
        assert grade.grader().check(f"so \\boxed{{{e.target}}}", e.target) == grade.Verdict(True), e.target
        assert e.question.endswith("Put your final answer in \\boxed{}.")


def test_knobs_pick_topics_difficulty_and_count():
    env = load_environment(
        "math-python", {"topics": "calculus, probability", "difficulty": "hard", "num_examples": "6"}
    )
    examples = env.examples(2, seed=1)
    assert len(examples) == 6
    assert {e.info["topic"] for e in examples} == {"calculus", "probability"}
    assert {e.info["difficulty"] for e in examples} == {"hard"}
    assert set(examples[0].info) == {"topic", "difficulty", "template", "source"}


@pytest.mark.parametrize(
    "args, fragment",
    [
        ({"topics": "geometry"}, "topics"),
        ({"topics": ""}, "topics"),
        ({"difficulty": "extreme"}, "difficulty"),
        ({"tips": "loud"}, "tips"),
        ({"source": "web"}, "source"),
        ({"num_examples": "0"}, "num_examples"),
        ({"level": "1"}, "no knob 'level'"),
    ],
)
def test_bad_knobs_are_one_line_errors(args, fragment):
    with pytest.raises(EnvError) as info:
        load_environment("math-python", args)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_tips_knob():
    default = load_environment("math-python").tips
    assert "Python" in default and "sympy" in default and "llm_batch" not in default
    assert "llm_batch" in load_environment("math-python", {"tips": "sub_llms"}).tips
    assert "fractions.Fraction" in load_environment("math-python", {"tips": "detailed"}).tips


# --- online -----------------------------------------------------------------------------------

ROWS = [
    {"question": "What is 1+1?", "answer": "2", "avg@8_qwen3_4b_instruct_2507": 1.0},
    {"question": "Find x if 2x = 1.", "answer": "\\frac{1}{2}", "avg@8_qwen3_4b_instruct_2507": 0.5},
    {"question": "Hard one, answer in \\boxed{}.", "answer": "\\sqrt{2}", "avg@8_qwen3_4b_instruct_2507": 0.0},
    {"question": "No answer", "answer": "", "avg@8_qwen3_4b_instruct_2507": 0.0},
    {"question": "No rate", "answer": "3"},
]


def test_online_rows_map_to_examples():
    examples = hf.to_examples(ROWS, 10, seed=0, difficulty="all")
    assert len(examples) == 4  # the row without an answer is dropped
    by_id = {e.id: e for e in examples}
    assert by_id["mp-hf-0"].question == "What is 1+1?\n\nPut your final answer in \\boxed{}."
    assert by_id["mp-hf-2"].question == "Hard one, answer in \\boxed{}."
    assert by_id["mp-hf-1"].target == "\\frac{1}{2}" and by_id["mp-hf-1"].info["difficulty"] == "medium"
    assert by_id["mp-hf-4"].info["difficulty"] == "unknown"
    assert [e.id for e in hf.to_examples(ROWS, 2, 5, "all")] == [e.id for e in hf.to_examples(ROWS, 2, 5, "all")]
    assert [e.id for e in hf.to_examples(ROWS, 10, 0, "hard")] == ["mp-hf-2"]
    with pytest.raises(EnvError):
        hf.to_examples(ROWS[3:4], 1, 0, "all")


def test_online_source_loads_the_math_subset(tmp_path):
    other = [{"question": "Not math", "answer": "1", "avg@8_qwen3_4b_instruct_2507": 1.0}]
    with FakeHub({hf.DATASET: {"math": {"train": ROWS, "test": other}, "code": {"train": other}}}) as hub:
        (loaded,) = load_examples(hub, tmp_path, [("math-python", {"source": "hf"}, 10, 0)])
    assert loaded == [asdict(e) for e in hf.to_examples(ROWS, 10, 0, "all")]  # the rows came through unchanged
    assert len(loaded) == 4 and all(e["info"]["source"] == "hf" for e in loaded)


def test_online_rows_run_through_the_scripted_model(tmp_path):
    with FakeHub({hf.DATASET: {"math": {"train": ROWS}}}) as hub:
        proc = rlm_tui(
            hub,
            tmp_path,
            "run",
            "math-python",
            "--headless",
            "-n",
            "1",
            "--model",
            "scripted",
            "--env-arg",
            "source=hf",
            "--db",
            "t.db",
        )
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip().splitlines()[-1]
    stored = fold([e for _, e in read_events(open_db(tmp_path / "t.db"), run_id=run_id)], run_id)
    (r,) = stored.rollouts.values()
    assert r.status == "done" and r.answer["ready"] and r.reward == 0.0  # the stand-in cannot solve online rows
    assert r.example_id.startswith("mp-hf-")


@pytest.mark.parametrize(
    "repos, errors, reason",
    [
        pytest.param({hf.DATASET: {"math": {"train": ROWS}}}, {"/": 404}, "FileNotFoundError: ", id="404"),
        pytest.param(
            {hf.DATASET: {"math": {"train": ROWS}}}, {"/api/": 500}, "HfHubHTTPError: Server error '500", id="500"
        ),
        pytest.param(
            {},
            {},
            "DatasetNotFoundError: Dataset 'PrimeIntellect/INTELLECT-3-RL' doesn't exist on the Hub",
            id="no-repo",
        ),
        pytest.param(
            {hf.DATASET: {"code": {"train": ROWS}}}, {}, "ValueError: BuilderConfig 'math' not found", id="no-config"
        ),
    ],
)
def test_online_source_failures_are_one_line(tmp_path, repos, errors, reason):
    with FakeHub(repos, errors=errors) as hub:
        proc = rlm_tui(
            hub,
            tmp_path,
            "run",
            "math-python",
            "--headless",
            "-n",
            "1",
            "--model",
            "scripted",
            "--env-arg",
            "source=hf",
            "--db",
            "t.db",
        )
    (line,) = proc.stderr.strip().splitlines()  # one line, no traceback
    assert proc.returncode == 2
    assert line.startswith(f"rlm-tui: error: could not load PrimeIntellect/INTELLECT-3-RL math (train): {reason}")


def test_online_source_without_the_datasets_package(tmp_path):
    proc = rlm_tui_without_datasets(
        tmp_path,
        "run",
        "math-python",
        "--headless",
        "-n",
        "1",
        "--model",
        "scripted",
        "--env-arg",
        "source=hf",
        "--db",
        "t.db",
    )
    assert (proc.returncode, proc.stderr.strip()) == (
        2,
        "rlm-tui: error: loading PrimeIntellect/INTELLECT-3-RL needs the `datasets` package: "
        "pip install 'rlm-tui[online]'",
    )


# --- scripted runs ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["rlm", "rlm-tips", "llm"])
def test_scripted_runs_in_every_mode(tmp_path, mode):
    stored = execute(tmp_path, {"tips": "sub_llms"}, mode=mode)
    assert stored.status == "done" and len(stored.rollouts) == 2
    for r in stored.rollouts.values():
        assert (r.stop_reason, r.reward) == ("answer_ready", 1.0)
        record = rollout_record(stored, r)
        assert {"topic", "difficulty", "template", "source"} <= set(record["info"])
        assert "\\boxed{" in record["answer"]["content"]
        cells = [c for t in r.turns for c in t.cells]
        if mode == "llm":
            assert len(cells) == 1 and "\\boxed{" in cells[0].output  # one call of the python tool
        else:
            assert len(cells) == 4 and r.batches and r.batches[0].size == 3
            assert r.answer_history[-1][1] is True
    rollout = next(iter(stored.rollouts.values()))
    assert ("<env_tips>" in rollout.user_prompt) == (mode == "rlm-tips")
    assert "<env_tips>" not in rollout.system_prompt
