"""Budgets and cost end to end: the real CLI, engine, jail and openai client against a local server that reports
usage; every dollar figure checked against prices computed by hand."""

from __future__ import annotations

import json
import re

import pytest

from fake_openai import FakeOpenAI, Reply, code_call, is_root
from rlm_tui.engine.prices import Price, PriceError, load, parse_price
from rlm_tui.store import open_db, read_events
from test_fork import cli, stored_runs

# per turn: the root sends 1,000 prompt tokens (400 of them cached) and gets 100; the cell asks two sub-LLMs,
# each 300 prompt and 30 completion tokens
ROOT_USAGE = {"prompt_tokens": 1000, "completion_tokens": 100, "prompt_tokens_details": {"cached_tokens": 400}}
SUB_USAGE = {"prompt_tokens": 300, "completion_tokens": 30}
PRICES = ["--price", "root=2,0.5,8", "--price", "sub=1,4"]  # USD per million tokens
ROOT_CALL = (600 * 2 + 400 * 0.5 + 100 * 8) / 1e6  # 0.0022
SUB_CALL = (300 * 1 + 30 * 4) / 1e6  # 0.00042
TURN = ROOT_CALL + 2 * SUB_CALL  # 0.00304


def costly(body):
    if is_root(body):
        return Reply(
            tool_calls=code_call('print(llm_batch(["a", "b"]))').tool_calls, usage=ROOT_USAGE
        )  # never answers: only a budget or max_turns ends it
    return Reply(content="ok", usage=SUB_USAGE)


def run(capsys, server, db, *extra, n=2):
    argv = ["run", "verbatim-copy", "--headless", "-n", str(n), "--model", "root", "--sub-model", "sub"]
    argv += ["--base-url", server.base_url, "--timeout", "20", "--db", str(db), *PRICES, *extra]
    return cli(capsys, *argv)


def records(capsys, db):
    code, out, err = cli(capsys, "export", "--db", str(db))
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


def test_a_dollar_budget_stops_every_rollout_with_the_total_priced_by_hand(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    db = tmp_path / "b.db"
    with FakeOpenAI(costly) as server:
        code, _, err = run(capsys, server, db, "--max-usd", "0.01", "--max-turns", "30")
    assert code == 0, err
    (state,) = stored_runs(db)
    for r in state.rollouts.values():
        # after 3 turns $0.00912 is under the budget; the 4th root call makes $0.01132, so its cell's batch is
        # refused and the 5th call is never made
        assert (r.status, r.stop_reason, len(r.turns), r.sub_calls) == ("done", "budget_usd", 4, 6)
        assert r.error == "the rollout's budget of $0.0100 is spent ($0.0113 used)"
        assert r.turns[3].cells[0].output.startswith("[\"[llm_batch error] not started: the rollout's budget")
        assert r.main_cost_usd == pytest.approx(4 * ROOT_CALL)
        assert r.sub_cost_usd == pytest.approx(6 * SUB_CALL)
        assert r.reward is not None  # scored as it stands
    for record in records(capsys, db):
        assert record["metrics"]["total_cost_usd"] == pytest.approx(3 * TURN + ROOT_CALL)
        assert record["metrics"]["main_rlm_cost_usd"] == pytest.approx(4 * ROOT_CALL)

    each = 3 * TURN + ROOT_CALL  # $0.01132
    code, out, _ = cli(capsys, "runs", "--db", str(db))
    assert code == 0 and f"${2 * each:.4f}" in out  # $0.0226 for the run
    code, out, _ = cli(capsys, "show", next(iter(state.rollouts)), "--db", str(db))
    assert f"cost ${each:.4f} (main ${4 * ROOT_CALL:.4f}, sub ${6 * SUB_CALL:.4f})" in out
    code, out, err = cli(capsys, "report", state.id, "--out", str(tmp_path / "figs"), "--db", str(db))
    assert code == 0, err
    text = " ".join(re.sub(r"[\u2500-\u257f]", " ", out).split())
    mean = sum(r.reward for r in state.rollouts.values()) / 2
    row = f"verbatim-copy rlm 2 0 ${4 * ROOT_CALL:.4f} ${6 * SUB_CALL:.4f} ${each:.4f} $0.0000 {mean / each:.2f}"
    assert "Cost per rollout (mean USD, priced rollouts only)" in text and row in text
    assert (tmp_path / "figs" / "cost.png").stat().st_size > 0


def test_a_sub_llm_batch_that_would_cross_the_calls_budget_is_refused_in_the_repl(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    db = tmp_path / "c.db"
    with FakeOpenAI(costly) as server:
        code, _, err = run(capsys, server, db, "--max-sub-calls", "3", "--max-turns", "3", n=1)
        requests = len(server.requests)
    assert code == 0, err
    ((r,),) = [list(s.rollouts.values()) for s in stored_runs(db)]
    outputs = [c.output for t in r.turns for c in t.cells]
    assert outputs[0] == "['ok', 'ok']\n"
    refused = "[llm_batch error] not started: 2 calls would cross the rollout's budget of 3 sub-LLM calls (1 left)"
    assert outputs[1:] == [f"[{refused!r}, {refused!r}]\n"] * 2
    assert (r.sub_calls, r.stop_reason, requests) == (2, "max_turns", 3 + 2)  # 3 root calls, 2 sub calls


def test_a_run_budget_stops_all_its_rollouts(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    db = tmp_path / "r.db"
    with FakeOpenAI(costly) as server:
        code, _, err = run(capsys, server, db, "--run-max-tokens-total", "5000", "--concurrency", "1", n=3)
    assert code == 0, err
    (state,) = stored_runs(db)
    reasons = sorted((r.stop_reason, r.error) for r in state.rollouts.values())
    # one rollout at a time: each turn is 1,100 + 2 x 330 = 1,760 tokens; the first rollout's 3rd turn passes 5,000
    first = next(r for r in state.rollouts.values() if r.index == 0)
    assert len(first.turns) == 3
    assert all(reason == "budget_tokens" and "the run's budget of 5,000 tokens" in error for reason, error in reasons)
    assert sum(len(r.turns) for r in state.rollouts.values()) == 3  # the others stop before their first call


def test_the_providers_own_cost_wins_and_an_unpriced_model_costs_unknown_not_zero(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "k")

    def reported(body):
        if is_root(body):
            return Reply(
                tool_calls=code_call('answer.update(content="x", ready=True)').tool_calls,
                usage={**ROOT_USAGE, "cost": 0.125},
            )
        return Reply(content="ok")

    db = tmp_path / "p.db"
    with FakeOpenAI(reported) as server:
        code, _, err = run(capsys, server, db, n=1)
        assert code == 0, err
    with FakeOpenAI(costly) as server:  # usage, but no cost: the price table decides, and has no price
        argv = ["run", "verbatim-copy", "--headless", "-n", "1", "--model", "unpriced", "--base-url", server.base_url]
        code, _, err = cli(capsys, *argv, "--max-turns", "2", "--db", str(tmp_path / "u.db"))
        assert code == 0, err
    (priced,) = records(capsys, db)
    assert priced["metrics"]["main_rlm_cost_usd"] == 0.125  # the provider's figure, not 0.0022 from the table
    (unpriced,) = records(capsys, tmp_path / "u.db")
    assert "total_cost_usd" not in unpriced["metrics"] and "main_rlm_cost_usd" not in unpriced["metrics"]


def test_a_dollar_budget_without_prices_is_one_line_and_exit_2(tmp_path, capsys):
    argv = ["run", "verbatim-copy", "--headless", "-n", "1", "--max-usd", "1", "--db", str(tmp_path / "x.db")]
    code, _, err = cli(capsys, *argv)
    assert code == 2
    assert err.strip().splitlines()[-1:] == [
        "rlm-tui: error: a dollar budget needs prices, and scripted has none: add --price scripted=IN,OUT "
        "(USD per million tokens) or a --prices file"
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("gpt=1", "expected MODEL=INPUT,OUTPUT"),
        ("=1,2", "expected MODEL=INPUT,OUTPUT"),
        ("m=1,x", "numbers of USD"),
        ("m=-1,2", "0 to 100000"),
        ("m=nan,2", "0 to 100000"),
        ("m=1,2,3,4", "expected MODEL=INPUT,OUTPUT"),
    ],
)
def test_a_bad_price_is_refused(text, says):
    with pytest.raises(ValueError, match=says):
        parse_price(text)


def test_price_files_override_the_shipped_table_and_names_match_without_prefix_or_date(tmp_path):
    table = load()
    assert table.date and table.price_of("gpt-5-mini") == Price(input=0.25, cached_input=0.025, output=2.0)
    assert (
        table.price_of("openai/gpt-5-mini") == table.price_of("gpt-5-mini-2025-08-07") == table.price_of("gpt-5-mini")
    )
    assert table.price_of("no-such-model") is None
    user = tmp_path / "prices.json"
    user.write_text(json.dumps({"date": "2027-01-01", "models": {"gpt-5-mini": {"input": 9, "output": 9}}}))
    mine = load(str(user), (parse_price("local=0,0"),))
    assert mine.date == "2027-01-01" and mine.price_of("gpt-5-mini") == Price(input=9, output=9)
    assert mine.price_of("local") == Price(input=0, output=0) and mine.price_of("gpt-5") == table.price_of("gpt-5")
    for bad, says in [("[]", '"models"'), ('{"models": {"m": {"input": "1", "output": 1}}}', "input must be")]:
        user.write_text(bad)
        with pytest.raises(PriceError, match=says):
            load(str(user))


def test_resume_with_a_raised_budget_goes_on_from_where_the_budget_stopped(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    db = tmp_path / "g.db"
    with FakeOpenAI(costly) as server:
        code, _, err = run(capsys, server, db, "--max-usd", "0.01", n=1)
        assert code == 0, err
        (stopped,) = stored_runs(db)
        asked = len(server.requests)
        code, _, err = cli(capsys, "resume", stopped.id, "--max-usd", "0.02", "--db", str(db))
        assert code == 0, err
        new_requests = server.requests[asked:]
    (state,) = stored_runs(db)
    (r,) = state.rollouts.values()
    # $0.01132 when stopped; turns 5 and 6 add $0.00304 each ($0.0174), turn 7's call makes $0.0196, still under
    # the budget, so its batch runs: $0.02044, and the 8th call is never made
    assert len(new_requests) == 3 + 6  # the rebuild asked nothing: three new turns, two sub-LLMs each
    assert all(m["role"] != "assistant" for m in new_requests[0]["messages"][-1:])  # the conversation went on
    assert len(new_requests[0]["messages"]) == 2 + 4 * 2  # system, user, then the 4 stopped turns and replies
    assert (r.status, r.stop_reason, len(r.turns)) == ("done", "budget_usd", 7)
    assert r.cost_usd == pytest.approx(3 * TURN + ROOT_CALL + 3 * TURN)
    assert r.error == "the rollout's budget of $0.0200 is spent ($0.0204 used)"
    resumed = [e for e in read_events(open_db(db), run_id=state.id) if e[1].kind == "rollout_resumed"]
    ((_, event),) = resumed
    assert (event.turn, event.cells, event.diverged) == (5, 4, [])  # turn 4's refused batch is refused again
    code, _, err = cli(capsys, "resume", state.id, "--db", str(db))
    assert code == 0 and "nothing to resume" in err  # no budget raised: it stays as the budget left it
