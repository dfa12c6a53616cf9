"""Other tools' logs as runs in the store: the official RLM library, verifiers and rlm-code (docs/import.md)."""

from __future__ import annotations

from pathlib import Path

from .build import ImportedRun
from .lines import ImportProblem, Line, read_lines

FORMATS = ("rlms", "verifiers", "rlm-code")


def sniff(first: Line) -> str:
    """The format of a log from its first record."""
    data = first.data
    if data.get("type") in ("metadata", "iteration", "run_context"):
        return "rlms"
    if "event_type" in data:
        return "rlm-code"
    if "completion" in data or ("prompt" in data and "reward" in data):
        return "verifiers"
    raise first.fail("not a log of rlms, verifiers or rlm-code (no `type`, `event_type` or `completion` field)")


def read_log(path: Path, shown: str, fmt: str | None = None) -> ImportedRun:
    """The whole file parsed into one run's events; nothing is stored here."""
    lines, sha256 = read_lines(path, shown)
    fmt = fmt or sniff(lines[0])
    if fmt == "rlms":
        from . import rlms

        return rlms.convert(lines, shown, sha256)
    if fmt == "verifiers":
        from . import verifiers

        return verifiers.convert(lines, shown, sha256, path)
    from . import rlm_code

    return rlm_code.convert(lines, shown, sha256)


__all__ = ["FORMATS", "ImportProblem", "ImportedRun", "read_log", "sniff"]
