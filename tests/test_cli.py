"""The `rlm-tui` command: in this process through `main` where a subprocess adds nothing, and as the installed
command, from a directory outside the project, for its entry point, signals and a real run's exit codes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from fake_openai import FakeOpenAI, Reply, code_call, is_root, root_turn
from rlm_tui.cli import main
from rlm_tui.store import list_rollouts, list_runs

RLM_TUI = str(Path(sys.executable).parent / "rlm-tui")
FIELDS = {
    "run_id",
    "rollout_id",
    "env",
    "mode",
    "model",
    "example_id",
    "info",
    "target",
    "status",
    "reward",
    "answer",
    "turns",
    "sub_llm_calls",
    "metrics",
}
METRICS = {
    "main_rlm_turns",
    "main_rlm_prompt_tokens",
    "main_rlm_completion_tokens",
    "sub_llm_call_count",
    "sub_llm_total_turns",
    "sub_llm_prompt_tokens",
    "sub_llm_completion_tokens",
    "sub_llm_total_tool_calls",
    "sub_llm_batch_count",
    "sub_llm_max_batch_size",
    "sub_llm_mean_batch_size",
    "repl_call_count",
    "repl_total_time_seconds",
    "repl_mean_time_seconds",
    "wall_time_seconds",
    "model_time_seconds",
}


def clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RLM_TUI_"))}


def cli(tmp_path, *args, check=True):
    """The installed `rlm-tui` in a process of its own."""
    proc = subprocess.run(
        [RLM_TUI, *args], cwd=tmp_path, env=clean_environ(), capture_output=True, text=True, timeout=300
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


class Done(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def rlm(tmp_path, monkeypatch, capfd):
    """`rlm-tui ARGS` through `main` in this process, in `tmp_path`, with no OPENAI_ or RLM_TUI_ variables set."""
    for name in os.environ.keys() - clean_environ().keys():
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)

    def rlm(*args: str, env: dict[str, str] | None = None, check: bool = True) -> Done:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        capfd.readouterr()
        done = Done(main(list(args)), *capfd.readouterr())
        if check:
            assert done.returncode == 0, done.stderr
        return done

    return rlm


def test_offline_run_then_runs_show_export(tmp_path, rlm):
    proc = cli(tmp_path, "run", "verbatim-copy", "--headless", "-n", "3", "--env-arg", "target_length=300")
    assert "OPENAI_API_KEY is not set; using the offline scripted model" in proc.stderr
    run_id = proc.stdout.strip().splitlines()[-1]
    assert (tmp_path / "rlm-tui.db").exists()

    runs = rlm("runs").stdout
    assert run_id in runs and "verbatim-copy" in runs and "3/3" in runs and "1.000" in runs

    exported = rlm("export", "--format", "jsonl").stdout.splitlines()
    records = [json.loads(line) for line in exported]
    assert len(records) == 3
    for record in records:
        assert FIELDS <= set(record) and METRICS <= set(record["metrics"])
        assert record["run_id"] == run_id and record["reward"] == 1.0 and record["answer"]["ready"] is True
        assert record["info"]["target_length"] == 300 and len(record["target"]) == 300
        turn = record["turns"][0]
        assert {"index", "code", "output", "output_chars", "truncated", "elapsed_s", "error"} <= set(turn)
        call = record["sub_llm_calls"][0]
        assert {"batch", "prompt", "response", "prompt_tokens", "completion_tokens", "tool_calls"} <= set(call)
        assert record["metrics"]["sub_llm_call_count"] == len(record["sub_llm_calls"]) >= 3

    shown = rlm("show", records[0]["rollout_id"]).stdout
    assert "llm_batch #0" in shown and "answer · ready" in shown and "turn 1" in shown

    listed = rlm("show", run_id[:6]).stdout  # a run id lists its rollouts
    assert all(record["rollout_id"] in listed for record in records)
    full = rlm("show", records[0]["rollout_id"], "--full").stdout
    assert "=> " in full and records[0]["sub_llm_calls"][0]["prompt"][:40] in full

    out = tmp_path / "out.jsonl"
    rlm("export", run_id[:8], "-o", str(out))
    assert len(out.read_text().splitlines()) == 3


def test_run_against_a_local_server_with_the_real_client(rlm):
    def respond(body):
        if is_root(body):
            cells = ['r = llm_batch(["a", "b"])\nanswer["content"] = "".join(r)', 'answer["ready"] = True']
            return code_call(cells[root_turn(body)])
        return Reply(content=body["messages"][0]["content"] * 2, usage={"prompt_tokens": 5, "completion_tokens": 2})

    with FakeOpenAI(respond) as server:
        rlm(
            "run",
            "verbatim-copy",
            "--headless",
            "-n",
            "2",
            "--model",
            "root-m",
            "--sub-model",
            "sub-m",
            "--base-url",
            server.base_url,
            "--db",
            "x.db",
        )
    (record, _) = [json.loads(line) for line in rlm("export", "--db", "x.db").stdout.splitlines()]
    assert record["answer"]["content"] == "aabb" and record["model"] == "root-m"
    assert record["metrics"]["sub_llm_call_count"] == 2 and record["metrics"]["sub_llm_prompt_tokens"] == 10
    assert {b["model"] for b in server.requests if not is_root(b)} == {"sub-m"}


def test_sampling_knobs_and_the_text_protocol_reach_the_server(rlm):
    def respond(body):
        if body["messages"][0]["role"] == "system":
            return Reply(content='```repl\nanswer["content"] = llm_batch(["q"])[0]\nanswer["ready"] = True\n```')
        return Reply(content="sub")

    with FakeOpenAI(respond) as server:
        rlm(
            "run",
            "verbatim-copy",
            "--headless",
            "-n",
            "1",
            "--model",
            "m",
            "--base-url",
            server.base_url,
            "--db",
            "x.db",
            "--tool-protocol",
            "text",
            "--max-tokens",
            "50",
            "--temperature",
            "0.2",
            "--sampling-seed",
            "7",
            "--extra-body",
            '{"top_k": 5}',
            "--sub-max-tokens",
            "9",
            "--sub-top-p",
            "0.5",
        )
    root, sub = server.requests
    assert "tools" not in root and (root["max_tokens"], root["temperature"], root["seed"], root["top_k"]) == (
        50,
        0.2,
        7,
        5,
    )
    assert (sub["max_tokens"], sub["top_p"]) == (9, 0.5) and "temperature" not in sub
    (record,) = [json.loads(line) for line in rlm("export", "--db", "x.db").stdout.splitlines()]
    assert record["answer"]["content"] == "sub" and record["metrics"]["main_recovered_call_count"] == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "verbatim-copy", "--headless", "--extra-body", "[1]"], "must be a JSON object"),
        (["run", "verbatim-copy", "--headless", "--extra-body", '{"model": "x"}'], "may not set model"),
        (["run", "verbatim-copy", "--headless", "--temperature", "nan"], "must be from 0 to 2"),
        (["run", "verbatim-copy", "--headless", "--max-nudges", "11"], "must be from 0 to 10"),
        (["run", "verbatim-copy", "--headless", "--tool-protocol", "xml"], "invalid choice: 'xml'"),
    ],
)
def test_bad_sampling_knobs_are_one_line(rlm, args, message):
    done = rlm(*args, check=False)
    assert done.returncode == 2 and message in done.stderr, done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "nope", "--headless"], "unknown environment 'nope'"),
        (["run", "verbatim-copy", "--headless", "--bogus"], "unrecognized arguments: --bogus"),
        (["run", "verbatim-copy", "--headless", "-n", "0"], "must be at least 1"),
        (["run", "verbatim-copy", "--headless", "--env-arg", "content_type=xml"], "content_type"),
        (["run", "verbatim-copy", "--headless", "--model", "gpt-5-mini"], "needs OPENAI_API_KEY"),
        (["run", "verbatim-copy", "--headless", "--model", "m", "--base-url", "http://127.0.0.1:9/v1"], "cannot reach"),
        (["show", "zzz"], "does not exist"),
        (["run", "verbatim-copy", "--headless", "--model", "m", "--base-url", ""], "--base-url: must not be empty"),
        (
            ["run", "verbatim-copy", "--headless", "--model", "m", "--base-url", "127.0.0.1:8000/v1"],
            "http:// or https://",
        ),
        (
            ["run", "verbatim-copy", "--headless", "--model", "m", "--base-url", "file:///etc/passwd"],
            "http:// or https://",
        ),
        (["run", "verbatim-copy", "--headless", "--model", "m", "--base-url", "http://"], "http:// or https://"),
        (["runs", "--db", ""], "--db: must not be empty"),
        (["run", "verbatim-copy", "--headless", "--db", " "], "--db: must not be empty"),
        (["run", "verbatim-copy", "--headless", "-n", "100000000"], "at most 100,000"),
        (["run", "verbatim-copy", "--headless", "--concurrency", "1000000"], "at most 256"),
        (["run", "verbatim-copy", "--headless", "--sub-concurrency", "1000000"], "at most 1,024"),
        (["run", "verbatim-copy", "--headless", "--max-turns", "1000000"], "at most 1,000"),
        (["run", "verbatim-copy", "--headless", "--timeout", "1e12"], "at most 86,400"),
        (["run", "verbatim-copy", "--headless", "--max-output-chars", "999999999"], "at most 1,000,000"),
        (["run", "verbatim-copy", "--headless", "--memory-mb", "999999999"], "all the memory this machine has"),
        (["run", "verbatim-copy", "--headless", "--seed", str(2**64)], "64-bit"),
        (["run", "verbatim-copy", "--headless", "--seed", "9" * 5000], "64-bit"),
        (["run", "verbatim-copy", "--headless", "--scripted-delay", "1e9"], "at most 3,600"),
        (["run", "verbatim-copy", "--headless", "--run-id", "not-hex!"], "16 hex digits"),
        (["run", "verbatim-copy", "--headless", "--env-arg", "target_length=100000000"], "from 1 to 1,000,000"),
        (["run", "verbatim-copy", "--headless", "--env-arg", "mean_fragment_length=100000000"], "from 1 to 1,000,000"),
        (["run", "verbatim-copy", "--headless", "--env-arg", "num_examples=100000000"], "from 1 to 100,000"),
        (["run", "deepdive", "--headless", "--env-arg", "world_seed=" + str(2**70)], "64-bit"),
        (["run", "deepdive", "--headless", "--env-arg", "judge_base_url=localhost"], "http:// or https://"),
        (["run", "deepdive", "--headless", "--env-arg", "judge_model=" + "x" * 100_000], "at most 1,000 characters"),
        (["show", "a" * 100_000], "at most 64 characters"),
        (["ablate", "verbatim-copy", "-n", "100000000"], "at most 100,000"),
        (["ablate", "verbatim-copy", "--concurrency", "1000000"], "at most 256"),
        (["ablate", "verbatim-copy", "--seed", str(2**64)], "64-bit"),
        (
            ["ablate", "verbatim-copy", "--model", "scripted", "--timeout", "30,1e12"],
            "--timeout: must be at most 86,400 seconds",
        ),
        (["ablate", "verbatim-copy", "--modes", "llm,rlm-x"], "--modes: invalid choice: 'rlm-x'"),
        (["run", "verbatim-copy", "--headless", "--cpu-seconds", "0"], "--cpu-seconds: must be at least 1"),
        (["run", "verbatim-copy", "--headless", "--cpu-seconds", "1e9"], "--cpu-seconds: expected a whole number"),
        (["run", "verbatim-copy", "--headless", "--cpu-seconds", "100000"], "--cpu-seconds: must be at most 86,400"),
        (["ablate", "verbatim-copy", "--cpu-seconds", "100000"], "--cpu-seconds: must be at most 86,400"),
        (["ablate", "verbatim-copy", "--model", "m", "--base-url", ""], "--base-url: must not be empty"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(rlm, args, message):
    proc = rlm(*args, check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr, proc.stderr


def test_a_database_that_is_not_ours(tmp_path, rlm):
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite at all" * 100)
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("create table invoices (id integer)")
    other.commit()
    other.close()
    for name in ("junk.db", "other.db"):
        proc = rlm("runs", "--db", name, check=False)
        assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1
        assert "not an rlm-tui database" in proc.stderr
    assert (tmp_path / "junk.db").read_bytes().startswith(b"this is not sqlite")  # nothing was overwritten


def test_envs_lists_every_environment_and_its_knobs(rlm):
    out = rlm("envs").stdout
    for name, knob in [
        ("verbatim-copy", "target_length"),
        ("deepdive", "num_entities"),
        ("math-python", "topics"),
        ("oolong", "context_len"),
    ]:
        assert f"\n{name}\n" in f"\n{out}" and knob in out


def test_a_damaged_database_is_one_line_and_left_alone(tmp_path, rlm):
    rlm("run", "verbatim-copy", "--headless", "-n", "2", "--db", "d.db")
    path = tmp_path / "d.db"
    size = path.stat().st_size
    os.truncate(path, size // 3)
    before = path.read_bytes()
    proc = rlm("runs", "--db", "d.db", check=False)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "is damaged" in proc.stderr and ".recover" in proc.stderr
    assert path.read_bytes() == before  # nothing was written to it


def test_ctrl_c_stops_the_run_and_records_it(tmp_path, rlm):
    import signal

    proc = started_run(tmp_path, "c.db", "00000000000000f3", delay=600)  # its model takes 600 s: it cannot end first
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "was stopped" in err and "Traceback" not in err, err
    assert "killed" in rlm("runs", "--db", "c.db").stdout


def test_memory_limit_reaches_the_sandbox(rlm):
    def respond(body):
        cells = ["x = bytearray(600 * 1024 * 1024)", 'answer.update(content="survived", ready=True)']
        return code_call(cells[root_turn(body)]) if is_root(body) else Reply(content="")

    with FakeOpenAI(respond) as server:
        rlm(
            "run",
            "verbatim-copy",
            "--headless",
            "-n",
            "1",
            "--model",
            "m",
            "--base-url",
            server.base_url,
            "--memory-mb",
            "300",
            "--db",
            "m.db",
        )
        told = server.requests[1]["messages"][-1]["content"]
    assert "MemoryError" in told and "REPL restarted" not in told  # the address-space limit refuses 600 MB of 300
    (record,) = [json.loads(line) for line in rlm("export", "--db", "m.db").stdout.splitlines()]
    assert record["answer"]["content"] == "survived"


def test_cpu_seconds_bounds_a_rollout_and_the_run_records_its_limits(rlm):
    burn = (
        "import threading\ndef spin():\n    while True:\n        pass\n"
        "threading.Thread(target=spin, daemon=True).start()"
    )
    cells = [burn] + ["import time; time.sleep(1)"] * 50  # the model never says it is ready

    def respond(body):
        return code_call(cells[root_turn(body)]) if is_root(body) else Reply(content="")

    with FakeOpenAI(respond) as server:
        rlm(
            "run",
            "verbatim-copy",
            "--headless",
            "-n",
            "1",
            "--model",
            "m",
            "--base-url",
            server.base_url,
            "--max-turns",
            "50",
            "--cpu-seconds",
            "1",
            "--memory-mb",
            "1024",
            "--context-limit",
            "64000",
            "--db",
            "u.db",
        )
    (run,) = list_runs("u.db")
    limits = run["config"]["rollout"]["limits"]
    assert (limits["cpu_seconds"], limits["memory_mb"], run["config"]["context_limit"]) == (1, 1024, 64000)
    (rollout,) = list_rollouts("u.db", run["id"])
    assert rollout["stop_reason"] == "budget_cpu" and "CPU budget of 1 s" in rollout["error"]


def test_ablate_records_the_run_options_in_every_cell(rlm):
    rlm(
        "ablate",
        "verbatim-copy",
        "--modes",
        "llm,rlm",
        "-n",
        "1",
        "--cpu-seconds",
        "300",
        "--context-limit",
        "64000",
        "--timeout",
        "30,60",
        "--db",
        "g.db",
    )
    runs = list_runs("g.db")
    assert sorted((r["config"]["rollout"]["mode"], r["config"]["rollout"]["timeout"]) for r in runs) == [
        ("llm", 30.0),
        ("llm", 60.0),
        ("rlm", 30.0),
        ("rlm", 60.0),
    ]
    recorded = {(r["config"]["rollout"]["limits"]["cpu_seconds"], r["config"]["context_limit"]) for r in runs}
    assert recorded == {(300, 64000)}


def test_show_prints_model_text_and_output_literally(rlm):
    def respond(body):
        if not is_root(body):
            return Reply(content="")
        if root_turn(body) == 0:
            reply = code_call("print('[/INST] [bold]not bold[/bold] ' + 'z' * 100)")
            reply.content = "[red]my plan[/red]"
            return reply
        return code_call('answer.update(content="[/]", ready=True)')

    with FakeOpenAI(respond) as server:
        rlm(
            "run",
            "verbatim-copy",
            "--headless",
            "-n",
            "1",
            "--model",
            "m",
            "--base-url",
            server.base_url,
            "--max-output-chars",
            "40",
            "--db",
            "s.db",
        )
    (record,) = [json.loads(line) for line in rlm("export", "--db", "s.db").stdout.splitlines()]
    shown = rlm("show", record["rollout_id"], "--db", "s.db").stdout
    assert "[/INST] [bold]not bold" in shown and "[red]my plan[/red]" in shown and "[/]" in shown
    assert "model saw 40 of 131 chars" in shown and "[output truncated: showing 40 of 131" in shown


def test_a_read_only_database_can_be_read(tmp_path, rlm):
    rlm("run", "verbatim-copy", "--headless", "-n", "1", "--db", "ro.db")
    (tmp_path / "ro.db-wal").unlink(missing_ok=True)
    (tmp_path / "ro.db-shm").unlink(missing_ok=True)
    where = tmp_path / "mnt"
    where.mkdir()
    if os.geteuid() == 0:  # root writes anything: make the file system itself read-only
        subprocess.run(["mount", "--bind", str(tmp_path), str(where)], check=True)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(where)], check=True)
    else:
        where.rmdir()
        where.symlink_to(tmp_path)
        (tmp_path / "ro.db").chmod(0o444)
        tmp_path.chmod(0o555)
    try:
        assert not os.access(where / "ro.db", os.W_OK)
        assert "verbatim-copy" in rlm("runs", "--db", str(where / "ro.db")).stdout
        assert '"rollout_id"' in rlm("export", "--db", str(where / "ro.db")).stdout
        assert "Mean reward" in rlm("report", "--db", str(where / "ro.db")).stdout
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "--lazy", str(where)], check=True)  # files closed just now may hold it a moment
        else:
            tmp_path.chmod(0o755)


def test_a_run_whose_every_rollout_failed_exits_non_zero_with_the_reason(tmp_path, rlm):
    from fake_openai import Fail

    with FakeOpenAI(lambda body: Fail(501, "not implemented here", headers={"retry-after-ms": "1"})) as server:
        proc = cli(
            tmp_path,
            "run",
            "verbatim-copy",
            "--headless",
            "-n",
            "2",
            "--model",
            "m",
            "--base-url",
            server.base_url,
            "--db",
            "f.db",
            check=False,
        )
    assert proc.returncode == 1
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith("rlm-tui: error: every rollout failed; the first: m request failed with HTTP 501")
    )


def test_ambiguous_prefixes_say_so(rlm):
    for run_id in ("abcd000000000001", "abcd000000000002"):
        rlm("run", "verbatim-copy", "--headless", "-n", "1", "--run-id", run_id, "--db", "a.db")
    for command in ("show", "report", "export"):
        proc = rlm(command, "abcd", "--db", "a.db", check=False)
        assert proc.returncode == 2 and "matches 2 runs" in proc.stderr, (command, proc.stderr)


def test_export_to_a_path_that_cannot_be_written(tmp_path, rlm):
    rlm("run", "verbatim-copy", "--headless", "-n", "1", "--db", "e.db")
    for target in (tmp_path / "missing" / "out.jsonl", tmp_path):
        proc = rlm("export", "--db", "e.db", "-o", str(target), check=False)
        assert proc.returncode == 2 and proc.stderr.startswith("rlm-tui: error: cannot write")
        assert len(proc.stderr.strip().splitlines()) == 1


def signals_as_a_terminal_gives_them() -> None:
    """Ctrl-C's and a hang-up's default actions, whatever the suite inherited (nohup ignores SIGHUP, xdist SIGINT)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def started_run(tmp_path, name: str, run_id: str, delay: float = 5) -> subprocess.Popen:
    """A real headless run in its own process, returned once its store shows a rollout under way."""
    from rlm_tui import events as ev
    from rlm_tui.store import open_db
    from runs import tail_events

    open_db(tmp_path / name).close()  # so that the tail can open it before the run writes
    proc = subprocess.Popen(
        [
            RLM_TUI,
            "run",
            "verbatim-copy",
            "--headless",
            "-n",
            "2",
            "--scripted-delay",
            str(delay),
            "--run-id",
            run_id,
            "--db",
            name,
        ],
        cwd=tmp_path,
        env=clean_environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=signals_as_a_terminal_gives_them,
    )
    for batch in tail_events(tmp_path / name, run_id=run_id):
        if any(isinstance(e, ev.RolloutStarted) for _, e in batch):
            return proc
    raise AssertionError(f"the run ended before a rollout started: {proc.communicate(timeout=60)}")


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGHUP"])
def test_sigterm_stops_a_headless_run_and_records_it_as_killed(tmp_path, rlm, signum):
    import signal

    from rlm_tui.store import get_run

    signum = signal.Signals[signum]
    proc = started_run(tmp_path, "t.db", "00000000000000f1")
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err  # 143 for SIGTERM
    assert f"was stopped by {signum.name}" in err and "Traceback" not in err
    assert get_run(tmp_path / "t.db", "00000000000000f1")["status"] == "killed"
    assert "killed" in rlm("runs", "--db", "t.db").stdout


def test_export_of_a_run_whose_process_died_says_interrupted_as_runs_does(tmp_path, rlm):
    import signal

    proc = started_run(tmp_path, "k.db", "00000000000000f2")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert "interrupted" in rlm("runs", "--db", "k.db").stdout
    records = [json.loads(line) for line in rlm("export", "--db", "k.db").stdout.splitlines()]
    assert records and {r["status"] for r in records} == {"interrupted"}
    csv_out = rlm("export", "--format", "csv", "--db", "k.db").stdout
    assert "running" not in csv_out and "interrupted" in csv_out


def test_run_on_a_read_only_database_says_it_is_read_only(tmp_path, rlm):
    rlm("run", "verbatim-copy", "--headless", "-n", "1", "--db", "ro.db")
    where = tmp_path / "mnt"
    where.mkdir()
    subprocess.run(["mount", "--bind", str(tmp_path), str(where)], check=True)
    subprocess.run(["mount", "-o", "remount,ro,bind", str(where)], check=True)
    try:
        for target in (where / "ro.db", where / "new.db"):
            proc = rlm(
                "run", "verbatim-copy", "--headless", "-n", "1", "--model", "scripted", "--db", str(target), check=False
            )
            assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
            assert "read-only" in proc.stderr and str(target.parent) in proc.stderr, proc.stderr
            assert "not an rlm-tui database" not in proc.stderr
    finally:
        subprocess.run(["umount", "--lazy", str(where)], check=True)  # files closed just now may hold it a moment


@pytest.mark.parametrize("name", ["RLM_TUI_DB", "OPENAI_BASE_URL"])
def test_an_empty_environment_variable(tmp_path, rlm, name):
    proc = rlm("run", "verbatim-copy", "--headless", "-n", "1", env={name: ""}, check=False)
    if name == "RLM_TUI_DB":  # a database must be named; an empty name is a mistake, not ./rlm-tui.db
        assert proc.returncode == 2 and "RLM_TUI_DB is set but empty" in proc.stderr, proc.stderr
        assert not (tmp_path / "rlm-tui.db").exists()
    else:  # an empty $OPENAI_BASE_URL is unset, as the help says
        assert proc.returncode == 0, proc.stderr


def test_id_prefixes_are_text_not_patterns(rlm):
    rlm("run", "verbatim-copy", "--headless", "-n", "1", "--db", "p.db")
    for prefix in ("%", "_", "%%", "_%", "' OR 1=1 --"):
        for command in ("show", "export"):
            proc = rlm(command, prefix, "--db", "p.db", check=False)
            assert proc.returncode == 2 and "starts with" in proc.stderr, (command, prefix, proc.stderr)
