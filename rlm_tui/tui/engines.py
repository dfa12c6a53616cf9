"""Engine processes the app waits on: a run's row appearing, or a fork started from the app."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

START_NOTICE_SECONDS = 1.0  # a run slower than this to start says so on stderr
ERROR_PREFIX = "rlm-tui: error: "


def start_fork(path: Path, rollout_id: str, turn: int, message: str | None) -> tuple[subprocess.Popen, str, Path]:
    """`rlm-tui fork` of `rollout_id` at `turn` as a process of its own: (the process, the new run's id, its log)."""
    import tempfile

    from rlm_tui.events import new_id

    run_id = new_id()
    argv = [sys.executable, "-m", "rlm_tui.cli", "fork", rollout_id, "--at-turn", str(turn), "--headless"]
    argv += ["--db", str(path), "--run-id", run_id] + (["--message", message] if message else [])
    log = Path(tempfile.mkstemp(prefix=f"rlm-tui-fork-{run_id[:8]}-", suffix=".log")[1])
    with open(log, "wb") as out:
        engine = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    return engine, run_id, log


def started(path: Any, run_id: str, engine: Any, *, notice: bool = True) -> bool:
    """Wait until the run's row is in the database (True) or its engine exits first (False)."""
    from rlm_tui.store import get_run, open_db

    db = open_db(path, create=False)
    began, told = time.monotonic(), False
    try:
        while True:
            done = engine.poll() is not None  # read before the row: a run that started and ended still opens
            if get_run(db, run_id) is not None:
                return True
            if done:
                return False
            if notice and not told and time.monotonic() - began > START_NOTICE_SECONDS:
                print("rlm-tui: starting the run…", file=sys.stderr)
                told = True
            time.sleep(0.05)
    except KeyboardInterrupt:
        engine.send_signal(signal.SIGTERM)  # ctrl+c before the app opened stops the run too
        try:
            engine.wait(2)
        except subprocess.TimeoutExpired:
            engine.kill()  # stuck loading its data: it has no run to record yet
        raise
    finally:
        db.close()


def last_line(path: Path | None) -> str:
    """The last non-empty line of a log file without its "rlm-tui: error: " prefix, for a one-line error."""
    if path is None or not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(max(0, f.seek(0, 2) - 4096))
        lines = [line.strip() for line in f.read().decode(errors="replace").splitlines() if line.strip()]
    return lines[-1].removeprefix(ERROR_PREFIX) if lines else ""
