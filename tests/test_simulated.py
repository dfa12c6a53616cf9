"""The simulated (scripted) model: seeded, and it slips for the reasons a real model does, never by the target."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import defaultdict
from contextlib import closing

import Levenshtein
import pytest

from rlm_tui.cli import main
from rlm_tui.engine import prompts
from rlm_tui.engine.rollout import RolloutSettings
from rlm_tui.engine.run import Run, RunConfig
from rlm_tui.engine.scripted import REPL_TOOL, ScriptedClient
from rlm_tui.engine.simulated import (
    CELL_SLIP_RATE,
    COPY_ERROR_RATE,
    LABEL,
    SUB_FAILURE_RATE,
    Simulation,
    copy_with_errors,
    fit_window,
    slip,
)
from rlm_tui.env import Example, load_environment
from rlm_tui.headless import model_label
from rlm_tui.store import EventWriter, open_db, read_events
from runs import stored_run

REPL = [{"type": "function", "function": {"name": REPL_TOOL, "description": "", "parameters": {}}}]
NOT_COMPARED = re.compile(r"(^id$|_id$|_ids$|_s$|^ts$|seconds)")  # ids and times: the rest of a log must repeat


def verbatim(length: int = 400):
    return load_environment("verbatim-copy", {"target_length": str(length)})


def random_text(length: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice("abcdefghij klmnopqrstuvwxyz,.") for _ in range(length))


def folder(tmp_path, name: str):
    (tmp_path / name).mkdir()
    return tmp_path / name


def complete(rollout, messages, tools=None):
    return asyncio.run(rollout.complete("scripted", messages, tools))


# --- labelled ----------------------------------------------------------------------------------


def test_the_scripted_model_is_described_as_a_simulated_model():
    client = ScriptedClient(verbatim(), simulation=Simulation(seed=3, window=8000, errors=0.5))
    assert client.label == LABEL == "simulated model"
    assert client.describe() == "simulated model (seed 3, 8,000-token window, error scale 0.5)"
    assert model_label("scripted") == "scripted (simulated model)" and model_label("gpt-5-mini") == "gpt-5-mini"


# --- seeded ------------------------------------------------------------------------------------


def comparable(value):
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if not NOT_COMPARED.search(k)}
    return [comparable(v) for v in value] if isinstance(value, list | tuple) else value


def event_log(tmp_path, env, simulation, *, mode, n=3):
    """Each example's events, ids and times left out; concurrent sub-calls may finish in any order, so sorted."""
    db = tmp_path / f"{mode}-{simulation.seed}.db"  # one folder per log: a run's database and its WAL
    writer = EventWriter(db)
    writer.start()
    args = {k: str(v) for k, v in env.args.items()}
    config = RunConfig(env=env.name, env_args=args, num_examples=n, rollout=RolloutSettings(mode=mode, timeout=30))
    run = Run(config, env, ScriptedClient(env, simulation=simulation), [writer.append])
    asyncio.run(run.execute())
    writer.close()
    with closing(open_db(db)) as conn:
        events = [e for _, e in read_events(conn, run_id=run.id)]
    example_of = {e.rollout_id: e.example_id for e in events if e.kind == "rollout_queued"}
    logs: dict[str, list[str]] = defaultdict(list)
    for e in events:
        if e.rollout_id is not None:
            logs[example_of[e.rollout_id]].append(json.dumps([e.kind, comparable(e.payload())], sort_keys=True))
    return {example: sorted(log) for example, log in logs.items()}


@pytest.mark.parametrize("mode", ["rlm", "llm"])
def test_the_same_seed_repeats_a_run_and_another_seed_differs(tmp_path, mode):
    env = verbatim(1500)  # long enough that llm-mode copies slip: 1.5 errors each on average
    first = event_log(folder(tmp_path, "a"), env, Simulation(seed=1, errors=3), mode=mode)
    again = event_log(folder(tmp_path, "b"), env, Simulation(seed=1, errors=3), mode=mode)
    other = event_log(folder(tmp_path, "c"), env, Simulation(seed=2, errors=3), mode=mode)
    assert len(first) == 3 and first == again
    assert other != first


# --- llm mode: the window and copy errors ---------------------------------------------------------


def test_a_prompt_past_the_window_is_read_up_to_where_the_window_is_full():
    question, context, system = "q" * 100, "c" * 200_000, "s" * 50
    example = Example(id="x", question=question, target=None, context=context)
    user = f"{question}\n\n<context>\n{context}\n</context>"
    seen, cut = fit_window(example, [{"role": "system", "content": system}, {"role": "user", "content": user}], 10_000)
    # 10,000 tokens of 4 characters: 40,000 characters, less the system prompt, question and the two tags
    assert cut and seen.question == question and seen.context == "c" * (40_000 - 50 - 100 - 12 - 11)
    small = Example(id="y", question=question, target=None, context="c" * 100)
    assert fit_window(small, [{"role": "user", "content": question + "c" * 100}], 10_000) == (small, False)


def test_llm_mode_past_the_window_copies_only_the_head(tmp_path):
    env = verbatim(200_000)  # 50,000 tokens of text: past the default 32,000-token window
    system = prompts.llm_system_prompt([])
    prefix = len("Copy the text inside the tags below exactly, character for character, with no other words.\n<text>")
    expected = 32_000 * 4 - len(system) - prefix
    client = ScriptedClient(env, simulation=Simulation(errors=0))
    state, _ = stored_run(folder(tmp_path, "short"), env, client, mode="llm")
    (r,) = state.rollouts.values()
    assert r.answer["content"] == r.target[:expected] and r.reward == 0.0
    wide = ScriptedClient(env, simulation=Simulation(window=100_000, errors=0))
    state, _ = stored_run(folder(tmp_path, "wide"), env, wide, mode="llm")
    assert [r.reward for r in state.rollouts.values()] == [1.0]


@pytest.mark.parametrize(("length", "rate", "errors"), [(1000, 0.005, 5), (2000, 0.005, 10), (4000, 0.005, 20)])
def test_copy_errors_are_the_length_times_the_rate(length, rate, errors):
    text = random_text(length)
    for seed in range(5):
        copy = copy_with_errors(text, random.Random(seed), rate)
        assert Levenshtein.distance(text, copy) == errors
        assert len(text) - len(copy) < errors  # some are substitutions, not only drops


def test_a_fractional_error_count_rounds_either_way_with_the_right_mean():
    text = random_text(300)  # 1.5 errors expected at rate 0.005: 1 or 2, half the time each
    counts = [Levenshtein.distance(text, copy_with_errors(text, random.Random(s), 0.005)) for s in range(2000)]
    assert set(counts) == {1, 2} and abs(sum(counts) / len(counts) - 1.5) < 0.05


def test_verbatim_copy_in_llm_mode_makes_errors_that_grow_with_length(tmp_path):
    for length in (2000, 4000):  # at COPY_ERROR_RATE 0.0005: exactly 1 and 2 errors in each copy
        env = verbatim(length)
        state, _ = stored_run(folder(tmp_path, str(length)), env, ScriptedClient(env), mode="llm", n=3)
        distances = [Levenshtein.distance(r.target, r.answer["content"]) for r in state.rollouts.values()]
        assert distances == [round(length * COPY_ERROR_RATE)] * 3
        assert all(r.reward == 0.0 for r in state.rollouts.values())


# --- rlm modes: mistakes in cells, fixed on the next turn ----------------------------------------------


def test_a_slipped_cell_raises_before_it_does_anything():
    code = 'x = 1\ny = x + 1\nprint(f"y is {y}")'
    for seed in range(40):
        mistaken = slip(code, random.Random(seed))
        assert mistaken is not None and mistaken != code
        namespace: dict = {}
        with pytest.raises((NameError, SyntaxError)):
            exec(mistaken, namespace)
        assert "y" not in namespace
    assert slip("print(1", random.Random(0)) is None  # what does not parse has nothing to get wrong


def test_an_rlm_run_errs_then_runs_the_fixed_cell(tmp_path):
    env = verbatim()
    plan = env.scripted_cells(env.examples(1, 0)[0], "rlm")
    client = ScriptedClient(env, simulation=Simulation(errors=1 / CELL_SLIP_RATE["rlm"]))  # every cell slips once
    state, _ = stored_run(tmp_path, env, client, mode="rlm")
    (r,) = state.rollouts.values()
    cells = [c for t in r.turns for c in t.cells]
    assert len(cells) == 2 * len(plan) and r.reward == 1.0
    for i, step in enumerate(plan):
        wrong, fixed = cells[2 * i], cells[2 * i + 1]
        assert wrong.code != step and re.match(r"(NameError|SyntaxError)", wrong.error or "")
        assert fixed.code == step and fixed.error is None
        reason = wrong.error.split(":")[0]
        assert r.turns[2 * i + 1].text.startswith(f"Step {i + 1} failed ({reason}")


@pytest.mark.parametrize("mode", ["rlm", "rlm-tips"])
def test_cells_slip_at_the_modes_rate(mode):
    env, n = verbatim(), 2000
    client = ScriptedClient(env, simulation=Simulation(seed=5))
    example = env.examples(1, 0)[0]
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": example.question}]
    slipped = 0
    for i in range(n):
        rollout = client.for_rollout(Example(id=f"e{i}", question=example.question, target=None), mode)
        code = json.loads(complete(rollout, messages, REPL).tool_calls[0]["arguments"])["code"]
        slipped += code != rollout.cells[0]
    assert abs(slipped / n - CELL_SLIP_RATE[mode]) < 0.03  # 4 standard errors at most
    assert CELL_SLIP_RATE["rlm-tips"] < CELL_SLIP_RATE["rlm"]


# --- sub-LLMs ------------------------------------------------------------------------------------


def test_sub_llms_fail_at_the_rate_whatever_order_they_are_called_in():
    env, n = verbatim(), 4000
    rollout = ScriptedClient(env, simulation=Simulation(seed=9)).for_rollout(env.examples(1, 0)[0], "rlm")
    prompts_ = [f"Copy exactly.\n<text>chunk {i} of the text</text>" for i in range(n)]
    replies = [complete(rollout, [{"role": "user", "content": p}]).text for p in prompts_]
    failed = sum(reply != f"chunk {i} of the tex" for i, reply in enumerate(replies))
    assert abs(failed / n - SUB_FAILURE_RATE) < 0.015  # 4 standard errors at most
    assert "" in replies  # empty replies, and garbled ones
    assert [complete(rollout, [{"role": "user", "content": p}]).text for p in reversed(prompts_)] == replies[::-1]
    exact = ScriptedClient(env, simulation=Simulation(seed=9, errors=0)).for_rollout(env.examples(1, 0)[0], "rlm")
    assert all(complete(exact, [{"role": "user", "content": p}]).text.startswith("chunk") for p in prompts_[:200])


# --- the offline ablation --------------------------------------------------------------------------


def test_an_offline_ablation_of_verbatim_copy_is_not_flat(tmp_path, monkeypatch, capfd):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["ablate", "verbatim-copy", "--modes", "llm,rlm,rlm-tips", "-n", "10", "--db", "t.db"]) == 0
    means = dict(re.findall(r"verbatim-copy (\S+) .*mean reward ([\d.]+)", capfd.readouterr().err))
    assert set(means) == {"llm", "rlm", "rlm-tips"}
    assert float(means["llm"]) < 1.0 and float(means["rlm"]) == float(means["rlm-tips"]) == 1.0
    assert (
        main(["ablate", "verbatim-copy", "--modes", "llm", "-n", "10", "--db", "e.db", "--scripted-errors", "0"]) == 0
    )
    assert re.search(r"llm .*mean reward 1\.000", capfd.readouterr().err)


def test_the_run_records_the_simulation_so_resume_and_fork_play_the_same_model(tmp_path):
    from rlm_tui.engine.simulated import Simulation
    from rlm_tui.store import list_runs

    db = tmp_path / "s.db"
    argv = ["run", "verbatim-copy", "--headless", "-n", "1", "--scripted-window", "1234", "--scripted-errors", "0"]
    assert main([*argv, "--db", str(db)]) == 0
    (run,) = list_runs(open_db(db))
    config = RunConfig.from_dict(run["config"])
    assert config.simulation == {"window": 1234, "errors": 0.0}
    assert Simulation.recorded(7, config.simulation) == Simulation(seed=7, window=1234, errors=0.0)
    for damaged in (None, "x", {"window": "big", "errors": -1}, {"window": True, "errors": float("nan")}):
        assert Simulation.recorded(7, damaged) == Simulation(seed=7)  # a damaged record plays the default model
