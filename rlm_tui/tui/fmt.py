"""Small formatting helpers shared by the views."""

from __future__ import annotations

from rlm_tui.export import shown_status
from rlm_tui.state import RolloutState
from rlm_tui.units import tokens as tokens  # the views' formatter is everyone's

STATUS_STYLE = {
    "queued": "dim",
    "running": "cyan",
    "paused": "bold yellow",
    "approval": "bold yellow",
    "done": "green",
    "failed": "bold red",
    "killed": "magenta",
    "interrupted": "bold red",
}
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def seconds(s: float | None) -> str:
    """A short duration: 4 ms, 0.12 s, 12.3 s, 4:05, 1:02:03."""
    if s is None:
        return "-"
    if s < 0.1:  # a quick cell or call reads 4 ms, not 0.00 s
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.2f} s" if s < 10 else f"{s:.1f} s"
    m, sec = divmod(int(s), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def reward(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def status(r: RolloutState, interrupted: bool = False) -> str:
    """What the operator cares about: a running rollout stopped at a safe point is paused, one whose cell waits
    for a decision is at approval."""
    shown = shown_status(r.status, interrupted)
    if shown == "running" and r.waiting is not None:
        return "approval"  # a proposed cell waits for the operator
    return "paused" if r.paused and shown == "running" else shown


def one_line(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def count(n: int, noun: str) -> str:
    """`1 tool`, `2 tools`, `1,024 batches`: the noun in the plural unless there is one."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}{'es' if noun.endswith(('s', 'ch')) else 's'}"
