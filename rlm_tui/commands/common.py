"""What every command shares: the one-line user error, the database it works on, the value parsers for argparse."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from typing import Any


class UserError(Exception):
    """Reported as one line on stderr, with a non-zero exit."""


def db_path_of(args: argparse.Namespace) -> Any:
    from rlm_tui.store import default_db_path

    if args.db is None and os.environ.get("RLM_TUI_DB") == "":
        raise UserError("RLM_TUI_DB is set but empty; name a database file, or unset it for ./rlm-tui.db")
    return args.db or default_db_path()


def argtype(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a parser that raises ValueError with the reason, so that argparse prints the reason."""

    def check(raw: str) -> Any:
        try:
            return parse(raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return check


# --- parsers: each returns the value or raises ValueError saying what is wrong ---------------------


def whole(raw: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"expected a whole number, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"must be at least 1, got {raw}")
    return value


def at_most(high: int) -> Callable[[str], int]:
    """A whole number from 1 to `high`."""

    def parse(raw: str) -> int:
        value = whole(raw)
        if value > high:
            raise ValueError(f"must be at most {high:,}, got {raw}")
        return value

    return parse


def seconds(raw: str, *, zero: bool = False, high: float = 86_400) -> float:
    """A finite number of seconds up to `high`: positive, or with `zero` also 0."""
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"expected seconds, got {raw!r}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise ValueError(f"must be a {'' if zero else 'positive '}number of seconds, got {raw}")
    if value > high:
        raise ValueError(f"must be at most {high:,g} seconds, got {raw}")
    return value


def delay(raw: str) -> float:
    return seconds(raw, zero=True, high=3600)


def _machine_mb() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20


def memory_mb(raw: str) -> int:
    value = whole(raw)
    if value < 256:
        raise ValueError(f"must be at least 256 (Python needs that much to start), got {raw}")
    if value > (machine := _machine_mb()):
        raise ValueError(f"must be at most {machine:,}, all the memory this machine has, got {raw}")
    return value


def count(high: int) -> Callable[[str], int]:
    """A whole number from 0 to `high`."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"expected a whole number, got {raw!r}") from None
        if not 0 <= value <= high:
            raise ValueError(f"must be from 0 to {high:,}, got {raw}")
        return value

    return parse


def fraction(high: float) -> Callable[[str], float]:
    """A finite number from 0 to `high`."""

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
        if not 0 <= value <= high:  # NaN fails this too
            raise ValueError(f"must be from 0 to {high:g}, got {raw}")
        return value

    return parse


def json_object(raw: str) -> str:
    """A JSON object of a server's own request fields, kept as canonical JSON text."""
    import json

    from rlm_tui.engine.generation import parse_extra_body

    return json.dumps(parse_extra_body(raw), sort_keys=True)


def not_empty(raw: str) -> str:
    if not raw.strip():
        raise ValueError("must not be empty")
    return raw


def run_id(raw: str) -> str:
    if len(raw) != 16 or not all(c in "0123456789abcdef" for c in raw):
        raise ValueError(f"expected 16 hex digits (a run id as rlm-tui makes them), got {raw!r}")
    return raw


def id_prefix(raw: str) -> str:
    if len(raw) > 64:
        raise ValueError(f"an id has at most 64 characters, got {len(raw):,}")
    return raw


context_limit = at_most(100_000_000)


def env_arg(raw: str) -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    if not sep or not key:
        raise ValueError(f"expected key=value, got {raw!r}")
    return key.strip(), value.strip()


def env_sweep(raw: str) -> tuple[str, tuple[str, ...]]:
    """key=v1,v2: a knob and the values a grid sweeps it over."""
    key, sep, value = raw.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"expected key=value or key=v1,v2, got {raw!r}")
    return key.strip(), tuple(dict.fromkeys(split(value)))


def split(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def price(raw: str) -> str:
    """MODEL=IN,OUT or MODEL=IN,CACHED,OUT (USD per million tokens), checked and kept as given."""
    from rlm_tui.engine.prices import parse_price

    parse_price(raw)
    return raw
