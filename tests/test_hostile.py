"""Attacks played from inside a real jail by code that has read repl_server.py: the engine survives, the model is told."""

import asyncio
import functools
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI, Reply, code_call, is_root, root_turn
from rlm_tui.engine.clients import OpenAIClient
from rlm_tui.engine.sub_llm import SubLLMs
from rlm_tui.sandbox import MAX_ANSWER_CHARS, CpuBudgetSpent, Limits, nsjail
from rlm_tui.sandbox.session import MAX_BATCH_PROMPTS, MAX_ROLLOUT_PROMPTS
from test_isolation import process_tree

RLM_TUI = str(Path(sys.executable).parent / "rlm-tui")
SERVER = "import gc, __main__\nsrv = next(o for o in gc.get_objects() if isinstance(o, __main__.Server))\n"


@pytest.fixture
def make(make):
    return functools.partial(make, "ctx", timeout=10.0)  # hostile cells get room on a loaded machine


def forge(line: str, then: str = "import time\ntime.sleep(30)") -> str:
    """A cell that writes `line` (raw) on the REPL's frame pipe to the host, then goes on."""
    return f"import os, sys\nos.write(int(sys.argv[2]), {line.encode()!r} + b'\\n')\n{then}"


RESULT = {
    "t": "result",
    "id": 1,
    "n": 1,
    "elapsed_s": 0.1,
    "out": None,
    "out_chars": 0,
    "error": None,
    "traceback": None,
    "stdout": "",
    "stdout_chars": 0,
    "stderr": "",
    "stderr_chars": 0,
    "answer": {"content": "forged", "ready": True},
}
MALFORMED = {
    "stdout is a list": json.dumps({**RESULT, "stdout": ["a"]}),
    "error is an int": json.dumps({**RESULT, "error": 3}),
    "elapsed_s is a string": json.dumps({**RESULT, "elapsed_s": "soon"}),
    "stdout_chars is a string": json.dumps({**RESULT, "stdout_chars": "many"}),
    "elapsed_s is NaN": json.dumps({**RESULT, "elapsed_s": float("nan")}),
    "answer is a list": json.dumps({**RESULT, "answer": ["x"]}),
    "answer content is a dict": json.dumps({**RESULT, "answer": {"content": {}, "ready": True}}),
    "stdout over the cap": json.dumps({**RESULT, "stdout": "x" * 200_000}),
    "t is not a string": json.dumps({"t": 5}),
    "unknown t": json.dumps({"t": "hello"}),
    "not an object": "[1, 2]",
    "a huge id": json.dumps({**RESULT, "id": 10**30}),
    "deeply nested": "[" * 100_000 + "]" * 100_000,
    "a half frame": '{"t": "result", "id": 1, "stdo',
    "batch prompts not a list": json.dumps({"t": "llm_batch", "id": 1, "prompts": "abc"}),
    "batch prompts not strings": json.dumps({"t": "llm_batch", "id": 1, "prompts": [1, None]}),
    "batch id a string": json.dumps({"t": "llm_batch", "id": "1", "prompts": ["a"]}),
    "a million tiny values": json.dumps({"t": "llm_batch", "id": 1, "prompts": ["ab"] * 1_000_000}),
    "exit code a string": json.dumps({"t": "exit", "code": "0"}),
    "exit cpu_s a string": json.dumps({"t": "exit", "code": 0, "cpu_s": "none"}),
}


def recording():
    """An llm_batch that answers "x" to every prompt, and the size of each batch it was given."""
    calls: list[int] = []

    async def llm(prompts):
        calls.append(len(prompts))
        return ["x"] * len(prompts)

    return llm, calls


@pytest.mark.parametrize("line", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_frame_restarts_the_repl_and_says_so(make, line):
    box = await make(output_cap=100_000)
    llm, calls = recording()

    result = await box.run(forge(line), llm)
    assert result.restarted and result.error.startswith("crash: the REPL process sent a malformed frame"), result
    assert result.lost and "malformed frame" in result.lost
    assert result.answer == {"content": "", "ready": False} and calls == []
    assert (await box.run("context")).out == "Out[1]: 'ctx'"


async def test_a_result_for_a_cell_that_is_not_running_is_ignored(make):
    box = await make()
    result = await box.run(forge(json.dumps({**RESULT, "id": 999}), "'real'"))
    assert result.out == "Out[1]: 'real'" and not result.restarted and result.error is None


async def test_an_exit_frame_forged_before_the_real_one_ends_only_that_repl(make):
    box = await make()
    result = await box.run(forge(json.dumps({"t": "exit", "code": 0}) + "\n" + json.dumps(RESULT)))
    assert result.restarted and result.error == "crash: the REPL process exited with code 0"
    assert result.answer == {"content": "", "ready": False}  # the result forged after the exit was not taken
    assert (await box.run("1 + 1")).out == "Out[1]: 2"


async def test_a_million_prompts_is_refused_in_the_jail(make):
    box = await make()
    llm, calls = recording()

    result = await box.run("llm_batch([''] * 1_000_000)", llm)
    assert result.error.startswith(f"ValueError: llm_batch got 1,000,000 prompts; send at most {MAX_BATCH_PROMPTS:,}")
    assert calls == [] and not result.restarted


async def test_a_forged_over_cap_batch_gets_a_clear_error_from_the_host(make):
    box = await make()
    llm, calls = recording()

    n = MAX_BATCH_PROMPTS + 1
    result = await box.run(
        SERVER + "import threading\nslot = [threading.Event(), None]\nsrv.pending[99] = slot\n"
        f"srv.send({{'t': 'llm_batch', 'id': 99, 'prompts': ['p'] * {n}}})\n"
        "slot[0].wait()\nslot[1]['error']",
        llm,
    )
    assert result.out.startswith(f"Out[1]: 'llm_batch got {n:,} prompts; send at most {MAX_BATCH_PROMPTS:,}")
    assert calls == [] and not result.restarted


async def test_prompts_per_rollout_are_capped(make):
    box = await make(timeout=60.0)
    llm, calls = recording()

    batches = MAX_ROLLOUT_PROMPTS // MAX_BATCH_PROMPTS
    result = await box.run(
        f"for _ in range({batches}):\n    llm_batch(['p'] * {MAX_BATCH_PROMPTS})\nllm_batch(['one more'])", llm
    )
    assert result.error == (
        f"RuntimeError: llm_batch refused: this rollout has already sent {MAX_ROLLOUT_PROMPTS:,} "
        f"prompts, the most one rollout may send is {MAX_ROLLOUT_PROMPTS:,}"
    )
    assert sum(calls) == MAX_ROLLOUT_PROMPTS


async def test_sub_llm_calls_start_lazily_through_the_semaphore():
    most = 0

    def emit(event):
        nonlocal most
        most = max(most, len(asyncio.all_tasks()))

    with FakeOpenAI(lambda body: Reply(content="ok")) as server:
        client = OpenAIClient(base_url=server.base_url, api_key="k", max_retries=0)
        subs = SubLLMs(client=client, model="m", tools=[], concurrency=3, emit=emit, run_id="r", rollout_id="o")
        responses = await subs.batch(["p"] * 300, None)
    assert responses == ["ok"] * 300
    assert most <= 3 + 8  # the workers and a few of the client's own tasks, not one coroutine per prompt


async def test_an_answer_whose_get_raises_keeps_the_repl(make):
    box = await make()
    await box.run("kept = 7")
    result = await box.run(
        "class Evil(dict):\n    def get(self, *a):\n        raise RuntimeError('no')\n"
        "answer = Evil(content='mine', ready=False)"
    )
    assert not result.restarted and "answer must be a plain dict" in result.error
    assert result.answer == {"content": "mine", "ready": False}
    assert (
        await box.run("type(answer).__name__, answer, kept")
    ).out == "Out[3]: ('dict', {'content': 'mine', 'ready': False}, 7)"


@pytest.mark.parametrize(
    "code",
    [
        "class S(str):\n    def __str__(self):\n        raise RuntimeError('no')\nanswer['content'] = S('text')",
        "class B:\n    def __bool__(self):\n        raise RuntimeError('no')\nanswer['ready'] = B()",
        "class K(str):\n    def __len__(self):\n        raise RuntimeError('no')\nanswer['content'] = K('abc')",
    ],
)
async def test_odd_answer_values_keep_the_repl(make, code):
    box = await make()
    result = await box.run("kept = 1\n" + code)
    assert not result.restarted
    assert (await box.run("kept")).out == "Out[2]: 1"
    assert isinstance(result.answer["content"], str) and isinstance(result.answer["ready"], bool)


async def test_a_long_answer_is_cut_to_the_cap(make):
    box = await make()
    result = await box.run(f"answer['content'] = 'x' * {MAX_ANSWER_CHARS + 5}")
    assert result.answer["content"] == "x" * MAX_ANSWER_CHARS
    assert result.error == (
        f"answer['content'] had {MAX_ANSWER_CHARS + 5:,} characters and was cut to the first "
        f"{MAX_ANSWER_CHARS:,}, the most an answer may hold"
    )
    assert (await box.run("len(answer['content'])")).out == f"Out[2]: {MAX_ANSWER_CHARS}"


async def test_a_huge_error_message_is_capped(make):
    box = await make(output_cap=10_000)
    result = await box.run("raise ValueError('e' * 50_000_000)")
    assert result.error.startswith("ValueError: eee") and len(result.error) <= 10_000 and not result.restarted


async def test_an_oversized_frame_is_reported_as_what_it_is(make):
    box = await make(timeout=1.8, interrupt_grace=0.1)  # both end before the old 2 s wait for a stopped jail
    flood = (
        "import os, sys, threading, time\n"
        "def flood():\n    chunk = b'x' * (1 << 24)\n    try:\n        while True:\n"
        "            os.write(int(sys.argv[2]), chunk)\n    except OSError:\n        pass\n"
        "threading.Thread(target=flood).start()\n"
        "while True:\n    try:\n        time.sleep(1)\n    except BaseException:\n        pass\n"
    )
    result = await box.run(flood)
    assert result.restarted and "over 256 MB" in result.error, result.error


async def test_background_cpu_is_bounded_for_the_whole_jail(make):
    box = await make(limits=Limits(cpu_seconds=2), timeout=60.0)
    burn = (
        "import os, threading\n"
        "def respawn():\n    while True:\n        pid = os.fork()\n        if pid == 0:\n"
        "            import time\n            end = time.process_time() + 1\n"
        "            while time.process_time() < end:\n                pass\n            os._exit(0)\n"
        "        os.waitpid(pid, 0)\n"
        "threading.Thread(target=respawn, daemon=True).start()"
    )
    assert (await box.run(burn)).error is None
    result = await box.run("import time\ntime.sleep(30)")
    assert not result.restarted and "CPU budget of 2 s" in result.error, result.error
    assert "no more code can run" in result.lost
    with pytest.raises(CpuBudgetSpent, match="CPU budget of 2 s"):
        await box.run("1")


BURN = "import time\nend = time.process_time() + {}\nwhile time.process_time() < end:\n    pass"


async def test_a_restart_does_not_refill_the_cpu_budget(make):
    box = await make(limits=Limits(cpu_seconds=4), timeout=60.0)
    assert (await box.run(BURN.format(2.5))).error is None
    assert (await box.run("import os\nos._exit(3)")).restarted
    result = await box.run(BURN.format(2.5))  # a fresh jail alone would allow it: the rollout has 1.5 s left
    assert "CPU budget of 4 s" in result.error, result.error
    assert box.cpu_spent >= 4


async def test_a_forged_exit_report_cannot_hide_cpu(make):
    box = await make(limits=Limits(cpu_seconds=30), timeout=60.0)
    cell = BURN.format(2) + "\n" + forge(json.dumps({"t": "exit", "code": 0, "cpu_s": 0.0}))  # burn, then lie
    assert (await box.run(cell)).restarted  # the host ends a jail that says it ended, measuring it first
    assert box.cpu_spent >= 1.9, box.cpu_spent


async def test_a_timed_out_cell_counts_its_cpu(make):
    box = await make(limits=Limits(cpu_seconds=30), timeout=60.0, interrupt_grace=0.1)
    assert (await box.run(BURN.format(1))).error is None
    box.timeout = 0.5  # the jail that now ignores interrupts is killed by the host, whose measure is the only one
    result = await box.run("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)")
    assert result.restarted and result.error.startswith("timeout"), result.error
    assert box.cpu_spent >= 1, box.cpu_spent


async def test_children_cannot_be_reaped_unseen(make):
    box = await make()
    result = await box.run("import signal\nsignal.signal(signal.SIGCHLD, signal.SIG_IGN)")
    assert result.error == "PermissionError: [Errno 1] Operation not permitted", result.error
    result = await box.run(
        "import signal\nsignal.signal(signal.SIGUSR1, signal.SIG_IGN)\n"
        "import subprocess\nsubprocess.run(['true'], check=True).returncode"
    )
    assert result.out == "Out[2]: 0", result.output


async def test_a_thread_bomb_is_a_cell_error_and_the_repl_goes_on(make):
    box = await make(limits=Limits(processes=32))
    result = await box.run(
        "import threading, time\nwhile True:\n"
        "    threading.Thread(target=time.sleep, args=(1000,), daemon=True).start()"
    )
    assert result.error.startswith("RuntimeError: can't start new thread") and not result.restarted
    assert (await box.run("'alive'")).out == "Out[2]: 'alive'"


def wait_gone(pids: list[int], seconds: float) -> list[int]:
    """Wait for each process to end (on its pidfd, not by polling); return those still alive after `seconds`."""
    left = []
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            if not select.select([fd], [], [], seconds)[0]:
                left.append(pid)
        finally:
            os.close(fd)
    return left


OWNER = textwrap.dedent("""
    import asyncio, sys
    from rlm_tui.sandbox import Sandbox

    async def main():
        box = Sandbox(timeout=60.0)
        await box.start()
        result = await box.run(sys.argv[1])
        print(box.pid, result.error, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
""")
IMMORTAL = (
    "import os, threading, time\nos._exit = lambda code: None\n"
    "threading.Thread(target=lambda: [time.sleep(1) for _ in iter(int, 1)]).start()\n"
    "if os.fork() == 0:\n    os.setsid()\n    time.sleep(1000)"
)


@pytest.mark.parametrize("path", [os.environ.get("PATH", ""), "/nonexistent"], ids=["setpriv", "without setpriv"])
def test_the_jail_dies_with_its_sigkilled_owner(path):
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, IMMORTAL], stdout=subprocess.PIPE, text=True, env={**os.environ, "PATH": path}
    )
    try:
        pid, error = owner.stdout.readline().split(" ", 1)
        assert error.strip() == "None"
        tree = process_tree(int(pid))
        assert len(tree) >= 4  # nsjail, the jail's init, the REPL, the forked sleeper
        owner.send_signal(signal.SIGKILL)
        owner.wait(30)
        assert wait_gone([p for p, _ in tree], 20.0) == []
        left = [p for p, _ in tree for c in ("pids", "memory") if Path(nsjail.CGROUP_V1, c, f"NSJAIL.{p}").exists()]
        assert left == []  # nsjail removed its jail's cgroups: a reused pid must not inherit their limits
    finally:
        owner.kill()
        owner.wait(30)


def cli_run(tmp_path, attack: str, n: int = 2) -> tuple[subprocess.CompletedProcess, list[dict], list[str]]:
    """`rlm-tui run --headless` with a root model whose first cell is `attack`; returns the records and what it was told."""
    told = []

    def respond(body):
        if not is_root(body):
            return Reply(content="sub")
        if root_turn(body) == 0:
            return code_call(attack)
        told.append(body["messages"][-1]["content"])
        return code_call('answer.update(content="survived", ready=True)')

    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RLM_TUI_"))}
    with FakeOpenAI(respond) as server:
        proc = subprocess.run(
            [
                RLM_TUI,
                "run",
                "verbatim-copy",
                "--headless",
                "-n",
                str(n),
                "--model",
                "m",
                "--base-url",
                server.base_url,
                "--timeout",
                "10",
                "--db",
                "h.db",
            ],
            cwd=tmp_path,
            env=environ,
            capture_output=True,
            text=True,
            timeout=300,
        )
    exported = subprocess.run(
        [RLM_TUI, "export", "--db", "h.db"], cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=60
    )
    return proc, [json.loads(line) for line in exported.stdout.splitlines()], told


CLI_ATTACKS = {
    "a malformed result": (forge(json.dumps({**RESULT, "stdout": ["a"], "id": 1})), "malformed frame"),
    "a forged batch of tiny values": (
        'import os, sys\nos.write(int(sys.argv[2]), b\'{"t": "llm_batch", "id": 1, '
        '"prompts": [\' + b\'"", \' * 200_000 + b\'""]}\\n\')\nimport time\ntime.sleep(30)',
        "malformed frame",
    ),
    "a million prompts": ("llm_batch([''] * 1_000_000)", "llm_batch got 1,000,000 prompts"),
    "escape sequences": ("print('\\x1b[2J\\x1b]0;pwned\\x07' * 1000)", "pwned"),
}


@pytest.mark.parametrize("attack, told", CLI_ATTACKS.values(), ids=CLI_ATTACKS.keys())
def test_attacks_through_the_cli_leave_the_run_going(tmp_path, attack, told):
    proc, records, said = cli_run(tmp_path, attack)
    assert proc.returncode == 0, proc.stderr
    assert [r["answer"]["content"] for r in records] == ["survived", "survived"]
    assert len(said) == 2 and all(told in s for s in said), said
