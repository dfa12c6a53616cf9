"""How counts read in tables and status lines, the same in the app, the terminal and the report."""

from __future__ import annotations


def tokens(n: float) -> str:
    """A token count: 9,876, 12.3k, 4.56M (a mean is rounded to a whole token)."""
    if n >= 10_000 and round(n / 1000, 1) < 1000:
        return f"{n / 1000:.1f}k"
    if n >= 10_000:
        return f"{n / 1_000_000:.2f}M"
    return f"{n:,.0f}"


def usd(value: object) -> str:
    """Dollars: $0.0123 under a dollar, $12.35 above; "unknown" when a cost is not known (never $0)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < float("inf"):
        return "unknown"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"
