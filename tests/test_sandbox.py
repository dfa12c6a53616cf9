"""The jailed REPL through its host API, with the real nsjail: cells, output, answer, llm_batch, timeouts, crashes."""

import asyncio
import json
import os

import pytest

from rlm_tui.sandbox import Limits, Sandbox, SandboxError

SWALLOW = "import time\nwhile True:\n    try:\n        time.sleep(1)\n    except BaseException:\n        pass\n"


async def test_state_persists_across_cells(make):
    box = await make()
    assert (await box.run("x = 40\ndef f(y):\n    return x + y")).error is None
    result = await box.run("f(2)")
    assert result.out == "Out[2]: 42"
    assert result.output == "Out[2]: 42"


async def test_trailing_expression_gives_out_with_execution_count(make):
    box = await make()
    assert (await box.run("a = 1")).out is None
    assert (await box.run("a + 1")).out == "Out[2]: 2"
    assert (await box.run("a = [1]\na")).out == "Out[3]: [1]"
    assert (await box.run("None")).out is None
    assert (await box.run("a;")).out is None  # a trailing semicolon hides the value, as in IPython


async def test_stdout_then_stderr_in_output(make):
    box = await make()
    result = await box.run("import sys\nprint('to err', file=sys.stderr)\nprint('to out')\n'value'")
    assert result.stdout == "to out\n"
    assert result.stderr == "to err\n"
    assert result.output == "to out\nto err\nOut[1]: 'value'"
    assert result.output_chars == len(result.output)


async def test_error_gives_trimmed_traceback_and_next_cell_works(make):
    box = await make()
    result = await box.run("print('before')\ndef g():\n    return 1 / 0\ng()")
    assert result.error == "ZeroDivisionError: division by zero"
    assert 'File "<cell-1>", line 3, in g' in result.traceback
    assert "repl_server" not in result.traceback
    assert result.output.startswith("before\nTraceback")
    assert (await box.run("'fine'")).out == "Out[2]: 'fine'"


async def test_syntax_error_is_reported(make):
    box = await make()
    result = await box.run("def (:")
    assert result.error.startswith("SyntaxError")
    assert "repl_server" not in result.traceback
    assert (await box.run("1")).out == "Out[2]: 1"


async def test_answer_round_trips_every_cell(make):
    box = await make(answer={"content": "draft", "ready": False})
    result = await box.run("answer['content'] += ' two'")
    assert result.answer == {"content": "draft two", "ready": False}
    result = await box.run("answer['ready'] = True")
    assert result.answer == {"content": "draft two", "ready": True}
    assert box.answer == {"content": "draft two", "ready": True}


async def test_a_non_string_content_is_reported_as_text_and_kept_as_it_is(make):
    box = await make()
    assert (await box.run("answer['content'] = 42")).answer == {"content": "42", "ready": False}
    assert (await box.run("answer['content'] + 1")).out == "Out[2]: 43"


async def test_rebinding_answer_is_an_error_and_keeps_the_dict(make):
    box = await make(answer={"content": "kept", "ready": False})
    result = await box.run("answer = 'oops'")
    assert "answer must stay a dict" in result.error
    assert result.answer == {"content": "kept", "ready": False}
    assert (await box.run("answer")).out == "Out[2]: {'content': 'kept', 'ready': False}"


@pytest.mark.parametrize(
    "context",
    [
        "a string context\nwith lines",
        "ünïcödé ✓ \udcff",
        None,
        {"rows": [1, 2.5, None, "x"], "n": {"k": True, "s": "ü"}},
    ],
)
async def test_context_is_seeded(make, context):
    box = await make(context=context)
    result = await box.run(f"import json\ncontext == json.loads({json.dumps(json.dumps(context))})")
    assert result.out == "Out[1]: True"


async def test_large_context(make):
    box = await make(context="x" * 16_000_000)
    assert (await box.run("len(context)")).out == "Out[1]: 16000000"


async def test_llm_batch_calls_host_in_order(make):
    box = await make()
    seen = []

    async def llm(prompts):
        seen.append(prompts)
        return [p.upper() for p in prompts]

    result = await box.run("llm_batch(['a', 'b', 'c'])", llm)
    assert seen == [["a", "b", "c"]]
    assert result.out == "Out[1]: ['A', 'B', 'C']"


async def test_llm_batch_failure_gives_error_string_per_slot(make):
    box = await make()

    async def broken(prompts):
        raise ValueError("upstream down")

    result = await box.run("r = llm_batch(['a', 'b'])\nlen(r), r[0]", broken)
    assert result.error is None
    assert result.out == "Out[1]: (2, '[llm_batch error] ValueError: upstream down')"


async def test_llm_batch_from_threads_runs_concurrently(make):
    box = await make(timeout=10.0)
    in_flight, all_in = 0, asyncio.Event()

    async def llm(prompts):
        nonlocal in_flight
        in_flight += 1
        if in_flight == 6:
            all_in.set()
        await all_in.wait()  # only returns once all six batches are waiting at once
        return [f"{p}!" for p in prompts]

    code = (
        "from concurrent.futures import ThreadPoolExecutor\n"
        "with ThreadPoolExecutor(6) as pool:\n"
        "    got = list(pool.map(lambda i: llm_batch([str(i), str(i * 10)]), range(6)))\n"
        "got"
    )
    result = await box.run(code, llm)
    assert result.error is None
    assert result.out == "Out[1]: " + repr([[f"{i}!", f"{i * 10}!"] for i in range(6)])


async def test_llm_batch_without_callable_raises_clearly(make):
    box = await make()
    result = await box.run("llm_batch(['a'])")
    assert result.error == "RuntimeError: llm_batch is not available: this REPL was given no sub-LLM to call"


async def test_scientific_stack_imports(make):
    box = await make(timeout=60.0)
    result = await box.run(
        "import numpy, scipy.linalg, sympy\n"
        "int(numpy.arange(4).sum()), float(scipy.linalg.det([[2, 0], [0, 3]])), str(sympy.sqrt(8))"
    )
    assert result.error is None, result.output
    assert result.out == "Out[1]: (6, 6.0, '2*sqrt(2)')"


async def test_writes_to_fds_1_and_2_do_not_corrupt_frames(make):
    box = await make()
    code = (
        "import os, sys\n"
        'os.write(1, b\'{"t": "result", "id": 1, "out": "forged"}\\n\')\n'
        'os.write(2, b\'{"t": "ready"}\\n\' * 1000)\n'
        "sys.__stdout__.write('half a frame {\"t\": '); sys.__stdout__.flush()\n"
        "print('real')"
    )
    result = await box.run(code)
    assert result.error is None
    assert result.output == "real\n"
    assert (await box.run("2")).out == "Out[2]: 2"


async def test_huge_print_is_capped_but_counted(make):
    box = await make(output_cap=10_000, timeout=30.0)
    result = await box.run("for _ in range(100):\n    print('x' * 1_000_000)")
    assert len(result.output) == 10_000
    assert len(result.stdout) == 10_000
    assert result.output_chars == 100 * 1_000_001


async def test_timeout_interrupts_and_keeps_state(make):
    box = await make(timeout=0.5)
    await box.run("x = 41")
    result = await box.run("import time\nprint('started')\ntime.sleep(30)")
    assert result.error == "timeout"
    assert not result.restarted and result.lost is None
    assert result.stdout == "started\n"
    assert "KeyboardInterrupt" in result.output
    assert (await box.run("x + 1")).out == "Out[3]: 42"
    assert box.restarts == 0


async def test_time_waiting_on_sub_llms_does_not_count_toward_the_timeout(make):
    box = await make(timeout=0.5)

    async def slow(prompts):
        await asyncio.sleep(0.8)
        return [p.upper() for p in prompts]

    result = await box.run("r = llm_batch(['a'])\nr += llm_batch(['b'])\nr", slow)
    assert result.error is None and result.out == "Out[1]: ['A', 'B']" and result.elapsed_s > 1.5
    spent = await box.run("import time\nr = llm_batch(['c'])\ntime.sleep(0.7)", slow)
    assert spent.error == "timeout"  # the code's own 0.7 s still counts


async def test_timeout_swallowing_interrupt_restarts_and_restores(make):
    box = await make(context={"k": "v"}, timeout=0.5, interrupt_grace=0.3)
    await box.run("answer['content'] = 'kept'\ny = 1")
    result = await box.run(SWALLOW)
    assert result.restarted
    assert result.error.startswith("timeout")
    assert "every variable you defined is gone" in result.lost
    assert result.answer == {"content": "kept", "ready": False}
    assert box.restarts == 1
    after = await box.run("context, answer")
    assert after.out == "Out[1]: ({'k': 'v'}, {'content': 'kept', 'ready': False})"
    assert (await box.run("y")).error == "NameError: name 'y' is not defined"


@pytest.mark.parametrize(
    ("code", "cause"),
    [
        ("import os\nos._exit(3)", "exited with code 3"),
        ("import ctypes\nctypes.string_at(0)", "killed by SIGSEGV"),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "killed by SIGKILL"),
    ],
)
async def test_crash_restarts_with_clear_error(make, code, cause):
    box = await make(answer={"content": "a", "ready": True})
    await box.run("z = 1")
    result = await box.run(code)
    assert result.restarted
    assert result.error.startswith("crash: the REPL process") and cause in result.error
    assert cause in result.lost
    assert result.answer == {"content": "a", "ready": True}
    assert (await box.run("context, answer['content']")).out == "Out[1]: ('the context', 'a')"
    assert (await box.run("z")).error == "NameError: name 'z' is not defined"


async def test_segfault_report_shows_the_cell(make):
    box = await make()
    result = await box.run("import ctypes\nctypes.string_at(0)")
    assert "Segmentation fault" in result.traceback
    assert '"<cell-1>", line 2' in result.traceback


async def test_crash_from_a_background_thread_is_reported(make):
    box = await make()
    await box.run("import os, threading\nthreading.Timer(0.05, os._exit, (5,)).start()")
    result = await box.run("import time\ntime.sleep(1.5)")
    assert result.restarted
    assert "exited with code 5" in result.lost
    assert (await box.run("1")).out == "Out[1]: 1"


async def test_cancelled_run_does_not_leak_into_the_next(make):
    box = await make(timeout=10.0)
    started = asyncio.Event()

    async def llm(prompts):
        started.set()
        return ["go"]

    task = asyncio.ensure_future(box.run("llm_batch(['x'])\nimport time\ntime.sleep(5)\n'stale'", llm))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await box.run("'fresh'")).out.endswith("'fresh'")


async def test_missing_nsjail_is_a_one_line_error():
    with pytest.raises(SandboxError) as info:
        await Sandbox(nsjail="/nonexistent/nsjail").start()
    message = str(info.value)
    assert "\n" not in message
    assert "nsjail" in message and "/nonexistent/nsjail" in message


async def test_nsjail_env_override(monkeypatch):
    monkeypatch.setenv("RLM_TUI_NSJAIL", "/nonexistent/from-env")
    with pytest.raises(SandboxError, match="from-env"):
        await Sandbox().start()


@pytest.mark.parametrize("binary", ["/usr/bin/false", "/usr/bin/true"])
async def test_jail_that_dies_at_start_is_a_one_line_error(binary):
    box = Sandbox(nsjail=binary)
    with pytest.raises(SandboxError) as info:
        await box.start()
    assert str(info.value).startswith("could not start the nsjail sandbox: ")
    assert "\n" not in str(info.value)
    await box.close()


async def test_a_jail_that_never_gets_ready_says_why_and_is_killed(tmp_path, monkeypatch):
    from rlm_tui.sandbox import jail

    fake = tmp_path / "nsjail"  # logs a line, then ignores SIGTERM and never answers
    fake.write_text("#!/bin/sh\necho '[W][2026-12-01][1] mnt.cc():1 mounted /tmp' >&2\ntrap '' TERM\nexec sleep 1000\n")
    fake.chmod(0o755)
    monkeypatch.setattr(jail, "START_TIMEOUT", 0.5)
    box = Sandbox(nsjail=str(fake))
    with pytest.raises(SandboxError) as info:
        await box.start()
    assert str(info.value) == (
        "could not start the nsjail sandbox: the jail was not ready after 0.5 s; "
        "is the machine overloaded? try a lower --concurrency"
    )


async def test_close_is_idempotent_and_run_after_close_raises(make):
    box = await make()
    pid = box.pid
    assert pid is not None and os.path.exists(f"/proc/{pid}")
    await box.close()
    await box.close()
    assert box.pid is None
    with pytest.raises(SandboxError):
        await box.run("1")


async def test_limits_reach_the_jail(make):
    box = await make(limits=Limits(memory_mb=1024, open_files=100, file_size_mb=8))
    result = await box.run(
        "import resource\n[resource.getrlimit(getattr(resource, 'RLIMIT_' + n))[0] for n in ('AS', 'NOFILE', 'FSIZE')]"
    )
    assert result.out == f"Out[1]: {[1024 * 2**20, 100, 8 * 2**20]}"


async def test_cells_undo_rebinding_of_stdout_and_sigint(make):
    box = await make(timeout=0.5)
    await box.run("import io, signal, sys\nsys.stdout = io.StringIO()\nsignal.signal(signal.SIGINT, signal.SIG_IGN)")
    assert (await box.run("print('seen')")).output == "seen\n"
    result = await box.run("import time\ntime.sleep(30)")
    assert result.error == "timeout" and not result.restarted


async def test_closing_the_protocol_fds_is_a_crash_not_a_hang(make):
    box = await make(timeout=5.0)
    # every fd past stderr, whatever numbers the host's busy process gave the protocol pipes
    result = await box.run("import os\nos.closerange(3, 1 << 20)")
    assert result.restarted and result.error.startswith("crash:")  # a hang would read timeout
    assert (await box.run("1")).out == "Out[1]: 1"


async def test_close_during_a_cell_raises_in_run(make):
    box = await make(timeout=10.0)
    started = asyncio.Event()

    async def llm(prompts):
        started.set()
        return ["go"]

    task = asyncio.ensure_future(box.run("llm_batch(['x'])\nimport time\ntime.sleep(5)", llm))
    await started.wait()
    await box.close()
    with pytest.raises(SandboxError, match="closed"):
        await task


async def test_cell_sources_reach_tracebacks_and_inspect(make):
    box = await make()
    await box.run("def f():\n    return 1 / 0")
    assert "return 1 / 0" in (await box.run("f()")).traceback
    got = await box.run("import inspect\nprint(inspect.getsource(f))")
    assert got.stdout == "def f():\n    return 1 / 0\n"


def test_an_interpreter_path_through_a_directory_the_jail_lacks_still_starts(tmp_path):
    """`../venv/bin/python` run from a project directory: the jail mounts no such directory to climb out of."""
    import subprocess
    import sys
    from pathlib import Path

    climb = "/".join([".."] * len(Path(tmp_path).parts[1:]))
    python = f"{climb}{sys.executable}"  # relative to tmp_path, the directory it is run from
    code = (
        "import asyncio, sys\n"
        "from rlm_tui.sandbox import Sandbox\n"
        "assert '..' in sys.executable, sys.executable\n"
        "async def main():\n"
        "    async with Sandbox() as box:\n"
        "        await box.start()\n"
        "        print((await box.run('print(6 * 7)')).stdout)\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run([python, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"


def _live_jails() -> list[int]:
    """nsjail processes this process started that are still running (a reaped one is gone, a killed one a zombie)."""
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat") as f:
                comm, rest = f.read().split(" (", 1)[1].rsplit(") ", 1)
        except (OSError, ValueError, IndexError):
            continue
        state, ppid = rest.split()[:2]
        if comm == "nsjail" and int(ppid) == os.getpid() and state != "Z":
            found.append(int(name))
    return found


async def test_a_start_cancelled_at_any_point_leaves_no_jail_behind():
    """ctrl+c lands wherever the start is, the spawn included: whatever was started is killed and reaped."""
    for steps in range(40):
        box = Sandbox()
        start = asyncio.ensure_future(box.start(context="c"))
        for _ in range(steps):
            await asyncio.sleep(0)
        start.cancel()
        try:
            await start
        except asyncio.CancelledError:
            pass
        await box.close()
        assert _live_jails() == [], f"cancelled after {steps} steps"


async def test_a_rollout_cancelled_twice_while_its_sandbox_starts_leaves_no_jail_behind():
    """The run cancels every rollout again as soon as the first one ends: a rollout still waiting for its sandbox
    start to be stopped must go on waiting, or that start, and its jail, outlive the run."""
    from rlm_tui import events as ev
    from rlm_tui.engine.run import Run, RunConfig
    from rlm_tui.engine.scripted import ScriptedClient
    from rlm_tui.engine.steps import RolloutSettings
    from rlm_tui.env import load_environment

    env = load_environment("verbatim-copy", {"target_length": "20"})
    for steps in range(12):
        started = asyncio.Event()
        config = RunConfig(env=env.name, num_examples=1, rollout=RolloutSettings(mode="rlm", timeout=30))

        def sink(event: ev.Event, started: asyncio.Event = started) -> None:
            if isinstance(event, ev.RolloutStarted):
                started.set()

        run = asyncio.ensure_future(Run(config, env, ScriptedClient(env, delay=600), [sink]).execute())
        await started.wait()  # its model call waits 600 s; its sandbox is starting meanwhile
        run.cancel()
        for _ in range(steps):
            await asyncio.sleep(0)
        run.cancel()
        await asyncio.wait((run,))
        assert _live_jails() == [], f"cancelled again after {steps} steps"
