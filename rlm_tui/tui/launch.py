"""Opening the app: on a run it starts as a subprocess (`run` without --headless), or on a stored run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from rlm_tui.tui.engines import started


def run_in_app(path: Path, run_id: str, engine_argv: list[str], *, context_limit: int) -> int:
    """Start the engine `engine_argv` (a headless run of `run_id` into `path`) and open the app on its run."""
    import tempfile

    log = Path(tempfile.mkstemp(prefix=f"rlm-tui-{run_id[:8]}-", suffix=".log")[1])
    with open(log, "wb") as out:
        # a session of its own: the terminal's ctrl+c goes to the app, which decides what the run gets
        engine = subprocess.Popen(engine_argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    # the app and its first screens are imported while the engine starts, not once its run exists
    import rlm_tui.tui.screens.run
    import rlm_tui.tui.screens.runs  # noqa: F401
    from rlm_tui.tui.app import RlmApp
    from rlm_tui.tui.engines import ERROR_PREFIX, last_line

    leave_running_on_hangup(path, run_id)
    if not started(path, run_id, engine):
        rc = engine.returncode
        if os.environ.get("RLM_TUI_DEBUG"):
            sys.stderr.write(log.read_text(errors="replace"))
        print(ERROR_PREFIX + (last_line(log) or f"the run exited with status {rc} before it started"), file=sys.stderr)
        log.unlink(missing_ok=True)
        return rc or 1
    app = RlmApp(path, run_id=run_id, follow=True, engine=engine, engine_log=log, context_limit=context_limit)
    try:
        app.run()
    finally:
        if app.return_code != 0 and engine.poll() is None:  # the app crashed: do not leave the run behind
            engine.send_signal(signal.SIGTERM)
    if app.return_code:
        return app.return_code
    rc = engine.poll()
    if rc is None:
        print(
            f"run {run_id} goes on in the background (pid {engine.pid}); follow it with "
            f"`rlm-tui attach {run_id[:8]}`; engine log: {log}",
            file=sys.stderr,
        )
        return 0
    if rc != 0 and not app.stopping:
        print(f"{ERROR_PREFIX}{last_line(log) or f'the engine exited with status {rc}'} (log: {log})", file=sys.stderr)
        return 1
    print(run_id)
    return 0


def _hung_up(path: Any, run_id: str) -> None:
    """The terminal went away: leave the run going, unpaused, as if the user had chosen to leave it running."""
    from rlm_tui.store import open_db, send_command

    try:
        db = open_db(path)
        send_command(db, run_id, "resume")  # nobody is left to resume a paused rollout
        send_command(db, run_id, "approval", text="off")  # nor to decide on a cell waiting for approval
    finally:
        os._exit(129)


def leave_running_on_hangup(path: Any, run_id: str) -> None:
    """On SIGHUP (the terminal closed) unpause the run and exit 129, leaving it running."""
    signal.signal(signal.SIGHUP, lambda *_: _hung_up(path, run_id))


def open_app(path: Any, *, context_limit: int, **kwargs: Any) -> int:
    """The app on the database at `path`: the runs view, or a run or rollout (`kwargs`: as RlmApp takes them)."""
    from rlm_tui.tui.app import RlmApp

    app = RlmApp(path, context_limit=context_limit, **kwargs)
    app.run()
    return app.return_code or 0
