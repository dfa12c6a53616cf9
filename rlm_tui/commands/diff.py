"""`rlm-tui diff A B`: two stored rollouts aligned by turn, their differences marked, and a summary of each."""

from __future__ import annotations

import argparse
from contextlib import closing
from typing import Any

from rlm_tui.commands.common import UserError, argtype, db_path_of, id_prefix

LINES = 12  # of each value shown per turn; the rest is counted
WIDTH = 160  # characters of a line shown


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    diff = sub.add_parser("diff", parents=[common], help="compare two rollouts turn by turn")
    for name in ("a", "b"):
        diff.add_argument(
            name,
            metavar=name.upper(),
            type=argtype(id_prefix),
            help="rollout id, or a run of one rollout (a unique prefix is enough)",
        )
    diff.set_defaults(handler=cmd_diff)


def _load(db: Any, prefix: str) -> tuple[Any, Any]:
    """(run, rollout) named by a rollout id, or by a run id when that run has one rollout."""
    from rlm_tui.state import fold
    from rlm_tui.store import read_events, resolve_run_or_rollout

    run_id, rollout_id = resolve_run_or_rollout(db, prefix, rollout_first=True)
    run = fold([e for _, e in read_events(db, run_id=run_id)], run_id)
    if rollout_id is None:
        if len(run.rollouts) != 1:
            raise UserError(
                f"run {run_id} has {len(run.rollouts)} rollouts; name one (`rlm-tui show {run_id}` lists them)"
            )
        rollout_id = next(iter(run.rollouts))
    if rollout_id not in run.rollouts:
        raise UserError(f"rollout {rollout_id} has no events in run {run_id}")
    return run, run.rollouts[rollout_id]


def cmd_diff(args: argparse.Namespace) -> int:
    from rlm_tui.compare import compare
    from rlm_tui.store import open_db

    with closing(open_db(db_path_of(args), create=False)) as db:
        run_a, a = _load(db, args.a)
        run_b, b = _load(db, args.b)
    print_comparison(compare(a, b), (run_a, a), (run_b, b))
    return 0


def _marked(text: str, other: str) -> Any:
    """`text` as printable, literal text, the parts `other` lacks in reverse video, cut to LINES lines."""
    from rich.text import Text

    from rlm_tui.compare import clipped

    shown, spans, hidden = clipped(text, other, lines=LINES, width=WIDTH)
    out = Text(shown)
    for start, end in spans:
        out.stylize("reverse", start, end)
    if hidden:
        out.append(f"\n… {hidden} more lines", style="dim")
    return out


def _indent(text: Any, prefix: str) -> Any:
    from rich.text import Text

    out = Text(prefix, style="bold")
    for k, line in enumerate(text.split("\n")):
        if k:
            out.append("\n" + " " * len(prefix))
        out.append_text(line)
    return out


def print_comparison(c: Any, side_a: tuple[Any, Any], side_b: tuple[Any, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    from rlm_tui.compare import PARTS, value
    from rlm_tui.headless import console
    from rlm_tui.text import printable

    for name, (run, r) in (("A", side_a), ("B", side_b)):
        head = f"{name}  rollout {r.id} · {run.env} [{run.mode}] · {run.model} · example {r.example_id}"
        console.print(Text(printable(head), style="bold"))
    table = Table(title="summary", title_justify="left")
    for column in ("", "A", "B"):
        table.add_column(column, justify="left" if not column else "right")
    for (label, a), (_, b) in zip(c.a.cells(), c.b.cells()):
        table.add_row(label, Text(a), Text(b))
    console.print(table)
    for pair in c.pairs:
        what = "same in both" if not pair.differs else "differs in " + ", ".join(pair.differs)
        console.print(Text(f"── turn {pair.index} · {what}", style="cyan" if not pair.differs else "yellow"))
        for part in PARTS:
            a = value(pair.a, part) if pair.a else None
            b = value(pair.b, part) if pair.b else None
            if not a and not b:
                continue
            if part not in pair.differs:
                console.print(_indent(_marked(a or "", a or ""), f"  = {part:<7}"))
                continue
            console.print(Text(f"  ≠ {part}", style="bold yellow"))
            for name, mine, theirs in (("A", a, b), ("B", b, a)):
                if mine is None or not mine:
                    shown = Text("(no such turn)" if mine is None else "(none)", style="dim")
                else:
                    shown = _marked(mine, theirs or "")
                console.print(_indent(shown, f"    {name} │ "))
