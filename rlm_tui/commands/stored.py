"""`rlm-tui runs`, `show` and `export`: what the store holds, printed or written out."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import closing
from typing import Any

from rlm_tui.commands.common import UserError, argtype, db_path_of, id_prefix
from rlm_tui.text import printable_data


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
    export.add_argument("run_id", nargs="?", type=argtype(id_prefix), help="run id or prefix (default: the latest run)")
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
        print_runs(list_runs(db))
    return 0


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
        print_transcript(run, run.rollouts[rollout_id], full=args.full)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from rlm_tui.export import run_records
    from rlm_tui.store import get_run, latest_run_id, open_db, resolve_run_id

    with closing(open_db(db_path_of(args), create=False)) as db:
        run_id = resolve_run_id(db, args.run_id) if args.run_id else latest_run_id(db)
        if run_id is None:
            raise UserError("the database holds no runs yet; start one with `rlm-tui run ENV`")
        row = get_run(db, run_id)
        records = run_records(_load_run(db, run_id), row["status"] if row else None)
    try:
        out = open(args.out, "w", newline="") if args.out else sys.stdout
    except OSError as exc:
        raise UserError(f"cannot write {args.out}: {exc.strerror}; pass another -o") from None
    try:
        if args.format == "csv":
            _write_csv(out, records)
        else:
            out.write("".join(json.dumps(record, default=str) + "\n" for record in records))
    finally:
        if args.out:
            out.close()
    if args.out:
        print(f"wrote {len(records)} rollouts of run {run_id} to {args.out}", file=sys.stderr)
    return 0


def _write_csv(out: Any, records: list[dict[str, Any]]) -> None:
    import csv

    from rlm_tui.export import csv_table

    header, rows = csv_table(records)
    terminal = out.isatty()
    if terminal:  # a file or a pipe keeps the exact text; a terminal must not act on it
        header, rows = printable_data(header), printable_data(rows)
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n" if terminal else "\r\n")
    writer.writeheader()
    writer.writerows(rows)
