"""`rlm-tui runs`, `show` and `export`: what the store holds, printed or written out."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from contextlib import closing
from typing import Any

from rlm_tui.commands.common import UserError, argtype, db_path_of, id_prefix, not_empty
from rlm_tui.text import printable, printable_data


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    sub.add_parser("runs", parents=[common], help="list the runs in the database").set_defaults(handler=cmd_runs)

    show = sub.add_parser("show", parents=[common], help="print one rollout's transcript, or list a run's rollouts")
    show.add_argument(
        "rollout_id", metavar="ID", type=argtype(id_prefix), help="rollout or run id (a unique prefix is enough)"
    )
    show.add_argument(
        "--full", action="store_true", help="full cell outputs, not what the model saw, and every sub-LLM call"
    )
    show.set_defaults(handler=cmd_show)

    export = sub.add_parser("export", parents=[common], help="write one record per rollout (JSONL or CSV)")
    export.add_argument(
        "run_ids",
        nargs="*",
        metavar="RUN_ID",
        type=argtype(id_prefix),
        help="run ids or prefixes (default: the latest run, unless --grid is given)",
    )
    export.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME",
        type=argtype(not_empty),
        help="every run of this `rlm-tui ablate` grid (repeat for several)",
    )
    export.add_argument(
        "--format",
        choices=("jsonl", "csv"),
        default="jsonl",
        help="jsonl: one object per rollout; csv: one row per rollout, every metric a column",
    )
    export.add_argument("-o", "--out", help="file to write (default: stdout)")
    export.set_defaults(handler=cmd_export)


def cmd_runs(args: argparse.Namespace) -> int:
    from rlm_tui.headless import print_runs
    from rlm_tui.store import list_runs, open_db

    with closing(open_db(db_path_of(args), create=False)) as db:
        runs = list_runs(db)
    print_runs(runs)
    for row in runs:  # lineage under the table: a fork's run says which rollout and turn it left from
        lineage = lineage_of(row.get("config"))
        if lineage is not None:
            print(printable(f"run {row['id']} forks rollout {lineage}"))
    return 0


def lineage_of(config: Any) -> str | None:
    """'ROLLOUT of run RUN at turn N' from a run's stored config, or None (not a fork, or a damaged record)."""
    forked = config.get("forked_from") if isinstance(config, dict) else None
    if not isinstance(forked, dict):
        return None
    rollout, run, turn = forked.get("rollout_id"), forked.get("run_id"), forked.get("turn")
    if not (isinstance(rollout, str) and isinstance(run, str) and isinstance(turn, int)):
        return None
    return f"{rollout} of run {run} at turn {turn}"


def _load_run(db: Any, run_id: str) -> Any:
    from rlm_tui.state import fold
    from rlm_tui.store import read_events

    return fold([e for _, e in read_events(db, run_id=run_id)], run_id)


def cmd_show(args: argparse.Namespace) -> int:
    from rlm_tui.headless import print_rollouts, print_transcript
    from rlm_tui.store import open_db, resolve_run_or_rollout

    with closing(open_db(db_path_of(args), create=False)) as db:
        run_id, rollout_id = resolve_run_or_rollout(db, args.rollout_id, rollout_first=True)
        run = _load_run(db, run_id)
    if rollout_id is None:
        print_rollouts(run)  # a run id: list its rollouts
    else:
        rollout = run.rollouts[rollout_id]
        forked = rollout.forked_from
        if forked is not None:
            print(
                printable(
                    f"forked from rollout {forked.parent_rollout_id} of run {forked.parent_run_id} at turn {forked.turn}"
                    + (f"; the rebuilt REPL diverged at turns {forked.diverged}" if forked.diverged else "")
                )
            )
        print_transcript(run, rollout, full=args.full)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from rlm_tui.export import ExportError, stored_records
    from rlm_tui.store import open_db

    with closing(open_db(db_path_of(args), create=False)) as db:
        run_ids = _export_run_ids(db, args.run_ids, args.grid)
        try:
            out = open(args.out, "w", newline="") if args.out else sys.stdout
        except OSError as exc:
            raise UserError(f"cannot write {args.out}: {exc.strerror}; pass another -o") from None
        try:
            records = stored_records(db, run_ids)
            count = _write_csv(out, records) if args.format == "csv" else _write_jsonl(out, records)
        except ExportError as exc:
            if args.out:  # a partial file would pass for the whole export
                os.unlink(args.out)
            raise UserError(str(exc)) from None
        finally:
            if args.out:
                out.close()
    if args.out:
        what = f"run {run_ids[0]}" if len(run_ids) == 1 else f"{len(run_ids)} runs"
        print(f"wrote {count} rollouts of {what} to {args.out}", file=sys.stderr)
    return 0


def _export_run_ids(db: Any, prefixes: list[str], grids: list[str]) -> list[str]:
    """The runs named by id prefix and by grid, each once, in the order named; none named: the latest run."""
    from rlm_tui.grid import GridError, grid_names, grid_run_ids
    from rlm_tui.store import AmbiguousId, StoreError, latest_run_id, resolve_run_id

    if not prefixes and not grids:
        latest = latest_run_id(db)
        if latest is None:
            raise UserError("the database holds no runs yet; start one with `rlm-tui run ENV`")
        return [latest]
    run_ids = []
    for prefix in prefixes:
        try:
            run_ids.append(resolve_run_id(db, prefix))
        except AmbiguousId:
            raise
        except StoreError:
            if prefix in grid_names(db):
                raise UserError(
                    f"{prefix!r} is a grid, not a run; export it with `rlm-tui export --grid {prefix}`"
                ) from None
            raise
    for name in grids:
        try:
            run_ids += grid_run_ids(db, name)
        except GridError as exc:
            raise UserError(str(exc)) from None
    return list(dict.fromkeys(run_ids))


def _write_jsonl(out: Any, records: Iterable[dict[str, Any]]) -> int:
    count = 0
    for record in records:
        out.write(json.dumps(record, default=str) + "\n")
        count += 1
    return count


def _write_csv(out: Any, records: Iterable[dict[str, Any]]) -> int:
    import csv

    from rlm_tui.export import csv_table

    terminal = out.isatty()  # a file or a pipe keeps the exact text; a terminal must not act on it
    with csv_table(records) as (header, rows):
        shown = printable_data(header) if terminal else header
        writer = csv.DictWriter(out, fieldnames=shown, lineterminator="\n" if terminal else "\r\n")
        writer.writeheader()
        count = 0
        for row in rows:
            writer.writerow(printable_data(row) if terminal else row)
            count += 1
    return count
