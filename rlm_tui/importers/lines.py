"""Reading another tool's JSONL log: bounded lines, checked types, and every problem as `FILE line N: reason`."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_LINE_BYTES = 16 * 2**20  # one record: a whole trajectory with its context fits; more is not a log line
MAX_LINES = 200_000  # records per file: a day of logging, not a dump
MAX_FILE_BYTES = 512 * 2**20
MAX_SIDE_FILE_BYTES = 2**20  # verifiers' metadata.json beside results.jsonl


class ImportProblem(Exception):
    """A file that cannot be imported; the message is one line and names the file and, where there is one, the line."""


@dataclass(frozen=True)
class Line:
    """One record of a log: its line number, for every error about it, and the JSON object."""

    path: str
    number: int
    data: dict[str, Any]

    def fail(self, reason: str) -> ImportProblem:
        return ImportProblem(f"{self.path} line {self.number}: {reason}")

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = None, *, required: bool = False) -> Any:
        """The field `name` when it has type `kind`; absent or null gives `default` (or fails if required)."""
        return typed(self, self.data, name, kind, default, required=required, where="")

    def text(self, name: str, default: str = "") -> str:
        return self.get(name, str, default)

    def number_field(self, name: str, default: float = 0.0) -> float:
        return number(self, self.data.get(name), name, default)


def typed(
    line: Line,
    obj: dict[str, Any],
    name: str,
    kind: type | tuple[type, ...],
    default: Any = None,
    *,
    required: bool = False,
    where: str = "",
) -> Any:
    value = obj.get(name)
    label = f"{where}{name}"
    if value is None:
        if required:
            raise line.fail(f"`{label}` is missing")
        return default
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:  # JSON true is not a number here
        raise line.fail(f"`{label}` should be {_names(kinds)}, got a boolean")
    if not isinstance(value, kinds):
        raise line.fail(f"`{label}` should be {_names(kinds)}, got {_json_type(value)}")
    return value


def number(line: Line, value: Any, label: str, default: float = 0.0) -> float:
    """A finite, non-negative number (durations, token counts); null gives `default`."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise line.fail(f"`{label}` should be a non-negative number, got {_short(value)}")
    return float(value)


def _names(kinds: tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "a whole number",
        float: "a number",
        dict: "an object",
        list: "a list",
        bool: "a boolean",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _json_type(value: Any) -> str:
    return {str: "a string", int: "a number", float: "a number", dict: "an object", list: "a list"}.get(
        type(value), type(value).__name__
    )


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def read_lines(path: Path, shown: str) -> tuple[list[Line], str]:
    """Every non-blank line of the file as a JSON object, and the file's sha256; fails on the first bad line."""
    try:
        size = path.stat().st_size
        handle = path.open("rb")
    except OSError as exc:
        raise ImportProblem(f"{shown}: cannot read it: {exc.strerror or exc}") from None
    if size > MAX_FILE_BYTES:
        handle.close()
        raise ImportProblem(f"{shown}: {size:,} bytes is over the {MAX_FILE_BYTES // 2**20} MiB an import takes")
    digest = hashlib.sha256()
    lines: list[Line] = []
    with handle:
        for number_, raw in enumerate(_bounded(handle, shown), start=1):
            digest.update(raw)
            if not raw.strip():
                continue
            if len(lines) >= MAX_LINES:
                raise ImportProblem(f"{shown} line {number_}: more than {MAX_LINES:,} records; split the file")
            lines.append(Line(shown, number_, _parse(raw, shown, number_)))
    if not lines:
        raise ImportProblem(f"{shown}: the file holds no records")
    return lines, digest.hexdigest()


def _bounded(handle: Any, shown: str) -> Iterator[bytes]:
    number_ = 0
    while True:
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number_ += 1
        if len(raw) > MAX_LINE_BYTES:
            raise ImportProblem(f"{shown} line {number_}: longer than the {MAX_LINE_BYTES:,} bytes a record may have")
        yield raw


def _parse(raw: bytes, shown: str, number_: int) -> dict[str, Any]:
    where = f"{shown} line {number_}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImportProblem(f"{where}: not UTF-8 text (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        hint = "; the file ends mid-record" if not raw.endswith(b"\n") else ""
        raise ImportProblem(f"{where}: not JSON ({exc.msg} at column {exc.colno}){hint}") from None
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ImportProblem(f"{where}: not JSON ({reason})") from None
    if not isinstance(value, dict):
        raise ImportProblem(f"{where}: expected a JSON object, got {_json_type(value)}")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def read_side_file(path: Path) -> dict[str, Any] | None:
    """A small JSON object beside the log (verifiers' metadata.json), or None when absent or unreadable."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_SIDE_FILE_BYTES:
            return None
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
