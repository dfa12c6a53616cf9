"""The run view's sort orders and filter: pure functions of a rollout's folded state."""

from __future__ import annotations

import math
from collections.abc import Callable

from rlm_tui.state import RolloutState

SORTS: dict[str, Callable[[RolloutState, float], object]] = {
    "#": lambda r, now: r.index,
    "status": lambda r, now: r.status,
    "stop reason": lambda r, now: r.stop_reason or "",
    "reward": lambda r, now: -math.inf if r.reward is None else r.reward,
    "tokens": lambda r, now: r.main_tokens + r.sub_tokens,
    "turns": lambda r, now: len(r.turns),
    "time": lambda r, now: elapsed(r, now),
}
FIELDS = ("status", "reason")
MAX_FILTER = 200  # characters: the input is typed, but a paste can be anything


def elapsed(r: RolloutState, now: float) -> float:
    if r.started is None:
        return 0.0
    return (r.finished if r.finished is not None else now) - r.started


def ordered(rollouts: list[RolloutState], column: str, reverse: bool, now: float) -> list[RolloutState]:
    """Sorted by `column`, ties by index so the order is stable between frames."""
    key = SORTS[column]
    by_index = sorted(rollouts, key=lambda r: r.index)
    return sorted(by_index, key=lambda r: key(r, now), reverse=reverse)  # type: ignore[arg-type,return-value]


def parse_filter(text: str) -> list[tuple[str, str]]:
    """`status:running reason:max turns foo` as (field, word) pairs; a bare word has the field ""."""
    terms = []
    for word in text[:MAX_FILTER].lower().split():
        name, sep, value = word.partition(":")
        terms.append((name, value) if sep and name in FIELDS else ("", word))
    return terms


def matches(r: RolloutState, terms: list[tuple[str, str]], status: str) -> bool:
    """Every term holds: status:/reason: match the start of the shown status / stop reason; a bare word is
    found in the example id or the stop reason."""
    reason = (r.stop_reason or "").lower()
    for name, value in terms:
        if name == "status" and not status.lower().startswith(value):
            return False
        if name == "reason" and not reason.startswith(value):
            return False
        if not name and value not in r.example_id.lower() and value not in reason:
            return False
    return True
