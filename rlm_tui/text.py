"""Text from a model, a cell or a database made safe to show on a terminal: control characters become visible."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

# C0 and C1 controls except newline and tab, DEL, and the bidi embeddings, overrides and isolates
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every character that could move the cursor, restyle, retitle or reorder the screen spelled out:
    ESC as `\\x1b`, CR as `\\x0d` (a CRLF line end stays a line end), U+202E as `\\u202e`."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_visible, text.replace("\r\n", "\n"))


def printable_data(value: Any) -> Any:
    """`value` with `printable` applied to every string in it, keys included, through dicts, lists and tuples."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_data(k): printable_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(printable_data(v) for v in value)
    return value


def printable_event(event: Any) -> Any:
    """An event with `printable` applied to its payload; the envelope (ids, time) stays as stored."""
    payload = event.payload()
    shown = {name: printable_data(value) for name, value in payload.items()}
    changed = {name: value for name, value in shown.items() if value != payload[name]}
    return dataclasses.replace(event, **changed) if changed else event
