"""Reports over a fixture database whose numbers are worked out by hand, and grids run end to end."""

from __future__ import annotations

import csv
import io
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI, Reply, code_call, is_root
from rlm_tui import events as ev
from rlm_tui.env import power_of_two_bin
from rlm_tui.report import stats
from rlm_tui.report.data import load_rows, resolve
from rlm_tui.store import EventWriter, open_db

RLM_TUI = str(Path(sys.executable).parent / "rlm-tui")

# (env, mode) -> per rollout: (reward, main prompt, main completion, sub prompt, sub completion, sub calls, wall, model, repl, info)
FIXTURE = {
    ("verbatim-copy", "llm"): [
        (1.0, 100, 50, 0, 0, 0, 2.0, 1.5, 0.0, {"content_type": "json"}),
        (0.0, 300, 50, 0, 0, 0, 4.0, 3.5, 0.0, {"content_type": "csv"}),
    ],
    ("verbatim-copy", "rlm"): [
        (1.0, 1000, 100, 400, 40, 4, 10.0, 5.0, 3.0, {"content_type": "json"}),
        (1.0, 1400, 100, 600, 60, 6, 12.0, 6.0, 5.0, {"content_type": "csv"}),
    ],
    ("oolong", "llm"): [
        (0.75, 5000, 10, 0, 0, 0, 3.0, 3.0, 0.0, {"subset": "synth", "context_len": 4096}),
        (0.25, 9000, 10, 0, 0, 0, 5.0, 5.0, 0.0, {"subset": "synth", "context_len": 8192}),
        (0.5, 7000, 10, 0, 0, 0, 4.0, 4.0, 0.0, {"subset": "real", "context_len": 8000}),
    ],
    ("oolong", "rlm-tips"): [
        (1.0, 2000, 200, 3000, 300, 8, 20.0, 8.0, 10.0, {"subset": "synth", "context_len": 4096}),
        (0.5, 2000, 200, 5000, 500, 12, 30.0, 9.0, 18.0, {"subset": "synth", "context_len": 8192}),
        (0.0, 2000, 200, 1000, 100, 4, 25.0, 7.0, 15.0, {"subset": "real", "context_len": 8000}),
    ],
}


def metrics(pp, pc, sp, sc, calls, wall, model, repl):
    return {
        "main_rlm_prompt_tokens": pp,
        "main_rlm_completion_tokens": pc,
        "sub_llm_prompt_tokens": sp,
        "sub_llm_completion_tokens": sc,
        "sub_llm_call_count": calls,
        "wall_time_seconds": wall,
        "model_time_seconds": model,
        "repl_total_time_seconds": repl,
    }


def write_runs(path, runs):
    """runs: (run_id, env, mode, model, config, [(reward, metrics, info), ...]) written through the store's writer."""
    writer = EventWriter(path)
    writer.start()
    for run_id, env, mode, model, config, rollouts in runs:
        writer.append(
            ev.RunStarted(
                run_id=run_id,
                env=env,
                mode=mode,
                model=model,
                sub_model=model,
                num_rollouts=len(rollouts),
                config=config,
            )
        )
        for i, (reward, numbers, info) in enumerate(rollouts):
            rid = f"{run_id}-{i}"
            writer.append(ev.RolloutQueued(run_id=run_id, rollout_id=rid, index=i, example_id=f"ex{i}", info=info))
            writer.append(
                ev.RolloutFinished(
                    run_id=run_id,
                    rollout_id=rid,
                    status="done",
                    stop_reason="answer_ready",
                    answer={"content": "", "ready": True},
                    reward=reward,
                    metrics=numbers,
                )
            )
        writer.append(ev.RunFinished(run_id=run_id, status="done"))
    writer.close()
    return path


def fixture_runs(model="m", config=None):
    return [
        (
            f"{env}-{mode}",
            env,
            mode,
            model,
            {"grid": "fixture", **(config or {})},
            [(reward, metrics(*numbers), info) for reward, *numbers, info in rollouts],
        )
        for (env, mode), rollouts in FIXTURE.items()
    ]


@pytest.fixture
def fixture_db(tmp_path):
    return write_runs(tmp_path / "fixture.db", fixture_runs())


def rows_of(path):
    db = open_db(path)
    return load_rows(db, resolve(db, ["fixture"])[1])


def cell(table, env, mode):
    (row,) = [r for r in table if r["env"] == env and r["mode"] == mode]
    return row


def test_reward_and_lift_by_hand(fixture_db):
    rows = rows_of(fixture_db)
    rewards = stats.reward_table(rows)
    assert [(r["env"], r["mode"]) for r in rewards] == [
        ("oolong", "llm"),
        ("oolong", "rlm-tips"),
        ("verbatim-copy", "llm"),
        ("verbatim-copy", "rlm"),
    ]
    llm = cell(rewards, "oolong", "llm")
    assert llm["reward"] == pytest.approx(0.5) and llm["n"] == 3
    assert llm["se"] == pytest.approx(0.25 / math.sqrt(3))  # sample sd of .75, .25, .5 is .25
    vc = cell(rewards, "verbatim-copy", "llm")
    assert (vc["reward"], vc["se"]) == (pytest.approx(0.5), pytest.approx(0.5))
    assert cell(rewards, "verbatim-copy", "rlm")["se"] == 0.0
    lift = stats.lift_table(rows)
    assert cell(lift, "verbatim-copy", "rlm")["lift"] == pytest.approx(0.5)
    assert cell(lift, "oolong", "rlm-tips")["lift"] == pytest.approx(0.0)
    assert cell(lift, "oolong", "rlm-tips")["se"] == pytest.approx(math.hypot(0.5 / math.sqrt(3), 0.25 / math.sqrt(3)))


def test_tokens_efficiency_timing_and_sub_calls_by_hand(fixture_db):
    rows = rows_of(fixture_db)
    tokens = cell(stats.token_table(rows), "verbatim-copy", "rlm")
    assert (tokens["main_prompt"], tokens["main_completion"], tokens["sub_prompt"], tokens["sub_completion"]) == (
        1200,
        100,
        500,
        50,
    )
    eff = stats.efficiency_table(rows)
    # verbatim-copy: llm 0.5 reward / 250 tokens; rlm 1.0 / 1300 -> (1/1300) / (0.5/250) = 250/650
    assert cell(eff, "verbatim-copy", "rlm")["relative_to_llm"] == pytest.approx(250 / 650)
    assert cell(eff, "verbatim-copy", "llm")["reward_per_1k_main_tokens"] == pytest.approx(2.0)
    timing = cell(stats.timing_table(rows), "oolong", "rlm-tips")
    assert (timing["wall"], timing["model"], timing["repl"], timing["other"]) == (
        pytest.approx(25.0),
        pytest.approx(8.0),
        pytest.approx(43 / 3),
        pytest.approx(25 - 8 - 43 / 3),
    )
    subs = cell(stats.sub_call_table(rows), "oolong", "rlm-tips")
    assert (subs["mean"], subs["median"], subs["max"], subs["share_with_calls"]) == (8, 8, 12, 1.0)
    assert cell(stats.sub_call_table(rows), "oolong", "llm")["share_with_calls"] == 0.0


def test_token_counts_read_the_same_in_the_report_the_terminal_and_the_app(fixture_db):
    from rich.console import Console

    from rlm_tui import headless
    from rlm_tui.report import render
    from rlm_tui.tui import fmt
    from rlm_tui.units import tokens

    assert [tokens(n) for n in (0, 9_999, 10_000, 12_345.6, 999_999, 1_000_000, 12_345_678, 1234.4)] == [
        "0",
        "9,999",
        "10.0k",
        "12.3k",
        "1.00M",
        "1.00M",
        "12.35M",
        "1,234",
    ]
    assert fmt.tokens is tokens and headless.tokens is tokens and render.tokens is tokens
    console = Console(record=True, width=200)
    for table in render.tables(rows_of(fixture_db)):
        console.print(table)
    (line,) = [x for x in console.export_text().splitlines() if "verbatim-copy" in x and "1,200" in x]
    # totals 1,540 and 2,160: mean 1,850, sd 620/√2, se 310, 95% CI ± 1.96 · 310 = 607.6
    assert line.replace("│", " ").split() == ["verbatim-copy", "rlm", "2", "1,200", "100", "500", "50", "1,850", "608"]


def test_slices_by_info(fixture_db):
    rows = rows_of(fixture_db)
    by_subset = stats.by_value(rows, "oolong", lambda r: r.info["subset"])
    real_tips = [r for r in by_subset if r["value"] == "real" and r["mode"] == "rlm-tips"][0]
    assert (real_tips["n"], real_tips["mean"]) == (1, 0.0)
    by_len = stats.by_value(rows, "oolong", lambda r: power_of_two_bin(r.info["context_len"]))
    assert {r["value"] for r in by_len} == {4096, 8192}  # 8000 tokens falls in the 8192 bin
    assert [r["mean"] for r in by_len if r["value"] == 8192 and r["mode"] == "llm"] == [pytest.approx(0.375)]


def test_the_report_shows_the_slices_each_environment_declares(fixture_db, tmp_path, monkeypatch):
    from rlm_tui.env import Slice, environment_class
    from rlm_tui.report import figures, render

    by_example = Slice("example", lambda row: row.example_id, figure="oolong_by_example")
    monkeypatch.setattr(environment_class("oolong"), "report_slices", (by_example,))
    rows = rows_of(fixture_db)
    titles = [str(t.title) for t in render.tables(rows)]
    assert "oolong: reward by example" in titles and "oolong: reward by subset" not in titles
    assert "verbatim-copy: reward by content type" in titles
    written = {name for name, _ in figures.per_environment(rows)}
    assert written == {"oolong_by_example", "verbatim_copy_by_content_type"}


def test_report_command_prints_tables_and_writes_figures(fixture_db, tmp_path):
    out = tmp_path / "figures"
    proc = subprocess.run(
        [RLM_TUI, "report", "fixture", "--db", str(fixture_db), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "Mean reward" in text and "Lift over the plain LLM" in text and "0.38" in text  # 250/650 efficiency
    assert "oolong: reward by subset" in text and "verbatim-copy: reward by content type" in text
    names = {p.name for p in out.iterdir()}
    for name in (
        "reward",
        "lift",
        "tokens",
        "efficiency",
        "timing",
        "sub_calls",
        "scatter",
        "oolong_by_subset",
        "oolong_synth_by_context_len",
        "verbatim_copy_by_content_type",
    ):
        assert f"{name}.png" in names and f"{name}.svg" in names
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        svg = (out / f"{name}.svg").read_text()
        assert "<svg" in svg


def test_unknown_grid_is_one_line(fixture_db, tmp_path):
    proc = subprocess.run([RLM_TUI, "report", "nope", "--db", str(fixture_db)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "neither a grid nor a run" in proc.stderr


def cli(tmp_path, *args, check=True):
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RLM_TUI_"))}
    proc = subprocess.run([RLM_TUI, *args], cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def run_count(db_path):
    with sqlite3.connect(db_path) as conn:
        return conn.execute("select count(*) from runs").fetchone()[0]


def test_ablate_sweeps_and_resumes_without_redoing(tmp_path):
    cli(
        tmp_path,
        "ablate",
        "verbatim-copy",
        "--modes",
        "llm,rlm",
        "-n",
        "2",
        "--env-arg",
        "target_length=100,300",
        "--name",
        "g",
        "--db",
        "g.db",
    )
    assert run_count(tmp_path / "g.db") == 4
    db = open_db(tmp_path / "g.db")
    rows = load_rows(db, resolve(db, ["g"])[1])
    assert len(rows) == 8 and {r.info["target_length"] for r in rows} == {100, 300}
    assert {(r.example_id, r.mode) for r in rows if r.info["target_length"] == 100} == {
        (e, m) for e in ("vc-0-0", "vc-0-1") for m in ("llm", "rlm")
    }  # the same examples in every mode
    again = cli(tmp_path, "ablate", "--resume", "g", "--db", "g.db")
    assert run_count(tmp_path / "g.db") == 4 and "done already" in again.stderr
    clash = cli(tmp_path, "ablate", "verbatim-copy", "--modes", "llm", "--name", "g", "--db", "g.db", check=False)
    assert clash.returncode == 2 and "exists with other settings" in clash.stderr
    table = cli(tmp_path, "export", "--format", "csv", "--db", "g.db").stdout
    records = list(csv.DictReader(io.StringIO(table)))
    assert len(records) == 2 and "metrics.sub_llm_call_count" in records[0] and "info.content_type" in records[0]


def test_an_interrupted_grid_resumes_where_it_stopped(tmp_path):
    def respond(body):
        if is_root(body):
            return code_call('answer.update(content="x", ready=True)')
        return Reply(content="x")

    db_path = tmp_path / "i.db"
    with FakeOpenAI(respond, latency=0.3) as server:
        args = [
            RLM_TUI,
            "ablate",
            "verbatim-copy",
            "--modes",
            "llm,rlm",
            "-n",
            "4",
            "--concurrency",
            "1",
            "--model",
            "m",
            "--base-url",
            server.base_url,
            "--name",
            "i",
            "--db",
            str(db_path),
        ]
        proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait for the second cell to have finished one rollout
            with sqlite3.connect(db_path) as conn:
                try:
                    done = conn.execute(
                        "select count(*) from rollouts r join runs on runs.id = r.run_id "
                        "where runs.mode = 'rlm' and r.status = 'done'"
                    ).fetchone()[0]
                except sqlite3.OperationalError:
                    done = 0
            if done >= 1:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with sqlite3.connect(db_path) as conn:
            finished = {
                (m, e)
                for m, e in conn.execute(
                    "select runs.mode, r.example_id from rollouts r join runs on runs.id = r.run_id where r.status = 'done'"
                )
            }
        assert ("rlm", "vc-0-0") in finished and len(finished) < 8
        before = len(server.requests)
        cli(tmp_path, "ablate", "--resume", "i", "--db", str(db_path))
        redone = len(server.requests) - before
    db = open_db(db_path)
    rows = load_rows(db, resolve(db, ["i"])[1])
    assert {(r.mode, r.example_id) for r in rows} == {(m, f"vc-0-{i}") for m in ("llm", "rlm") for i in range(4)}
    assert redone == 8 - len(finished)  # one model call per rollout here: only the unfinished ones ran again


def test_the_figures_draw_each_mode_in_the_study_s_colour(fixture_db, tmp_path):
    from rlm_tui.report import figures

    rows = rows_of(fixture_db)
    assert {"llm", "rlm", "rlm-tips"} <= set(stats.modes(rows))
    ((name, fig),) = figures.reward(rows)
    (svg,) = [p for p in figures.save(fig, tmp_path, name) if p.suffix == ".svg"]
    fills = set(re.findall(r"fill: ?(#[0-9a-f]{6})", svg.read_text()))
    assert {"#e24a33", "#348abd", "#988ed5"} <= fills  # LLM, RLM, RLM+tips


# --- intervals, cells kept apart, breakdowns and titles, by hand ----------------------------------


def test_every_interval_is_1_96_standard_errors_by_hand(fixture_db):
    rows = rows_of(fixture_db)
    llm = cell(stats.reward_table(rows), "oolong", "llm")
    assert llm["ci"] == pytest.approx(1.96 * 0.25 / math.sqrt(3))
    timing = cell(stats.timing_table(rows), "oolong", "rlm-tips")  # walls 20, 30, 25: sd 5
    assert (timing["n"], timing["ci"]) == (3, pytest.approx(1.96 * 5 / math.sqrt(3)))
    subs = cell(stats.sub_call_table(rows), "oolong", "rlm-tips")  # calls 8, 12, 4: sd 4
    assert subs["ci"] == pytest.approx(1.96 * 4 / math.sqrt(3))
    tokens = cell(stats.token_table(rows), "verbatim-copy", "rlm")  # totals 1,540 and 2,160
    assert (tokens["total"], tokens["ci"]) == (pytest.approx(1850), pytest.approx(1.96 * 310))
    lift = cell(stats.lift_table(rows), "verbatim-copy", "rlm")  # se 0.5 (llm) and 0 (rlm)
    assert (lift["n"], lift["n_llm"], lift["ci"]) == (2, 2, pytest.approx(1.96 * 0.5))


def test_the_efficiency_interval_is_the_delta_method_by_hand(fixture_db):
    eff = stats.efficiency_table(rows_of(fixture_db))
    # verbatim-copy llm: rewards 1, 0 and main tokens 150, 350; q = 0.5 / 250 = 0.002;
    # var(r) = 0.5, var(t) = 20,000, cov = -100: var(q) = (0.5 + 2·0.002·100 + 0.002²·20,000) / (250² · 2) = 7.84e-6
    llm = cell(eff, "verbatim-copy", "llm")
    assert llm["ci_per_1k"] == pytest.approx(1.96 * math.sqrt(7.84e-6) * 1000)
    assert llm["relative_to_llm"] == 1.0 and math.isnan(llm["ci"])
    # rlm: rewards 1, 1 and tokens 1,100, 1,500; q = 1/1300, se(q) = q · sd(t) / (mean(t) · √2) = q · 200 / 1300
    rlm = cell(eff, "verbatim-copy", "rlm")
    relative = (1 / 1300) / 0.002
    assert rlm["ci"] == pytest.approx(1.96 * relative * math.hypot(200 / 1300, math.sqrt(7.84e-6) / 0.002))


def test_one_rollout_has_no_interval_and_the_table_says_so(fixture_db):
    from rich.console import Console

    from rlm_tui.report import render

    rows = rows_of(fixture_db)
    real = [r for r in stats.by_value(rows, "oolong", lambda r: r.info["subset"]) if r["value"] == "real"]
    assert [(r["n"], math.isnan(r["ci"])) for r in real] == [(1, True), (1, True)]
    console = Console(record=True, width=200)
    console.print(*render.tables(rows))
    lines = [x.replace("│", " ").split() for x in console.export_text().splitlines() if x.startswith("│ real")]
    assert ["real", "llm", "1", "0.500", "-"] in lines


def math_runs(model="scripted", note=None):
    """math-python at two cell timeouts, each with tips=default and tips=sub_llms, in rlm-tips mode."""
    rewards = {(30.0, "default"): [0.0, 1.0], (30.0, "sub_llms"): [1.0, 1.0], (120.0, "default"): [1.0, 0.0, 0.0]}
    rewards[(120.0, "sub_llms")] = [0.0, 0.0]
    runs = []
    for (timeout, tips), values in rewards.items():
        config = {"grid": "math", "cell": {"env_args": {"tips": tips}, "timeout": timeout}}
        if note is not None:
            config["data_note"] = note
        rollouts = [(v, {"sub_llm_call_count": 2 * i}, {"topic": "algebra"}) for i, v in enumerate(values)]
        runs.append((f"mp-{timeout:g}-{tips}", "math-python", "rlm-tips", model, config, rollouts))
    return runs


def test_the_timeout_ablation_keeps_the_tips_cells_apart(tmp_path):
    from rich.console import Console

    from rlm_tui.report import render

    db = open_db(write_runs(tmp_path / "m.db", math_runs()))
    rows = load_rows(db, resolve(db, ["math"])[1])
    table = stats.by_value(rows, "math-python", lambda r: r.timeout)
    got = {(r["value"], r["split"]): (r["n"], r["mean"]) for r in table}
    assert got == {
        (30.0, "tips=default"): (2, 0.5),
        (30.0, "tips=sub_llms"): (2, 1.0),
        (120.0, "tips=default"): (3, pytest.approx(1 / 3)),
        (120.0, "tips=sub_llms"): (2, 0.0),
    }
    assert [r["value"] for r in table] == [30.0, 30.0, 120.0, 120.0]  # numeric order
    console = Console(record=True, width=200)
    console.print(*render.tables(rows))
    text = [x.replace("│", " ").split() for x in console.export_text().splitlines()]
    assert ["120", "rlm-tips", "tips=default", "3", "0.333", "0.653"] in text  # 1.96 · sd(1, 0, 0) / √3 = 1.96 / 3


def test_a_setting_the_slice_already_tells_apart_does_not_split_its_bars(tmp_path):
    runs = [
        (
            f"vc-{length}",
            "verbatim-copy",
            "llm",
            "m",
            {"grid": "v", "cell": {"env_args": {"target_length": length}}},
            [(1.0, {}, {"target_length": length, "content_type": "json"})],
        )
        for length in (100, 300)
    ]
    db = open_db(write_runs(tmp_path / "v.db", runs))
    rows = load_rows(db, resolve(db, ["v"])[1])
    by_length = stats.by_value(rows, "verbatim-copy", lambda r: r.info["target_length"])
    assert [(r["value"], r["split"]) for r in by_length] == [(100, ""), (300, "")]
    by_type = stats.by_value(rows, "verbatim-copy", lambda r: r.info["content_type"])
    assert [(r["value"], r["split"], r["n"]) for r in by_type] == [
        ("json", "target_length=100", 1),
        ("json", "target_length=300", 1),
    ]


def test_bins_given_as_low_high_sort_by_number_and_read_as_ranges():
    from rlm_tui.report.render import value_label

    assert sorted([(8192, 16384), (1024, 2048), "none"], key=stats._sortable) == [(1024, 2048), (8192, 16384), "none"]
    assert [value_label(v) for v in [(1024, 2048), 4096, 0.5, 100, "synth"]] == ["1k–2k", "4k", "0.5", "100", "synth"]


def test_titles_say_simulated_model_and_the_data_note(tmp_path):
    db = open_db(write_runs(tmp_path / "m.db", math_runs(note="generated problems, not the study's")))
    rows = load_rows(db, resolve(db, ["math"])[1])
    assert stats.describe(rows) == "simulated model; generated problems, not the study's"
    real = open_db(write_runs(tmp_path / "r.db", math_runs(model="gpt-x", note="")))
    assert stats.describe(load_rows(real, resolve(real, ["math"])[1])) == ""
    proc = cli(tmp_path, "report", "math", "--db", str(tmp_path / "m.db"))
    assert proc.stdout.splitlines()[0] == (
        "report on math: 9 rollouts in 4 runs (simulated model; generated problems, not the study's)"
    )


def test_a_damaged_config_or_note_falls_back_to_defaults(tmp_path):
    path = write_runs(tmp_path / "m.db", math_runs(note="x"))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE runs SET config = json_set(config, '$.data_note', json('[1, 2]'))")
        conn.execute("UPDATE runs SET config = json_set(config, '$.cell', 'not a dict') WHERE id = 'mp-30-default'")
        conn.execute("UPDATE rollouts SET metrics = '[1' WHERE id = 'mp-120-default-0'")
    db = open_db(path)
    rows = load_rows(db, resolve(db, ["math"])[1])
    assert stats.describe(rows) == "simulated model"
    damaged = [r for r in rows if r.run_id == "mp-30-default"]
    assert {(r.timeout, tuple(r.env_args)) for r in damaged} == {(120.0, ())}
    assert [r.metrics for r in rows if r.rollout_id == "mp-120-default-0"] == [{}]


def test_report_by_an_info_key_breaks_the_tables_down(fixture_db, tmp_path):
    proc = cli(tmp_path, "report", "fixture", "--db", str(fixture_db), "--by", "subset")
    lines = [x.replace("│", " ").split() for x in proc.stdout.splitlines()]
    # oolong llm: synth rewards 0.75, 0.25 (mean 0.5, sd √0.125) and real 0.5 alone
    assert ["oolong", "synth", "llm", "2", "0.500", f"{1.96 * math.sqrt(0.125) / math.sqrt(2):.3f}"] in lines
    assert ["oolong", "real", "llm", "1", "0.500", "-"] in lines
    assert ["verbatim-copy", "-", "rlm", "2", "1.000", "0.000"] in lines  # no subset in its info
    assert ["oolong", "real", "rlm-tips", "1", "1", "-0.500", "-"] in lines  # lift within the subset


def test_report_by_an_unknown_info_key_is_one_line_naming_the_keys(fixture_db, tmp_path):
    proc = cli(tmp_path, "report", "fixture", "--db", str(fixture_db), "--by", "nope", check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "info key 'nope'" in proc.stderr and "keys are: content_type, context_len, subset" in proc.stderr
