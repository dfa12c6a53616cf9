""" "Stop and quit" with 32 running rollouts, from the key to the process's exit: `python benchmarks/bench_quit.py`.

`rlm-tui run` runs on a real pseudo-terminal with 32 rollouts at once on the scripted model (slow replies, so they
are all mid-rollout); `q` then `s` stops it. The floor is quitting the same app on a finished run (`replay`, `q`)."""

from __future__ import annotations

import os
import pty
import select
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import termios
import time
from contextlib import closing
from pathlib import Path

from bench_startup import ENV, ESCAPES, LINES, ROOT
from table import row

ROLLOUTS = 32
REPEATS = 3
RLM_TUI = [sys.executable, "-m", "rlm_tui.cli"]


class Terminal:
    """A program on a fresh pseudo-terminal: what it drew, keys typed into it, and when it exited."""

    def __init__(self, argv: list[str]) -> None:
        self.main, child = pty.openpty()
        termios.tcsetwinsize(child, (LINES, 160))
        self.proc = subprocess.Popen(
            argv, stdin=child, stdout=child, stderr=child, env=ENV, cwd=ROOT, start_new_session=True, close_fds=True
        )
        os.close(child)
        self.seen = b""

    def read(self, wait: float) -> bool:
        """Take what was drawn within `wait` s; False once the program has closed the terminal."""
        if select.select([self.main], [], [], wait)[0]:
            try:
                chunk = os.read(self.main, 65536)
            except OSError:
                return False
            if not chunk:
                return False
            self.seen += ESCAPES.sub(b"", chunk)
        return True

    def wait_for(self, text: str, timeout: float = 120.0) -> None:
        end = time.perf_counter() + timeout
        while text.encode() not in self.seen:
            if time.perf_counter() > end or not self.read(0.2):
                raise RuntimeError(f"{text!r} never drawn; the screen had: {self.seen[-600:]!r}")
        self.seen = b""

    def type(self, keys: str) -> float:
        os.write(self.main, keys.encode())
        return time.perf_counter()

    def exited(self, timeout: float = 120.0) -> float:
        """When the process ended, reading its output meanwhile so that it never blocks on a full terminal."""
        end = time.perf_counter() + timeout
        while self.proc.poll() is None and time.perf_counter() < end:
            self.read(0.01)
        if self.proc.poll() is None:
            raise RuntimeError("the app did not exit")
        return time.perf_counter()

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.main)


def running(db: Path) -> int:
    if not db.exists():
        return 0
    with closing(sqlite3.connect(db)) as conn:
        try:
            (n,) = conn.execute("SELECT count(*) FROM rollouts WHERE status = 'running'").fetchone()
        except sqlite3.OperationalError:  # the tables are not made yet
            return 0
    return int(n)


def stop_and_quit(tmp: Path, i: int) -> float:
    db = tmp / f"quit-{i}.db"
    argv = [*RLM_TUI, "run", "verbatim-copy", "-n", str(ROLLOUTS), "--concurrency", str(ROLLOUTS)]
    term = Terminal([*argv, "--scripted-delay", "30", "--db", str(db)])
    try:
        end = time.perf_counter() + 120
        while running(db) < ROLLOUTS:  # every rollout waits on its model's slow reply
            if time.perf_counter() > end or not term.read(0.2):
                raise RuntimeError(f"only {running(db)} of {ROLLOUTS} rollouts started")
        term.type("q")
        term.wait_for("Stop and quit")
        pressed = term.type("s")
        took = term.exited() - pressed
    finally:
        term.close()
    with closing(sqlite3.connect(db)) as conn:
        left = conn.execute("SELECT count(*) FROM rollouts WHERE status IN ('queued', 'running')").fetchone()[0]
    if left:
        raise RuntimeError(f"{left} rollouts were left running after stop and quit")
    return took


def quit_finished(tmp: Path) -> float:
    db = tmp / "quit-0.db"  # the first stopped run, over by now
    term = Terminal([*RLM_TUI, "replay", "--db", str(db)])
    try:
        term.wait_for("Quit")
        pressed = term.type("q")
        return term.exited() - pressed
    finally:
        term.close()


def main(tmp: Path) -> None:
    stops = [stop_and_quit(tmp, i) for i in range(REPEATS)]
    floors = [quit_finished(tmp) for _ in range(REPEATS)]
    row(
        f"stop and quit, {ROLLOUTS} running rollouts (key to exit)",
        statistics.median(stops),
        "s",
        floor=statistics.median(floors),
        floor_name="quit a finished run",
        max_value=2.0,
        note=f"median of {REPEATS}; max {max(stops):.2f} s",
    )


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        main(Path(d))
