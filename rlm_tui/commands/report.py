"""`rlm-tui report`: the comparison tables in the terminal, and the figures on disk."""

from __future__ import annotations

import argparse
import sys
from contextlib import closing
from pathlib import Path

from rlm_tui.commands.common import UserError, db_path_of


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "report", parents=[common], help="compare modes and environments: tables, and figures with --out"
    )
    p.add_argument("names", nargs="*", metavar="GRID_OR_RUN", help="grids or run ids (default: the newest grid)")
    p.add_argument("--out", metavar="DIR", help="write PNG and SVG figures here")
    p.add_argument(
        "--by",
        metavar="INFO_KEY",
        help="break the tables down by this field of each example's info (e.g. question_type)",
    )
    p.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from rlm_tui.report.data import ReportError, load_rows, resolve, with_part
    from rlm_tui.report.render import tables
    from rlm_tui.report.stats import describe
    from rlm_tui.store import open_db
    from rlm_tui.text import printable

    with closing(open_db(db_path_of(args), create=False)) as db:
        try:
            title, run_ids = resolve(db, args.names)
            rows = load_rows(db, run_ids)
        except ReportError as exc:
            raise UserError(str(exc)) from None
    if not rows:
        raise UserError(f"{title} has no finished rollouts yet")
    if args.by and not any(args.by in r.info for r in rows):
        keys = ", ".join(sorted({k for r in rows for k in r.info})[:20]) or "none"
        raise UserError(f"no example of {title} has the info key {args.by!r}; its keys are: {keys}")
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)  # a file need not wrap at 80
    runs = len({r.run_id for r in rows})
    note = describe(rows)
    console.print(
        f"report on {escape(printable(title))}: {len(rows)} rollouts in {runs} run{'s' if runs != 1 else ''}"
        + (f" ({escape(printable(note))})" if note else "")
    )
    for table in tables(with_part(rows, args.by) if args.by else rows, args.by):
        console.print(table)
    if args.out:
        from rlm_tui.report.figures import write_all

        paths = write_all(rows, Path(args.out))
        console.print(f"wrote {len(paths)} files ({len(paths) // 2} figures as PNG and SVG) to {escape(args.out)}")
    return 0
