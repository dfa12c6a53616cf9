"""The run view's columns: what each row says, and which columns fit a width, by priority."""

from __future__ import annotations

from rich.text import Text

from rlm_tui.state import RolloutState
from rlm_tui.text import printable
from rlm_tui.tui import fmt
from rlm_tui.tui.now import bar, context_tokens
from rlm_tui.tui.now import doing as now_doing

COLUMNS = (
    "#",
    "example",
    "status",
    "stop reason",
    "now",
    "reward",
    "turns",
    "tokens",
    "context",
    "sub calls",
    "elapsed",
)
# fixed widths, so the live columns do not jump as they change; "now" takes what the others leave
WIDTHS = {
    "status": 11,
    "stop reason": 12,
    "now": 14,
    "reward": 6,
    "turns": 5,
    "tokens": 12,
    "context": 10,
    "sub calls": 9,
    "elapsed": 8,
}
EXAMPLE_ROOM = (
    12,
    60,
)  # a long example id gets at least the first and at most the second; the rollout view shows it whole
# a narrow terminal drops columns from the end of this list first; "now" is read in full before any past CORE shows
PRIORITY = (
    "#",
    "status",
    "now",
    "reward",
    "turns",
    "tokens",
    "stop reason",
    "example",
    "elapsed",
    "sub calls",
    "context",
)
CORE = 7  # the first of PRIORITY, shown with "now" at its narrowest
NOW_READ = 26  # "waiting for the model · 12s" and the like, whole
PADDING = 2  # the table's cell padding, one space each side
FLEX = ("example", "now")  # the columns whose width follows the room there is


def widths(rollouts: list[RolloutState]) -> dict[str, int]:
    """Every column's width for these rows: the fixed ones, and # (a mark and the index) and example from what
    they hold."""
    index = max((len(str(r.index)) for r in rollouts), default=1)
    example = max((len(printable(r.example_id)) for r in rollouts), default=7)
    return {**WIDTHS, "#": 1 + index, "example": max(len("example"), min(EXAMPLE_ROOM[1], example))}


def fitting(room: int, sizes: dict[str, int]) -> tuple[str, ...]:
    """The columns that fit in `room` cells, taken by priority (a long example id cut), in their usual order."""
    taken: set[str] = set()
    used = 0
    for i, name in enumerate(PRIORITY):
        if i == CORE:
            used += max(0, NOW_READ - sizes["now"])
        used += (min(sizes[name], EXAMPLE_ROOM[0]) if name == "example" else sizes[name]) + PADDING
        if used > room and taken:
            break
        taken.add(name)
    return tuple(name for name in COLUMNS if name in taken)


def rollout_cells(
    r: RolloutState,
    now: float,
    interrupted: bool = False,
    *,
    marked: bool = False,
    max_tokens: int = 0,
    context_limit: int = 0,
) -> tuple:
    """One row, a value for each of COLUMNS."""
    status = fmt.status(r, interrupted)
    end = r.finished if r.finished is not None else now
    elapsed = fmt.seconds(end - r.started) if r.started is not None else "-"
    tokens = r.main_tokens + r.sub_tokens
    context = context_tokens(r)
    doing = status if status in ("interrupted", "paused") else now_doing(r, now)
    return (
        Text.assemble(("●", "bold yellow") if marked else " ", str(r.index)),  # the mark shows at any width
        Text(printable(r.example_id)),
        Text(status, style=fmt.STATUS_STYLE.get(status, "")),
        Text(printable(r.stop_reason or "-")),
        Text(doing, style=fmt.STATUS_STYLE.get(doing, ""), overflow="ellipsis", no_wrap=True),
        fmt.reward(r.reward),
        str(len(r.turns)),
        Text(bar(tokens / max_tokens if max_tokens else 0.0, 5) + " " + fmt.tokens(tokens)),
        Text(bar(context / context_limit if context_limit else 0.0, 5) + f" {context * 100 // max(1, context_limit)}%"),
        f"{r.sub_calls:,}",
        elapsed,
    )
