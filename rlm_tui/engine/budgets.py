"""Hard budgets on a rollout or a run: tokens, dollars, seconds and sub-LLM calls, checked at safe points."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

KINDS = ("tokens", "usd", "seconds", "sub_calls")  # stop reasons are budget_<kind>


@dataclass(frozen=True)
class Spent:
    """What a rollout or a run has used so far; usd None when a call's cost is unknown."""

    tokens: int = 0
    usd: float | None = 0.0
    seconds: float = 0.0
    sub_calls: int = 0  # sub-LLM calls started


@dataclass(frozen=True)
class Budget:
    tokens: int | None = None  # main and sub-LLM tokens, prompt and completion
    usd: float | None = None
    seconds: float | None = None  # wall time since the start
    sub_calls: int | None = None

    @property
    def any(self) -> bool:
        return any(getattr(self, k) is not None for k in KINDS)

    def reached(self, spent: Spent, whose: str) -> tuple[str, str] | None:
        """(kind, one line saying which budget) for the first budget `spent` has reached; None: within all."""
        for kind in KINDS:
            limit, used = getattr(self, kind), getattr(spent, kind)
            if limit is not None and used is not None and used >= limit:
                return kind, f"{whose} budget of {_shown(kind, limit)} is spent ({_shown(kind, used)} used)"
        return None

    def refuses(self, spent: Spent, prompts: int, whose: str) -> str | None:
        """Why a batch of `prompts` sub-LLM calls must not start: it would cross the calls budget, or another
        budget is spent already (what a batch will cost in tokens is not known before it runs)."""
        if self.sub_calls is not None and spent.sub_calls + prompts > self.sub_calls:
            left = max(0, self.sub_calls - spent.sub_calls)
            return f"{prompts} calls would cross {whose} budget of {self.sub_calls:,} sub-LLM calls ({left:,} left)"
        hit = self.reached(spent, whose)
        return hit[1] if hit is not None else None

    @classmethod
    def from_dict(cls, data: Any) -> Budget:
        """A budget a stored run recorded (untrusted): what is not a number is no budget."""
        data = data if isinstance(data, dict) else {}
        out: dict[str, Any] = {}
        for f in fields(cls):
            value = data.get(f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
                out[f.name] = value
        return cls(**out)


def _shown(kind: str, value: float) -> str:
    if kind == "usd":
        return f"${value:.4f}"
    if kind == "seconds":
        return f"{value:.1f} s"
    return f"{int(value):,} {'tokens' if kind == 'tokens' else 'sub-LLM calls'}"
