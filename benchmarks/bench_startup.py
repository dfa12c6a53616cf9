"""Process start, each figure beside a floor measured in the same run: `python benchmarks/bench_startup.py`.

Every program starts as a real process on a pseudo-terminal; the time is until a known text is drawn on it
(the floors are timed the same way). Median of several starts."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import termios
import textwrap
import time
from pathlib import Path

from table import row

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

REPEATS = 5
COLUMNS, LINES = 160, 45
ESCAPES = re.compile(rb"\x1b(\[[0-9;?<=>$ ]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[@-_])")
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": str(LINES)}
ENV.pop("OPENAI_API_KEY", None)  # the offline scripted model
ENV.pop("OPENAI_BASE_URL", None)

MINIMAL_APP = """
from textual.app import App
from textual.widgets import Static

class Minimal(App):
    def compose(self):
        yield Static("floor app ready")

Minimal().run()
"""

TABLE_APP = """
from textual.app import App
from textual.widgets import DataTable

class Table(App):
    def compose(self):
        yield DataTable()

    def on_mount(self):
        table = self.query_one(DataTable)
        table.add_columns("#", "example", "status", "reward")
        table.add_rows([(str(i), f"floor-ex-{i}", "done", "1.000") for i in range(100)])

Table().run()
"""


def drawn(argv: list[str], text: str, timeout: float = 120.0) -> float:
    """Seconds from starting `argv` on a fresh terminal until `text` is on it; the process is then stopped."""
    main, child = pty.openpty()
    termios.tcsetwinsize(child, (LINES, COLUMNS))
    began = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdin=child, stdout=child, stderr=child, env=ENV, cwd=ROOT, start_new_session=True, close_fds=True
    )
    os.close(child)
    seen = b""
    try:
        while True:
            left = timeout - (time.perf_counter() - began)
            if left <= 0:
                raise TimeoutError(f"{text!r} never drawn by {argv[1:4]}; the screen had: {seen[-600:]!r}")
            ready, _, _ = select.select([main], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the program exited: the terminal is gone
                raise RuntimeError(f"{argv[1:4]} exited before drawing {text!r}: {seen[-600:]!r}") from None
            seen += ESCAPES.sub(b"", chunk)
            if text.encode() in seen:
                return time.perf_counter() - began
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            while select.select([main], [], [], 0.2)[0] and os.read(main, 65536):  # let it restore the terminal
                pass
        except OSError:
            pass
        os.close(main)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def finished(argv: list[str]) -> float:
    """Seconds from starting `argv` until it exits, its output thrown away."""
    began = time.perf_counter()
    subprocess.run(argv, env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - began


def median_pair(program, floor) -> tuple[float, float]:
    """Medians of `program()` and `floor()`, taken in turns so that a noisy moment touches both."""
    ours, floors = [], []
    for _ in range(REPEATS):
        floors.append(floor())
        ours.append(program())
    return statistics.median(ours), statistics.median(floors)


def script(tmp: Path, name: str, text: str) -> list[str]:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return [sys.executable, str(path)]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "rlm_tui.cli", *args]


def bench_envs() -> None:
    ours, floor = median_pair(lambda: finished(cli("envs")), lambda: finished([sys.executable, "-c", "pass"]))
    row("`rlm-tui envs`", ours, "s", floor=floor, floor_name="python -c pass", max_value=0.3)


def bench_run(tmp: Path) -> None:
    minimal = script(tmp, "minimal.py", MINIMAL_APP)
    db = str(tmp / "run.db")
    ours, floor = median_pair(
        lambda: drawn(cli("run", "deepdive", "-n", "1", "--db", db), "deepdive [rlm]"),
        lambda: drawn(minimal, "floor app ready"),
    )
    row(
        "`rlm-tui run` to first screen (offline deepdive)",
        ours,
        "s",
        floor=floor,
        floor_name="minimal Textual app",
        max_ratio=1.5,
    )


def bench_replay(tmp: Path) -> None:
    from runs import store_events
    from synthetic import run_events

    db = store_events(tmp / "replay.db", run_events("replay-run", rollouts=100))
    table = script(tmp, "table.py", TABLE_APP)
    ours, floor = median_pair(
        lambda: drawn(cli("replay", "replay-run", "--db", str(db)), "ex-0"),
        lambda: drawn(table, "floor-ex-0"),
    )
    row(
        "`rlm-tui replay` first useful screen, 100 rollouts",
        ours,
        "s",
        floor=floor,
        floor_name="minimal Textual app, 100-row table",
        max_ratio=1.3,
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        bench_envs()
        bench_run(tmp)
        bench_replay(tmp)


if __name__ == "__main__":
    main()
