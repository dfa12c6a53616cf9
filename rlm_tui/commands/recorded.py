"""Running the engine headless into the store: the event writer, the command queue and the progress bar."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass
class Recorder:
    db: Any
    writer: Any

    def run(
        self,
        config: Any,
        env: Any,
        client: Any,
        *,
        run_id: str | None = None,
        history: list[Any] | None = None,
        fork: Any = None,
        continued: dict[str, Any] | None = None,
    ) -> tuple[Any, Any]:
        """(the Run, its final RunState), its events written and its commands taken through the store."""
        from rlm_tui.engine.control import queued_commands
        from rlm_tui.engine.run import Run
        from rlm_tui.headless import run_headless

        run = Run(
            config,
            env,
            client,
            sinks=[self.writer.append],
            run_id=run_id,
            history=history,
            fork=fork,
            continued=continued,
            commands=lambda rid: queued_commands(self.db, rid),
        )
        return run, run_headless(run, client)


def recorded_config(run: Any, verb: str) -> Any:
    """The RunConfig a stored run recorded; one line naming what cannot be done when it cannot be read."""
    from rlm_tui.commands.common import UserError
    from rlm_tui.engine.run import RunConfig

    try:
        return RunConfig.from_dict(run["config"])
    except (TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"run {run['id']} has a config this rlm-tui cannot read ({exc}); it cannot be {verb}") from None


@contextmanager
def recording(path: Any) -> Iterator[Recorder]:
    """The database at `path` (created if need be) and a started writer, both closed after the runs."""
    from rlm_tui.store import EventWriter, open_db

    with closing(open_db(path)) as db:
        writer = EventWriter(path)
        writer.start()
        try:
            yield Recorder(db, writer)
        finally:
            writer.close()
