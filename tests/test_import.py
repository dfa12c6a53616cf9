"""`rlm-tui import`: each tool's log becomes a run that show, export, report, diff and the app read unchanged;
a bad file is one line naming its line and leaves the store as it was."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from pilot import until
from rlm_tui.cli import main
from rlm_tui.engine.replies import count_tokens
from rlm_tui.importers import lines as lines_module
from rlm_tui.importers import read_log
from rlm_tui.store import list_runs
from rlm_tui.tui.app import RlmApp
from rlm_tui.tui.screens.rollout import RolloutScreen

FIXTURES = Path(__file__).parent / "fixtures" / "import"
SEED = {"generation_ms", "scoring_ms", "total_ms", "turns", "prompt_tokens", "completion_tokens"}


@pytest.fixture
def rlm(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RLM_TUI_DB", raising=False)

    def rlm(*args: str, code: int = 0) -> tuple[str, str]:
        capfd.readouterr()
        returned = main([*args, "--db", str(tmp_path / "t.db")])
        out, err = capfd.readouterr()
        assert returned == code, err
        return out, err

    return rlm


def fixture(tmp_path: Path, name: str) -> str:
    """A copy of the fixture in the test's directory, with verifiers' metadata.json beside it."""
    shutil.copy(FIXTURES / name, tmp_path / name)
    shutil.copy(FIXTURES / "metadata.json", tmp_path / "metadata.json")
    return str(tmp_path / name)


def exported(rlm, run_id: str) -> list[dict]:
    out, _ = rlm("export", run_id)
    return [json.loads(line) for line in out.splitlines()]


def test_sniffing_tells_each_format_from_its_first_record():
    from rlm_tui.importers import sniff
    from rlm_tui.importers.lines import read_lines

    for name, fmt in (("rlms.jsonl", "rlms"), ("results.jsonl", "verifiers"), ("rlm_code.jsonl", "rlm-code")):
        lines, _ = read_lines(FIXTURES / name, name)
        assert sniff(lines[0]) == fmt
    run = read_log(FIXTURES / "rlm_code.jsonl", "rlm_code.jsonl")
    assert run.events[0].env == "import:rlm-code"


def test_an_rlms_log_imports_its_completions_as_rollouts_and_every_reader_takes_them(tmp_path, rlm):
    out, err = rlm("import", fixture(tmp_path, "rlms.jsonl"))
    run_id = out.strip()
    assert f"run {run_id}, 2 rollouts" in err
    records = exported(rlm, run_id)
    first, second = records
    assert [len({t["index"] for t in r["turns"]}) for r in records] == [2, 1]  # final_answer separates completions
    assert first["answer"] == {"content": "42", "ready": True} and second["answer"]["content"] == "2, 3, 5, 7, 11"
    # a plain-string prompt of a known length: its tokens are counted with tiktoken, and marked estimated
    assert second["metrics"]["main_rlm_prompt_tokens"] == count_tokens("Name the first 5 primes.") == 7
    call = second["sub_llm_calls"][0]
    assert (call["prompt_tokens"], call["completion_tokens"]) == (300, 20)  # the library's own usage
    assert [t["name"] for t in call["tool_calls"]] == ["child_iteration", "child_iteration"]  # the nested turns
    assert call["tool_calls"][0]["arguments"]["code"] == "print([2,3,5,7,11])"
    assert second["turns"][0]["error"] == "NameError: name 'x' is not defined"
    assert SEED <= set(first["metrics"]) and first["metrics"]["turns"] == 2
    assert first["metrics"]["total_ms"] == pytest.approx(5000, abs=1)  # 11:05:04 (2 s before the first line) to :09

    db = sqlite3.connect(tmp_path / "t.db")
    (data,) = db.execute("SELECT data FROM events WHERE kind = 'model_call_finished' LIMIT 1").fetchone()
    assert json.loads(data)["tokens_estimated"] is True
    (config,) = db.execute("SELECT config FROM runs").fetchone()
    assert json.loads(config)["imported_from"]["format"] == "rlms"

    shown, _ = rlm("show", f"{run_id}-r001")
    assert "llm_batch #0" in shown and "2, 3, 5, 7, 11" in shown
    runs, _ = rlm("runs")
    assert "import:rlms" in runs
    diff, _ = rlm("diff", f"{run_id}-r000", f"{run_id}-r001")
    assert "answer" in diff


def test_a_verifiers_results_file_keeps_its_rewards_timing_and_token_totals(tmp_path, rlm):
    run_id = rlm("import", fixture(tmp_path, "results.jsonl"))[0].strip()
    first, second = exported(rlm, run_id)
    assert first["model"] == "qwen3-8b" and first["reward"] == 1.0 and second["reward"] == 0.0
    assert first["turns"][0]["code"] == "print(6 * 7)" and first["turns"][0]["output"] == "42"
    assert second["turns"][0]["code"] == "answer['content'] = str(2 + 2)"  # a tool call stored as a JSON string
    m = first["metrics"]
    assert (m["generation_ms"], m["scoring_ms"], m["total_ms"]) == (3000.0, 250.0, 3250.0)
    assert (m["prompt_tokens"], m["completion_tokens"], m["turns"]) == (310, 25, 2)
    assert second["metrics"]["total_ms"] == 1100.0  # the older flat columns
    assert first["metrics"]["wall_time_seconds"] == pytest.approx(3.25)
    report, _ = rlm("report", run_id)
    assert "import:verifiers" in report and "0.500" in report and "not run by rlm-tui" in report


def test_an_rlm_code_trajectory_keeps_its_logged_tokens_and_sub_calls(tmp_path, rlm):
    run_id = rlm("import", fixture(tmp_path, "rlm_code.jsonl"), "--format", "rlm-code")[0].strip()
    (record,) = exported(rlm, run_id)
    assert record["model"] == "gpt-4o" and record["answer"] == {"content": "Sentiment is positive", "ready": True}
    assert [t["code"] for t in record["turns"]] == ["print(len(context))", "s = llm_query('Summarize...')"]
    assert record["turns"][0]["output"] == "45230" and record["turns"][0]["elapsed_s"] == 0.015
    assert record["metrics"]["main_rlm_prompt_tokens"] >= 500  # 500 logged on turn 1, turn 2 estimated
    (call,) = record["sub_llm_calls"]
    assert (call["prompt"], call["response"], call["prompt_tokens"], call["completion_tokens"]) == (
        "Summarize...",
        "This discusses...",
        500,
        200,
    )


async def test_the_app_replays_an_imported_run(tmp_path):
    from rlm_tui.commands.import_ import cmd_import

    db = tmp_path / "app.db"
    import argparse

    cmd_import(argparse.Namespace(files=[fixture(tmp_path, "rlms.jsonl")], format=None, db=str(db)))
    (row,) = list_runs(db)
    rollout = f"{row['id']}-r001"
    app = RlmApp(db, run_id=row["id"], rollout_id=rollout, follow=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await until(pilot, lambda: app.session.replay is not None)
        assert isinstance(app.screen, RolloutScreen)
        await pilot.press("G")
        await until(pilot, lambda: app.session.feed.state.rollouts[rollout].status == "done")
        r = app.session.feed.state.rollouts[rollout]
        assert len(r.turns) == 1 and r.answer["content"] == "2, 3, 5, 7, 11" and len(r.batches) == 1


BAD = [
    ("rlms", '{"type": "metadata"}\n{"type": "iteration", "response": "x", \n', "bad.jsonl line 2: not JSON"),
    ("rlms", '{"type": "metadata"}\n{"type": "iteration", "code_blocks": "no"}\n', "bad.jsonl line 2: `code_blocks`"),
    ("rlms", '{"type": "iteration", "iteration_time": -1}\n', "bad.jsonl line 1: `iteration_time`"),
    ("rlms", '{"type": "mystery"}\n', "bad.jsonl line 1: unknown record type"),
    (None, '{"x": 1}\n', "bad.jsonl line 1: not a log of rlms, verifiers or rlm-code"),
    (None, "[1, 2]\n", "bad.jsonl line 1: expected a JSON object"),
    (None, "\n\n", "bad.jsonl: the file holds no records"),
    ("verifiers", '{"prompt": [], "completion": [{"content": "x"}]}\n', "bad.jsonl line 1: `completion[0]`"),
    ("rlm-code", '{"timestamp": 1.0, "run_id": "a"}\n', "bad.jsonl line 1: `event_type` is missing"),
    (None, '{"type": "iteration", "reward": NaN}\n', "bad.jsonl line 1: not JSON (NaN"),
]


@pytest.mark.parametrize(("fmt", "text", "message"), BAD)
def test_a_bad_file_is_one_line_naming_its_line_and_nothing_is_stored(tmp_path, rlm, fmt, text, message):
    good = fixture(tmp_path, "results.jsonl")
    rlm("import", good)
    before = sqlite3.connect(tmp_path / "t.db").execute("SELECT count(*) FROM events").fetchone()
    (tmp_path / "bad.jsonl").write_text(text)
    # the good file before it is not stored either: all files or none
    same = {"verifiers": "results.jsonl", "rlm-code": "rlm_code.jsonl"}.get(fmt or "", "rlms.jsonl")
    args = ["import", fixture(tmp_path, same), "bad.jsonl", *(["--format", fmt] if fmt else [])]
    _, err = rlm(*args, code=2)
    assert err.startswith(f"rlm-tui: error: {message}") and err.count("\n") == 1
    after = sqlite3.connect(tmp_path / "t.db").execute("SELECT count(*) FROM events").fetchone()
    assert after == before


def test_a_line_over_the_limit_and_a_second_import_are_refused(tmp_path, rlm, monkeypatch):
    path = fixture(tmp_path, "rlm_code.jsonl")
    monkeypatch.setattr(lines_module, "MAX_LINE_BYTES", 100)
    _, err = rlm("import", path, code=2)
    assert "rlm_code.jsonl line 1: longer than the 100 bytes a record may have" in err
    monkeypatch.undo()
    run_id = rlm("import", path)[0].strip()
    _, err = rlm("import", path, code=2)
    assert f"is imported already, as run {run_id}" in err
