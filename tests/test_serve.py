"""`rlm-tui serve` in a real headless Chromium: the page's terminal shows the stored run, and a key reaches the app.

Chromium is driven over its DevTools protocol with aiohttp; every wait is on a condition, bounded by HANG.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from rlm_tui.env import load_environment
from runs import stored_run

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HANG = 120.0  # seconds: only a bound on a hang under load, never a measure

# Runs before the page's own script: keeps the xterm.js Terminal the page makes (`this.terminal = new Terminal`).
KEEP_TERMINAL = """
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  set(value) {
    Object.defineProperty(this, "terminal", {value, writable: true, configurable: true, enumerable: true});
    window.keptTerminal = value;
  },
});
"""

# Resolves with the terminal's rows once every one of `wanted` is on screen, re-checked after each write it parses.
WAIT_FOR_TEXT = """
(wanted) => new Promise((resolve) => {
  const rows = () => {
    const t = window.keptTerminal, b = t.buffer.active, out = [];
    for (let y = 0; y < t.rows; y++) out.push((b.getLine(b.viewportY + y) || {translateToString: () => ""})
      .translateToString(true));
    return out.join("\\n");
  };
  const check = () => { const s = rows(); if (wanted.every((w) => s.includes(w))) { resolve(s); return true; } };
  const start = () => { if (!check()) window.keptTerminal.onWriteParsed(check); };
  if (window.keptTerminal) start(); else window.addEventListener("load", start);
})
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DevTools:
    """One page of a Chromium, spoken to over the DevTools protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws, self.next_id = ws, 0
        self.replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self.replies:
                self.replies.pop(data["id"]).set_result(data)
            elif data.get("method") in self.events:
                self.events.pop(data["method"]).set_result(data["params"])

    def event(self, method: str) -> asyncio.Future[dict[str, Any]]:
        """The next `method` event, to be awaited once what causes it is sent."""
        future = self.events[method] = asyncio.get_running_loop().create_future()
        return future

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        reply = self.replies[self.next_id] = asyncio.get_running_loop().create_future()
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        data = await asyncio.wait_for(reply, HANG)
        assert "error" not in data, data
        return data["result"]

    async def call(self, function: str, *args: Any) -> Any:
        """The value of the JS `function` applied to `args`, awaited if it is a promise."""
        expression = f"({function})(...{json.dumps(list(args))})"
        result = await self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def type_key(self, key: str, code: str, key_code: int, shift: bool = False) -> None:
        modifiers = 8 if shift else 0
        await self.send(
            "Input.dispatchKeyEvent",
            type="keyDown",
            key=key,
            code=code,
            text=key,
            windowsVirtualKeyCode=key_code,
            modifiers=modifiers,
        )
        await self.send("Input.dispatchKeyEvent", type="keyUp", key=key, code=code, windowsVirtualKeyCode=key_code)


async def start_chromium(profile: Path) -> tuple[asyncio.subprocess.Process, str]:
    """A headless Chromium and its DevTools address, read from the line it prints once it listens."""
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
        "--remote-debugging-port=0",
        "about:blank",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stderr is not None
    while True:
        line = (await asyncio.wait_for(proc.stderr.readline(), HANG)).decode(errors="replace")
        assert line, "chromium exited before it listened"
        if line.startswith("DevTools listening on "):
            asyncio.ensure_future(proc.stderr.read())  # drained, so that its later chatter never blocks it
            return proc, line.split()[-1]


async def start_serve(db: Path, run_id: str, port: int) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rlm_tui.cli",
        "serve",
        run_id[:8],
        "--db",
        str(db),
        "--port",
        str(port),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), HANG)).decode()
    return proc, line


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        os.killpg(proc.pid, 15)
        try:
            await asyncio.wait_for(proc.wait(), HANG)
        except TimeoutError:
            os.killpg(proc.pid, 9)
            await proc.wait()


def test_the_served_page_shows_the_run_and_a_key_opens_help(tmp_path):
    assert os.path.exists(CHROMIUM), "needs Debian's chromium (.ci/run installs it): apt-get install -y chromium"
    # two rollouts: the run view shows (a run of one opens straight on its rollout)
    state, _ = stored_run(tmp_path, load_environment("verbatim-copy", {}), n=2)

    async def main() -> tuple[str, str, str]:
        port = free_port()
        serve, said = await start_serve(tmp_path / "t.db", state.id, port)
        chromium, browser_ws = await start_chromium(tmp_path / "profile")
        try:
            async with aiohttp.ClientSession() as http:
                devtools_port = browser_ws.split("/")[2]
                async with http.get(f"http://{devtools_port}/json/list") as reply:
                    page = next(t for t in await reply.json() if t["type"] == "page")
                async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                    tab = DevTools(ws)
                    await tab.send("Page.enable")
                    await tab.send("Page.addScriptToEvaluateOnNewDocument", source=KEEP_TERMINAL)
                    loaded = tab.event("Page.loadEventFired")
                    await tab.send("Page.navigate", url=f"http://127.0.0.1:{port}/")
                    await asyncio.wait_for(loaded, HANG)
                    run_view = await asyncio.wait_for(tab.call(WAIT_FOR_TEXT, [state.id[:8], "verbatim-copy"]), HANG)
                    await tab.call("() => window.keptTerminal.focus()")
                    await tab.type_key("?", "Slash", 191, shift=True)
                    help_view = await asyncio.wait_for(
                        tab.call(WAIT_FOR_TEXT, ["Play the recorded events at their pace"]), HANG
                    )
                    tab.reader.cancel()
        finally:
            await stop(chromium)
            await stop(serve)
        return said, run_view, help_view

    said, run_view, help_view = asyncio.run(main())
    assert said.startswith("rlm-tui: serving the app on http://127.0.0.1:") and "local-only" in said, said
    assert state.id[:8] in run_view and "Play the recorded events" not in run_view
    assert "Play the recorded events at their pace" in help_view


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "0"], "must be a port from 1 to 65535, got 0"),
        (["--port", "http"], "expected a port number, got 'http'"),
        (["--host", "a b;rm"], "expected an IP address or a host name, got 'a b;rm'"),
        (["nosuchrun"], "nosuchrun"),
    ],
)
def test_a_bad_host_port_or_run_is_one_line_and_exit_2_before_anything_listens(tmp_path, args, message):
    stored_run(tmp_path, load_environment("verbatim-copy", {}), n=1)
    done = subprocess.run(
        [sys.executable, "-m", "rlm_tui.cli", "serve", *args, "--db", str(tmp_path / "t.db")],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert done.returncode == 2 and done.stdout == "", (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def test_the_app_command_quotes_every_word_of_a_hostile_path(tmp_path):
    """The shell textual-serve starts the app through reads back exactly our words: a path cannot add a command."""
    from rlm_tui.commands.serve import app_command

    db = tmp_path / "a b'; touch pwned; '$(id).db"
    words = [sys.executable, "-m", "rlm_tui.cli", "replay", "--db", str(db), "--context-limit", "4096", "ab12"]
    echoed = subprocess.run(
        ["/bin/sh", "-c", "printf '%s\\n' " + app_command(db, "ab12", 4096).split(" ", 1)[1]],
        capture_output=True,
        text=True,
        timeout=HANG,
        cwd=tmp_path,
    )
    assert echoed.stdout.splitlines() == words[1:] and not (tmp_path / "pwned").exists()


def test_a_non_local_host_warns_that_anyone_who_reaches_the_port_controls_the_runs(tmp_path):
    stored_run(tmp_path, load_environment("verbatim-copy", {}), n=1)
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "rlm_tui.cli", "serve", "--host", "0.0.0.0", "--port", str(port)],
        env={**os.environ, "PYTHONPATH": str(ROOT), "RLM_TUI_DB": str(tmp_path / "t.db")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        warning, said = serve.stderr.readline(), serve.stdout.readline()  # type: ignore[union-attr]
    finally:
        serve.terminate()
        serve.wait(HANG)
    assert warning == f"rlm-tui: warning: --host 0.0.0.0: anyone who can reach port {port} controls the runs\n"
    assert said.startswith(f"rlm-tui: serving the app on http://0.0.0.0:{port} (reachable from outside)"), said


def test_a_taken_port_is_one_line_and_exit_2(tmp_path):
    stored_run(tmp_path, load_environment("verbatim-copy", {}), n=1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "rlm_tui.cli", "serve", "--port", str(port), "--db", str(tmp_path / "t.db")],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=HANG,
        )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert (
        done.stderr.startswith(f"rlm-tui: error: cannot listen on http://127.0.0.1:{port}: ")
        and done.stderr.count("\n") == 1
    ), done.stderr
