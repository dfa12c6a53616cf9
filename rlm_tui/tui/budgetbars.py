"""A rollout's budgets as bars filling up, from the limits its run recorded (untrusted) and what it has spent."""

from __future__ import annotations

from typing import Any

from rlm_tui.engine.budgets import KINDS, Budget
from rlm_tui.state import RolloutState
from rlm_tui.units import tokens, usd

LABELS = {"tokens": "tok", "usd": "$", "seconds": "time", "sub_calls": "sub calls"}


def rollout_budget(config: Any) -> Budget:
    rollout = config.get("rollout") if isinstance(config, dict) else None
    return Budget.from_dict(rollout.get("budget") if isinstance(rollout, dict) else None)


def spent(r: RolloutState, now: float) -> dict[str, float | None]:
    end = r.finished if r.finished is not None else now
    return {
        "tokens": r.main_tokens + r.sub_tokens,
        "usd": r.cost_usd,
        "seconds": end - r.started if r.started is not None else 0.0,
        "sub_calls": r.sub_calls_started,
    }


def bars(r: RolloutState, config: Any, now: float, width: int = 10) -> str:
    """'budget $ ████░░░░░░ $0.0041/$0.0100 · ...' as markup; '' when the run set no budget."""
    budget, used = rollout_budget(config), spent(r, now)
    out = []
    for kind in KINDS:
        limit, value = getattr(budget, kind), used[kind]
        if limit is None:
            continue
        ratio = min(1.0, (value or 0) / limit) if limit else 1.0
        filled = round(width * ratio)
        color = "green" if ratio < 0.5 else "yellow" if ratio < 0.8 else "red"
        out.append(
            f"{LABELS[kind]} [{color}]{'█' * filled}[/][dim]{'░' * (width - filled)}[/] "
            f"{_value(kind, value)}/{_value(kind, limit)}"
        )
    return ("budget " + " · ".join(out)) if out else ""


def _value(kind: str, value: float | None) -> str:
    if kind == "usd":
        return usd(value)
    if kind == "tokens":
        return tokens(value or 0)
    if kind == "seconds":
        return f"{value or 0:.0f}s"
    return f"{int(value or 0):,}"
