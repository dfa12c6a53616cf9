"""The app's controls against a real engine running in another process, as `rlm-tui attach` sees it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from textual.widgets import TextArea
from textual.widgets._footer import FooterKey

from fake_openai import FakeOpenAI, looping
from pilot import until
from rlm_tui import events as ev
from rlm_tui.events import new_id
from rlm_tui.store import open_db, read_events
from rlm_tui.tui.app import RlmApp
from rlm_tui.tui.screens.modals import ChoiceScreen, InspectScreen, TextScreen
from rlm_tui.tui.screens.rollout import RolloutScreen
from rlm_tui.tui.screens.run import RunScreen

RLM_TUI = str(Path(sys.executable).parent / "rlm-tui")
SIZE = (150, 45)


class Engine:
    """`rlm-tui run verbatim-copy --headless` in a subprocess, writing to a temporary database."""

    def __init__(self, tmp_path, *args, env=None, delay="2"):  # slow enough that no rollout ends before a key lands
        self.db = tmp_path / "live.db"
        open_db(self.db).close()
        self.run_id = new_id()
        self.log = tmp_path / "engine.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RLM_TUI_"))}
        environ.update(env or {})
        argv = [
            RLM_TUI,
            "run",
            "verbatim-copy",
            "--headless",
            "--run-id",
            self.run_id,
            "--db",
            str(self.db),
            "-n",
            "1",
            *args,
        ]
        if delay is not None:
            argv += ["--scripted-delay", delay]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=environ)

    def events(self):
        return [e for _, e in read_events(open_db(self.db), run_id=self.run_id)]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def asking(app, name):
    """The question `name` is on top."""
    return isinstance(app.screen, ChoiceScreen) and app.screen.name == name


def rollout(app):
    rollouts = list(app.session.feed.state.rollouts.values()) if app.session.feed else []
    return rollouts[0] if rollouts else None


async def open_rollout(app, pilot):
    await until(pilot, lambda: rollout(app) is not None and rollout(app).status == "running")
    # a run of one rollout opens on it; a larger one waits for enter
    await until(
        pilot,
        lambda: (
            isinstance(app.screen, RolloutScreen)
            or isinstance(app.screen, RunScreen)
            and app.screen.ready
            and app.screen.target()
        ),
    )
    if isinstance(app.screen, RunScreen):
        await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, RolloutScreen) and app.screen.ready)
    return rollout(app)


async def pause(app, pilot, r):
    await pilot.press("space")
    await until(pilot, lambda: r.paused)


def main_calls_after(events, rollout_id, start):
    return [e for e in events[start:] if isinstance(e, ev.ModelCallStarted) and e.rollout_id == rollout_id]


async def test_pause_holds_model_calls_step_runs_one_and_inspect_runs_in_the_sandbox(tmp_path):
    engine = Engine(tmp_path)
    app = RlmApp(engine.db, run_id=engine.run_id, follow=True)
    try:
        async with app.run_test(size=SIZE) as pilot:
            r = await open_rollout(app, pilot)
            await pause(app, pilot, r)
            await pilot.press("i")
            await until(pilot, lambda: isinstance(app.screen, InspectScreen) and app.screen.ready)
            console = app.screen
            console.query_one(TextArea).load_text("secret = 6 * 7\nprint(secret, sorted(answer))")
            await pilot.press("ctrl+r")
            await until(pilot, lambda: console.cells() and console.cells()[-1].output is not None)
            assert "42 ['content', 'ready']" in console.cells()[-1].output
            await pilot.press("ctrl+s")  # share it with the model
            await pilot.press("escape")
            assert isinstance(app.screen, RolloutScreen)
            events = engine.events()
            paused_at = max(i for i, e in enumerate(events) if isinstance(e, ev.RolloutPaused) and e.paused)
            assert main_calls_after(events, r.id, paused_at) == []  # the operator's cell ran; the model did not
            turns = len(r.turns)
            await pilot.press("s")
            await until(
                pilot,
                lambda: (
                    sum(isinstance(a, ev.OperatorAction) and a.action == "step" for a in r.operator)
                    and r.paused
                    and len(r.turns) == turns + 1
                ),
            )
            await pilot.press("space")  # resume
            await until(pilot, lambda: r.status == "done", timeout=300)
        events = engine.events()
        shared = [e for e in events if isinstance(e, ev.OperatorAction) and e.action == "inject"]
        assert "secret = 6 * 7" in shared[0].text and "42 ['content', 'ready']" in shared[0].text
        pauses = [i for i, e in enumerate(events) if isinstance(e, ev.RolloutPaused)]
        for start, end in zip(pauses[::2], pauses[1::2]):
            assert events[start].paused and not events[end].paused
            assert main_calls_after(events[:end], r.id, start) == []  # nothing between a pause and its release
    finally:
        engine.stop()


async def test_an_injected_message_reaches_the_models_next_request(tmp_path):
    with FakeOpenAI(looping, latency=0.2) as server:
        engine = Engine(
            tmp_path,
            "--model",
            "root",
            "--sub-model",
            "sub",
            "--base-url",
            server.base_url,
            "--max-turns",
            "1000",
            env={"OPENAI_API_KEY": "k"},
            delay=None,
        )  # ends only when asked
        app = RlmApp(engine.db, run_id=engine.run_id, follow=True)
        try:
            async with app.run_test(size=SIZE) as pilot:
                r = await open_rollout(app, pilot)
                await pause(app, pilot, r)
                asked = len(server.requests)
                await pilot.press("m")
                await until(pilot, lambda: isinstance(app.screen, TextScreen))
                app.screen.query_one(TextArea).load_text("please finish now")
                await pilot.press("ctrl+s")
                await until(pilot, lambda: any(a.action == "inject" for a in r.operator))
                await pilot.press("space")
                await until(pilot, lambda: r.status == "done", timeout=300)
                assert r.answer == {"content": "stopped on request", "ready": True}
        finally:
            engine.stop()
    assert server.requests[asked]["messages"][-1] == {"role": "user", "content": "please finish now"}


async def test_edit_answer_then_finish_scores_the_edited_answer(tmp_path):
    engine = Engine(tmp_path)
    app = RlmApp(engine.db, run_id=engine.run_id, follow=True)
    try:
        async with app.run_test(size=SIZE) as pilot:
            r = await open_rollout(app, pilot)
            await pause(app, pilot, r)
            await pilot.press("e")
            await until(pilot, lambda: isinstance(app.screen, TextScreen))
            assert app.screen.query_one(TextArea).text == r.answer["content"]  # prefilled
            app.screen.query_one(TextArea).load_text("edited by hand")
            await pilot.press("ctrl+s")
            await until(pilot, lambda: r.answer["content"] == "edited by hand")
            assert r.answer_history[-1][2] == "operator"
            await pilot.press("f")
            await until(pilot, lambda: r.status == "done")
            assert r.stop_reason == "operator_finished" and r.reward is not None and r.reward < 1.0
    finally:
        engine.stop()


async def test_kill_asks_first_then_ends_the_rollout(tmp_path):
    engine = Engine(tmp_path)
    app = RlmApp(engine.db, run_id=engine.run_id, follow=True)
    try:
        async with app.run_test(size=SIZE) as pilot:
            r = await open_rollout(app, pilot)
            await pause(app, pilot, r)  # so that it cannot finish on its own meanwhile
            names = {c.title for c in app.get_system_commands(app.screen)}
            assert {"rollout: resume", "rollout: kill", "rollout: inspect", "run: pause"} <= names
            await pilot.press("K")
            await until(pilot, lambda: asking(app, "kill"))
            await pilot.press("n")
            assert r.status == "running" and isinstance(app.screen, RolloutScreen)
            await pilot.press("K")
            await until(pilot, lambda: asking(app, "kill"))
            await pilot.press("y")
            await until(pilot, lambda: r.status == "killed" and app.session.run_over)
            assert r.reward is None and app.session.feed.state.status == "killed"
            assert not app.screen.check_action("pause", ())  # a finished run takes no more commands
    finally:
        engine.stop()


def footer(app):
    """(key, description) of each key the footer shows."""
    return {(key.key_display, key.description) for key in app.screen.query(FooterKey)}


ROLLOUT_KEYS = {"Pause", "Resume", "Step", "Inspect", "Message", "Edit answer", "Finish", "Kill"}


async def test_the_footer_offers_space_for_the_run_and_drops_a_finished_rollouts_keys(tmp_path):
    engine = Engine(tmp_path, "-n", "2", "--concurrency", "1")
    app = RlmApp(engine.db, run_id=engine.run_id, follow=True)
    try:
        async with app.run_test(size=SIZE) as pilot:
            r = await open_rollout(app, pilot)
            await pilot.press("escape")
            await until(pilot, lambda: ("space/P", "Pause run") in footer(app))
            await pilot.press("space")  # the whole run: the second rollout stays queued, so the run goes on
            await until(pilot, lambda: r.paused and ("space/P", "Resume run") in footer(app))
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, RolloutScreen) and ("space", "Resume") in footer(app))
            await pilot.press("f")
            await until(pilot, lambda: r.status == "done")
            await until(
                pilot,
                lambda: (
                    ("P", "Resume run") in footer(app)
                    and not ROLLOUT_KEYS & {description for _, description in footer(app)}
                ),
            )
            assert app.session.controls_enabled  # the run goes on; only this rollout is over
    finally:
        engine.stop()


async def test_leaving_a_paused_run_asks_whether_to_resume_it(tmp_path):
    engine = Engine(tmp_path)
    app = RlmApp(engine.db, run_id=engine.run_id, follow=True)
    try:
        async with app.run_test(size=SIZE) as pilot:
            r = await open_rollout(app, pilot)
            await pause(app, pilot, r)
            await pilot.press("q")
            await until(pilot, lambda: asking(app, "leave"))
            await pilot.press("escape")  # cancel: still here
            await until(pilot, lambda: isinstance(app.screen, RolloutScreen))
            await pilot.press("q")
            await until(pilot, lambda: asking(app, "leave"))
            await pilot.press("r")
            await until(pilot, lambda: app.return_code is not None)
        assert engine.proc.wait(60) == 0  # resumed, it ran to the end with nobody attached
        assert [e.status for e in engine.events() if isinstance(e, ev.RunFinished)] == ["done"]
    finally:
        engine.stop()


async def test_quitting_the_app_that_started_the_run_stops_it_as_killed(tmp_path):
    engine = Engine(tmp_path, delay="600")  # the run cannot end on its own before the operator stops it
    app = RlmApp(engine.db, run_id=engine.run_id, follow=True, engine=engine.proc, engine_log=engine.log)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: rollout(app) is not None and rollout(app).status == "running")
            assert app.session.mode == "live"
            await pilot.press("q")
            await until(pilot, lambda: asking(app, "quit"))
            await pilot.press("s")
            await until(pilot, lambda: engine.proc.poll() is not None and app.return_code is not None)
        assert app.return_code == 0
        states = [e for e in engine.events() if isinstance(e, ev.RunFinished)]
        assert [e.status for e in states] == ["killed"]
    finally:
        engine.stop()


async def test_an_engine_that_fails_shows_its_last_line(tmp_path):
    engine = Engine(tmp_path, "--env-arg", "content_type=xml")
    app = RlmApp(engine.db, run_id=engine.run_id, follow=True, engine=engine.proc, engine_log=engine.log)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(
                pilot, lambda: app.engine_rc is not None and len(app._notifications)
            )  # notify() posts a message
            messages = [n.message for n in app._notifications]
            assert any(m.startswith("bad value 'xml' for verbatim-copy knob content_type") for m in messages), messages
            assert engine.proc.returncode != 0
    finally:
        engine.stop()


def test_a_closed_terminal_leaves_a_paused_run_going(tmp_path):
    """The app in a real pseudo-terminal: pause its run, hang up the terminal, and the run still finishes."""
    import pty
    import signal
    import sqlite3
    import threading

    from rlm_tui.store import send_command

    db = tmp_path / "hup.db"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RLM_TUI_"))}
    environ.update(TERM="xterm-256color", COLUMNS="120", LINES="40")
    main, child = pty.openpty()
    app = subprocess.Popen(
        [RLM_TUI, "run", "verbatim-copy", "-n", "1", "--scripted-delay", "2", "--db", str(db)],
        stdin=child,
        stdout=child,
        stderr=child,
        env=environ,
        cwd=tmp_path,
        start_new_session=True,
    )
    os.close(child)
    threading.Thread(target=lambda: _drain(main), daemon=True).start()  # a terminal that keeps reading

    def query(sql):
        try:
            with sqlite3.connect(db) as conn:
                return conn.execute(sql).fetchone()
        except sqlite3.OperationalError:
            return None

    def wait(sql, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = query(sql)
            if row and row[0]:
                return row[0]
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for: {sql}")

    run_id = wait("select id from runs")
    try:
        send_command(open_db(db), run_id, "pause")
        wait("select count(*) from events where kind = 'rollout_paused' and json_extract(data, '$.paused') = 1")
        app.send_signal(signal.SIGHUP)
        assert app.wait(30) == 129
        assert wait("select status from runs where status != 'running'") == "done"
    finally:
        send_command(open_db(db), run_id, "kill")  # never leave an engine behind, whatever failed
        os.close(main)


def _drain(fd):
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass
