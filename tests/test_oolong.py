"""oolong: generation by seed and size, gold answers, the scorers, the online mapping, and scripted runs."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from environments.oolong import hf, real, synth
from environments.oolong.score import candidate, score_real, score_synth
from environments.oolong.solve import sub_reply
from fake_hub import FakeHub, load_examples, rlm_tui, rlm_tui_without_datasets
from rlm_tui.env import EnvError, load_environment
from rlm_tui.export import rollout_record
from rlm_tui.state import fold
from rlm_tui.store import open_db, read_events
from runs import stored_run

INFO = {"subset", "context_len", "context_tokens", "question_type", "answer_type", "dataset", "source"}
ONLINE_RUN = (
    *("run", "oolong", "--headless", "-n", "1", "--model", "scripted", "--db", "t.db"),
    *("--env-arg", "source=hf", "--env-arg", "subset=synth"),  # a later subset= wins
)


def execute(tmp_path, env_args, *, mode, n=2):
    return stored_run(tmp_path, load_environment("oolong", env_args), mode=mode, n=n)[1]


# --- generation -------------------------------------------------------------------------------


def test_examples_are_deterministic_by_seed():
    env = load_environment("oolong", {"context_len": "2048"})
    first = env.examples(3, seed=1)
    again = env.examples(3, seed=1)
    assert [(e.question, e.target, e.context) for e in first] == [(e.question, e.target, e.context) for e in again]
    assert [e.context for e in first] != [e.context for e in env.examples(3, seed=2)]
    assert env.examples(1, seed=1)[0].context == first[0].context  # example i does not depend on n


@pytest.mark.parametrize("subset", ["synth", "synth_with_labels", "real"])
@pytest.mark.parametrize("context_len", [1024, 8192, 65536])
def test_context_fills_its_length(subset, context_len):
    (example,) = load_environment("oolong", {"subset": subset, "context_len": str(context_len)}).examples(1, 0)
    tokens = len(example.context) / 4
    assert 0.9 * context_len <= tokens <= context_len
    assert set(example.info) == INFO and example.info["context_len"] == context_len


@pytest.mark.parametrize("subset", ["synth", "real"])
def test_four_million_tokens(subset):
    (example,) = load_environment("oolong", {"subset": subset, "context_len": "4194304"}).examples(1, 0)
    assert len(example.context) > 0.99 * 4 * 4194304


def test_records_show_labels_only_with_labels():
    plain = load_environment("oolong", {"context_len": "1024", "dataset": "reviews", "subset": "synth"}).examples(1, 0)[
        0
    ]
    labelled = load_environment(
        "oolong", {"context_len": "1024", "dataset": "reviews", "subset": "synth_with_labels"}
    ).examples(1, 0)[0]
    rows = plain.context.splitlines()
    assert rows[0].startswith("The following lines contain") and "positive, negative, neutral" in rows[0]
    assert all(r.startswith("Date: ") and " || User: " in r and " || Instance: " in r for r in rows[1:])
    assert "|| Label:" not in plain.context
    assert all(
        r.endswith((" || Label: positive", " || Label: negative", " || Label: neutral"))
        for r in labelled.context.splitlines()[1:]
    )


def test_count_gold_matches_the_shown_labels():
    env = load_environment("oolong", {"subset": "synth_with_labels", "question_type": "count", "context_len": "4096"})
    for e in env.examples(4, seed=0):
        label = e.question.split("label '")[1].split("'")[0]
        assert e.target == str(e.context.count(f" || Label: {label}\n") + e.context.endswith(f" || Label: {label}"))


@pytest.mark.parametrize("qtype", synth.QUESTION_TYPES + real.QUESTION_TYPES)
def test_every_question_type_is_answered_from_the_text(qtype):
    subset = "real" if qtype in real.QUESTION_TYPES else "synth"
    env = load_environment("oolong", {"subset": subset, "question_type": qtype, "context_len": "4096"})
    for e in env.examples(3, seed=7):
        assert e.info["question_type"] == qtype and e.info["answer_type"] in (
            "numeric",
            "label",
            "comparison",
            "user",
            "date",
            "string",
            "list",
        )
        # the stand-in reads the rendered context, the gold comes from the generator's own records
        assert env.score(e, env.scripted_text(e)).reward == 1.0, (e.question, e.target, env.scripted_text(e))


def test_the_stand_in_sub_counts_its_chunk():
    (e,) = load_environment("oolong", {"subset": "synth", "context_len": "2048", "question_type": "count"}).examples(
        1, 0
    )
    rows = e.context.splitlines()[1:]
    prompt = (
        f"{e.context.splitlines()[0]}\nCount the records per label and reply with only a JSON object.\n"
        f"<records>\n" + "\n".join(rows[:10]) + "\n</records>"
    )
    counts = json.loads(sub_reply(prompt))
    assert sum(counts.values()) == 10


@pytest.mark.parametrize(
    "args, fragment",
    [
        ({"context_len": "1000"}, "context_len"),
        ({"context_len": "8388608"}, "context_len"),
        ({"subset": "fake"}, "subset"),
        ({"dataset": "tweets"}, "dataset"),
        ({"question_type": "nope"}, "question_type"),
        ({"subset": "real", "question_type": "count"}, "question_type"),
        ({"question_type": "count"}, "question_type"),  # the default subset is real
        ({"subset": "synth", "question_type": "total_rolls"}, "question_type"),
        ({"split": "train"}, "split"),
    ],
)
def test_bad_knobs_are_one_line_errors(args, fragment):
    with pytest.raises(EnvError) as info:
        load_environment("oolong", args)
    assert fragment in str(info.value) and "\n" not in str(info.value)


# --- scoring: the rules of abertsch72/oolong src/eval/eval_helpers.py, each value worked out by hand --------------


@pytest.mark.parametrize(
    "answer, gold, kind, reward",
    [
        # the candidate: after the last colon, stripped, without * [ ]
        ("Answer: 12", "12", "numeric", 1.0),
        ("**Answer: 12**", "12", "numeric", 1.0),
        ("Answer: [12]", "12", "numeric", 1.0),
        ("Answer: 12 ", "12", "numeric", 1.0),
        ("Users: 3, then Answer: 12", "12", "numeric", 1.0),
        # no colon: a short answer whole (nothing removed), a long one its last word
        ("12", "12", "numeric", 1.0),
        (" 12 ", "12", "numeric", 1.0),  # not equal as text, but int(" 12 ") is 12
        ("**12**", "12", "numeric", 0.0),  # markup is only removed after a colon
        ("After counting every chunk the total comes to 11", "12", "numeric", 0.75),
        # numbers: 0.75 ** |error| either way; what int() refuses scores 0
        ("Answer: 10", "12", "numeric", 0.5625),
        ("Answer: 15", "12", "numeric", 0.421875),
        ("Answer: -1", "1", "numeric", 0.5625),
        ("Answer: twelve", "12", "numeric", 0.0),
        ("Answer: 1,000", "1000", "numeric", 0.0),
        ("Answer: 12.0", "12", "numeric", 0.0),
        ("", "0", "numeric", 0.0),
        ("Answer: " + "9" * 400, "0", "numeric", 0.0),  # an error past float range: no credit, no crash
        # labels and users: exact and case-sensitive, no partial credit
        ("Label: positive", "positive", "label", 1.0),
        ("Label: Positive", "positive", "label", 0.0),
        ("Label: 'positive'", "positive", "label", 0.0),
        ("Label: positive.", "positive", "label", 0.0),
        ("Label: negative", "positive", "label", 0.0),
        ("User: 41190", "41190", "user", 1.0),
        ("User: 41191", "41190", "user", 0.0),
        # comparisons: a long candidate becomes the phrase it holds; a phrase scores when the gold contains it
        ("Answer: positive is more common than negative", "more common than", "comparison", 1.0),
        ("Answer: positive is **more common than** negative", "more common than", "comparison", 1.0),
        ("Answer: positive is less common than negative", "more common than", "comparison", 0.0),
        ("Answer: more common", "more common than", "comparison", 1.0),
        ("Answer: same frequency as", "same frequency as", "comparison", 1.0),
        ("Answer: More common than", "more common than", "comparison", 0.0),
        ("Answer: positive is More common than negative", "more common than", "comparison", 0.0),
        ("", "more common than", "comparison", 0.0),
        # dates: whatever dateutil reads as the gold day at midnight
        ("Date: 03/14/2023", "03/14/2023", "date", 1.0),
        ("Date: 3/14/2023", "03/14/2023", "date", 1.0),
        ("Date: 2023-03-14", "03/14/2023", "date", 1.0),
        ("Date: Mar 14, 2023", "03/14/2023", "date", 1.0),
        ("Date: 14 March 2023", "03/14/2023", "date", 1.0),
        ("Date: 03/15/2023", "03/14/2023", "date", 0.0),
        ("Date: soon", "03/14/2023", "date", 0.0),
    ],
)
def test_synth_scorer_table(answer, gold, kind, reward):
    assert score_synth(answer, gold, kind) == reward


@pytest.mark.parametrize(
    "answer, gold, reward",
    [
        # numbers in the first box: 0.75 ** |error|
        ("\\boxed{12}", "12", 1.0),
        ("so \\boxed{10}", "12", 0.5625),
        ("\\boxed{-2}", "2", 0.31640625),
        ("\\boxed{3} no, wait: \\boxed{4}", "4", 0.75),  # the first box counts
        ("\\boxed{{5}}", "5", 1.0),
        ("\\boxed{}", "12", 0.0),
        # an unboxed answer is its raw text: never a number, but a string can still match
        ("12", "12", 0.0),
        ("I think 12", "12", 0.0),
        ("\\fbox{12}", "12", 0.0),
        ("so \\boxed 12", "12", 0.0),
        (" laura\n", "Laura", 1.0),
        ("", "Laura", 0.0),
        # strings: equal after strip and lower-casing
        ("\\boxed{\\text{Laura}}", "Laura", 1.0),
        ("\\boxed{laura}", "Laura", 1.0),
        ("\\boxed{ Laura }", "Laura", 1.0),
        ("\\boxed{ \\text{Laura} }", "Laura", 0.0),  # the \\text{ is not unwrapped after a space
        ("\\boxed{Sam}", "Laura", 0.0),
        # lists: the share of gold items found, case-sensitive, extra items free
        ("\\boxed{Laura, Sam}", "Laura, Sam", 1.0),
        ("\\boxed{Sam,Laura}", "Laura, Sam", 1.0),
        ("\\boxed{Laura, Liam}", "Laura, Sam", 0.5),
        ("\\boxed{Laura, Sam, Liam}", "Laura, Sam, Travis, Ashley", 0.5),
        ("\\boxed{Laura, Sam, Liam, Travis, Ashley}", "Laura, Sam, Travis, Ashley", 1.0),
        ("\\boxed{laura, sam}", "Laura, Sam", 0.0),
        ("\\boxed{Sam}", "Laura, Sam", 0.0),  # a string against a list
        ("", "12", 0.0),
    ],
)
def test_real_scorer_table(answer, gold, reward):
    assert score_real(answer, gold) == reward


def test_candidate_takes_the_text_after_the_last_colon():
    assert candidate("Thinking: a lot. Label: *spam*") == "spam"
    assert candidate("Label: spam.") == "spam."
    assert candidate("short") == "short"
    assert candidate("I looked at every line and I believe it is spam") == "spam"
    assert candidate(" " * 30) == ""


def test_environment_score_dispatches_on_subset():
    env = load_environment("oolong", {"context_len": "1024"})
    e = env.examples(1, 0)[0]
    assert env.score(e, "").reward == 0.0 and env.score(e, "").metrics == {"exact": 0.0}


# --- online -----------------------------------------------------------------------------------


def synth_row(i, context_len=1024, answer="[3]", kind="ANSWER_TYPE.NUMERIC"):
    line = f"Date: Jan 01, 2023 || User: 1 || Instance: hi {i}"
    return {
        "id": i,
        "context_len": context_len,
        "dataset": "spam",
        "context_window_text": line,
        "context_window_text_with_labels": f"{line} || Label: ham",
        "question": f"Question {i}?",
        "task_group": "counting",
        "task": "TASK_TYPE.NUMERIC_ONE_CLASS",
        "answer": answer,
        "answer_type": kind,
        "input_subset": "False",
        "num_labels": 2,
        "context_window_id": 7,
    }


@pytest.mark.parametrize(
    "raw, gold",
    [
        ("[47]", "47"),
        ("['spam']", "spam"),
        ("['more common than']", "more common than"),
        ("[datetime.date(2023, 1, 5)]", "01/05/2023"),
        ("[12345]", "12345"),
        ("not a literal", "not a literal"),
    ],
)
def test_synth_gold_literals(raw, gold):
    assert hf.synth_gold(raw) == gold


def test_synth_rows_map_to_examples():
    rows = [synth_row(1), synth_row(3, answer="['ham']", kind="ANSWER_TYPE.LABEL")]
    examples = hf.synth_examples(rows, "synth_with_labels", 1024)
    assert [e.id for e in examples] == ["ool-hf-1", "ool-hf-3"]  # in the order drawn
    first, label = examples
    assert first.context.endswith("|| Label: ham") and first.target == "3"
    assert first.info["context_tokens"] == len(first.context) // 4
    assert label.info["answer_type"] == "label" and label.target == "ham"
    assert set(first.info) == INFO | {"task_group"}
    assert "Label" not in hf.synth_examples(rows, "synth", 1024)[0].context


@pytest.mark.parametrize("column, value", [("context_window_text", None), ("question", 7), ("question", "")])
def test_a_malformed_row_is_a_one_line_error(column, value):
    with pytest.raises(EnvError) as info:
        hf.synth_examples([dict(synth_row(5), **{column: value})], "synth", 1024)
    assert str(info.value) == f"oolongbench/oolong-synth row '5': {column} is not a non-empty text"


def test_real_rows_map_to_examples():
    rows = [
        {
            "id": "a",
            "context_window_id": 1,
            "context_window_text": "x" * 400,
            "question": "How many rolls?",
            "answer": "12",
        },
        {
            "id": "b",
            "context_window_id": 1,
            "context_window_text": "x" * 400,
            "question": "Who cast spells? Answer in \\boxed{}.",
            "answer": "Laura, Sam",
        },
    ]
    examples = {e.id: e for e in hf.real_examples(rows)}
    assert examples["ool-real-a"].question.endswith("\\boxed{}.")
    assert examples["ool-real-a"].info["answer_type"] == "numeric"
    assert examples["ool-real-b"].info["answer_type"] == "list"
    assert examples["ool-real-b"].info["context_len"] == examples["ool-real-b"].info["context_tokens"] == 100
    assert set(examples["ool-real-a"].info) == INFO


def test_the_sample_is_uniform_over_the_split_and_grows_by_adding():
    rows = range(100)  # sorted by size, as the data is: a head would be the smallest contexts
    assert hf.sample(rows, 5, seed=3) == hf.sample(rows, 20, seed=3)[:5]  # more examples keep the first ones
    assert hf.sample(rows, 5, seed=3) != hf.sample(rows, 5, seed=4)
    assert sorted(hf.sample(rows, 200, seed=3)) == list(rows)  # no row twice, none left out
    hits = [0] * 100
    for seed in range(2000):
        for i in hf.sample(rows, 5, seed):
            hits[i] += 1
    assert 50 < min(hits) and max(hits) < 150  # each row 100 times on average: the tail as often as the head
    with pytest.raises(EnvError, match="no things rows"):
        hf.sample([], 5, seed=0, what="things")


def test_online_source_samples_the_whole_split(tmp_path):
    synth_rows = [synth_row(i, context_len=1024 if i % 2 else 2048) for i in range(100)]
    real_rows = [
        {
            "id": f"r{i}",
            "context_window_id": 1,
            "context_window_text": "x" * (400 + i),
            "question": f"Q{i}?",
            "answer": str(i),
            "question_type": "counting",
        }
        for i in range(30)
    ]
    repos = {
        hf.SYNTH: {"default": {"test": synth_rows, "validation": [synth_row(500)]}},
        hf.REAL: {"dnd": {"validation": real_rows, "test": real_rows[:1]}, "toy_dnd": {"validation": real_rows[:1]}},
    }
    synth_args = {"source": "hf", "subset": "synth", "context_len": "1024"}
    real_args = {"source": "hf", "split": "validation"}  # the default subset is real
    with FakeHub(repos) as hub:
        synth, more, real = load_examples(
            hub, tmp_path, [("oolong", synth_args, 3, 0), ("oolong", synth_args, 6, 0), ("oolong", real_args, 5, 0)]
        )
    matching = [i for i, r in enumerate(synth_rows) if r["context_len"] == 1024]
    picked = hf.sample(matching, 3, seed=0)
    assert synth == [asdict(e) for e in hf.synth_examples([synth_rows[i] for i in picked], "synth", 1024)]
    assert more[:3] == synth  # the same examples whatever the count
    assert max(picked) > 2 * 16  # drawn from the whole split, not its head
    assert all(e["info"]["context_len"] == 1024 and e["info"]["source"] == "hf" for e in synth)
    picked_real = hf.sample(range(len(real_rows)), 5, seed=0)
    assert real == [asdict(e) for e in hf.real_examples([real_rows[i] for i in picked_real])]


@pytest.mark.parametrize("subset", ["synth", "real"])
def test_online_rows_run_through_the_scripted_model(tmp_path, subset):
    row = dict(synth_row(1), context_window_text="Intro\nLaura: That's a 12.\nDM: Roll.\nSam: Natural 20!\n" * 5)
    with FakeHub({hf.SYNTH: {"default": {"test": [row]}}, hf.REAL: {"dnd": {"test": [row]}}}) as hub:
        proc = rlm_tui(
            hub,
            tmp_path,
            *ONLINE_RUN,
            "--env-arg",
            f"subset={subset}",
            "--env-arg",
            "context_len=1024",
        )
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip().splitlines()[-1]
    stored = fold([e for _, e in read_events(open_db(tmp_path / "t.db"), run_id=run_id)], run_id)
    (r,) = stored.rollouts.values()
    assert r.status == "done" and r.answer["ready"] and r.reward is not None  # the stand-in cannot solve online rows
    assert r.example_id == ("ool-real-1" if subset == "real" else "ool-hf-1")


@pytest.mark.parametrize(
    "errors, reason",
    [
        pytest.param({"/": 404}, "FileNotFoundError: ", id="404"),
        pytest.param({"/api/": 500}, "HfHubHTTPError: Server error '500", id="500"),
    ],
)
def test_online_source_failures_are_one_line(tmp_path, errors, reason):
    with FakeHub({hf.SYNTH: {"default": {"test": [synth_row(1)]}}}, errors=errors) as hub:
        proc = rlm_tui(hub, tmp_path, *ONLINE_RUN)
    (line,) = proc.stderr.strip().splitlines()  # one line, no traceback
    assert proc.returncode == 2
    assert line.startswith(f"rlm-tui: error: could not load oolongbench/oolong-synth (test): {reason}")


def test_an_unreachable_hub_fails_at_once_with_the_reason(tmp_path):
    with FakeHub({hf.SYNTH: {"default": {"test": [synth_row(1)]}}}) as hub:
        proc = rlm_tui(hub, tmp_path, *ONLINE_RUN, HF_ENDPOINT="http://127.0.0.1:9")  # nothing listens on port 9
    (line,) = proc.stderr.strip().splitlines()
    assert proc.returncode == 2
    assert line.startswith("rlm-tui: error: cannot reach the Hugging Face hub at http://127.0.0.1:9 within 5 s (")
    assert "HF_HUB_OFFLINE=1" in line


def test_online_source_without_the_datasets_package(tmp_path):
    proc = rlm_tui_without_datasets(
        tmp_path,
        "run",
        "oolong",
        "--headless",
        "-n",
        "1",
        "--model",
        "scripted",
        "--env-arg",
        "source=hf",
        "--env-arg",
        "subset=synth",
        "--db",
        "t.db",
    )
    assert (proc.returncode, proc.stderr.strip()) == (
        2,
        "rlm-tui: error: loading oolongbench/oolong-synth needs the `datasets` package: pip install 'rlm-tui[online]'",
    )


# --- scripted runs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode, subset",
    [
        ("rlm", "synth"),
        ("rlm-tips", "synth"),
        ("llm", "synth"),
        ("rlm", "synth_with_labels"),
        ("rlm", "real"),
        ("llm", "real"),
    ],
)
def test_scripted_runs(tmp_path, mode, subset):
    stored = execute(tmp_path, {"subset": subset, "context_len": "2048"}, mode=mode)
    assert stored.status == "done" and len(stored.rollouts) == 2
    for r in stored.rollouts.values():
        assert (r.stop_reason, r.reward) == ("answer_ready", 1.0)
        record = rollout_record(stored, r)
        assert set(record["info"]) == INFO and record["info"]["subset"] == subset
        if mode == "llm":
            assert "<context>" in r.user_prompt and not r.batches
        else:
            assert "<context>" not in r.user_prompt and r.batches[0].size >= 4
            assert len([c for t in r.turns for c in t.cells]) == 5 and r.answer_history[-1][1] is True
    assert ("<env_tips>" in next(iter(stored.rollouts.values())).user_prompt) == (mode == "rlm-tips")
