"""`rlm-tui import`: other tools' logs become runs in the store, all files or none."""

from __future__ import annotations

import argparse
import sys
from contextlib import closing
from pathlib import Path

from rlm_tui.commands.common import UserError, argtype, db_path_of, not_empty

FORMATS = ("rlms", "verifiers", "rlm-code")


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("import", parents=[common], help="store other tools' logs as runs (rlms, verifiers, rlm-code)")
    p.add_argument("files", nargs="+", metavar="FILE", type=argtype(not_empty), help="JSONL logs to import")
    p.add_argument("--format", choices=FORMATS, help="the logs' format (default: told from each file's first record)")
    p.set_defaults(handler=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    from rlm_tui.importers import ImportProblem, read_log
    from rlm_tui.store import EventWriter, open_db

    runs = []
    for name in args.files:
        try:
            runs.append(read_log(Path(name), name, args.format))
        except ImportProblem as exc:
            raise UserError(str(exc)) from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a shape the checks above did not foresee
            raise UserError(
                f"{name}: cannot be read as {args.format or 'its format'}: {type(exc).__name__}: {exc}"
            ) from None
    db_path = db_path_of(args)
    with closing(open_db(db_path)) as db:
        for run in runs:
            sha = run.events[0].payload()["config"]["imported_from"]["sha256"]
            row = db.execute(
                "SELECT id FROM runs WHERE json_extract(config, '$.imported_from.sha256') = ?", [sha]
            ).fetchone()
            if row is not None:
                raise UserError(f"{run.source} is imported already, as run {row[0]}; nothing was imported")
    # one batch, so one transaction: every file's run is stored, or none is
    writer = EventWriter(db_path, flush_interval=3600, max_batch=sys.maxsize)
    writer.start()
    for run in runs:
        for event in run.events:
            writer.append(event)
    writer.close()
    for run in runs:
        print(f"imported {run.source}: run {run.run_id}, {run.rollouts} rollouts", file=sys.stderr)
        print(run.run_id)
    return 0
