"""Frames from the jail are untrusted: each is decoded and checked here, or rejected as a BadFrame with one reason."""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import math
from typing import Any

MAX_VALUES = 20_000  # JSON values in one frame: any real frame fits; a million tiny ones would cost gigabytes to build
MAX_ID = 2**53
ESCAPES = 6  # the jail writes a lone surrogate as a 6-character escape, so text may grow that much past its cap


class BadFrame(ValueError):
    """A frame no honest REPL sends; the message says what was wrong with it."""


def _constant(name: str) -> Any:
    raise BadFrame(f"{name} is not a number")


_SHORT = json.JSONDecoder(parse_constant=_constant)  # a line under 2 * MAX_VALUES bytes cannot hold more values


class _Decoder(json.JSONDecoder):
    """Standard JSON without NaN or Infinity, giving up after MAX_VALUES values instead of building them all."""

    def __init__(self) -> None:
        super().__init__(parse_constant=_constant)
        self.parse_array, self.parse_object = self._array, self._object
        self.scan_once = json.scanner.py_make_scanner(self)  # type: ignore[attr-defined]  # the pure-Python scanner
        self.values = 0

    def _counted(self, scan):
        def scan_once(s: str, idx: int):
            self.values += 1
            if self.values > MAX_VALUES:
                raise BadFrame(f"more than {MAX_VALUES:,} JSON values")
            return scan(s, idx)

        return scan_once

    def _array(self, s_and_end, scan_once, *rest):
        return json.decoder.JSONArray(s_and_end, self._counted(scan_once), *rest)

    def _object(self, s_and_end, strict, scan_once, *rest):
        return json.decoder.JSONObject(s_and_end, strict, self._counted(scan_once), *rest)


def _int(frame: dict, key: str, low: int = 0, high: int = MAX_ID) -> int:
    value = frame.get(key)
    if type(value) is not int or not low <= value <= high:
        raise BadFrame(f"{key} must be an integer from {low} to {high}")
    return value


def _text(frame: dict, key: str, cap: int, optional: bool = False) -> str | None:
    value = frame.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise BadFrame(f"{key} must be a string" + (" or null" if optional else ""))
    if len(value) > cap * ESCAPES:
        raise BadFrame(f"{key} is longer than its cap of {cap:,} characters")
    return value


def _result(frame: dict, cap: int, answer_cap: int) -> dict:
    elapsed: Any = frame.get("elapsed_s")
    if type(elapsed) not in (int, float) or not math.isfinite(elapsed) or elapsed < 0:
        raise BadFrame("elapsed_s must be a finite number of seconds")
    answer = frame.get("answer")
    if not isinstance(answer, dict) or type(answer.get("ready")) is not bool:
        raise BadFrame("answer must be an object with a string content and a boolean ready")
    checked: dict[str, Any] = {
        "t": "result",
        "id": _int(frame, "id"),
        "elapsed_s": float(elapsed),
        "answer": {"content": _text(answer, "content", answer_cap), "ready": answer["ready"]},
    }
    for key in ("stdout", "stderr"):
        checked[key] = _text(frame, key, cap)
        checked[f"{key}_chars"] = _int(frame, f"{key}_chars", len(checked[key]) // ESCAPES, 2**62)
    for key in ("out", "error", "traceback"):
        checked[key] = _text(frame, key, cap, optional=True)
    checked["out_chars"] = _int(frame, "out_chars", 0, 2**62)
    return checked


def _batch(frame: dict) -> dict:
    prompts = frame.get("prompts")
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        raise BadFrame("prompts must be a list of strings")
    return {"t": "llm_batch", "id": _int(frame, "id", 1), "prompts": prompts, "rlm": frame.get("rlm") is True}


def _exit(frame: dict) -> dict:
    if "signal" in frame:
        checked = {"t": "exit", "signal": _int(frame, "signal", 1, 64)}
    else:
        checked = {"t": "exit", "code": _int(frame, "code", 0, 255)}
    if frame.get("cpu_budget") is True:
        checked["cpu_budget"] = True
    cpu = frame.get("cpu_s", 0.0)
    if type(cpu) not in (int, float) or not 0 <= cpu < 1e9:  # NaN fails this too
        raise BadFrame("cpu_s must be a number of seconds")
    checked["cpu_s"] = float(cpu)
    return checked


def read(line: bytes, cap: int, answer_cap: int) -> dict:
    """The frame on one line from the jail, with every field checked; raises BadFrame."""
    try:
        frame = (_SHORT if len(line) < 2 * MAX_VALUES else _Decoder()).decode(line.decode("utf-8"))
    except BadFrame:
        raise
    except (ValueError, RecursionError) as exc:  # not JSON, a half line, nesting past Python's stack
        raise BadFrame(f"not a JSON line ({type(exc).__name__})") from None
    if not isinstance(frame, dict):
        raise BadFrame("not a JSON object")
    kind = frame.get("t")
    if kind == "ready":
        return {"t": "ready"}
    if kind == "result":
        return _result(frame, cap, answer_cap)
    if kind == "llm_batch":
        return _batch(frame)
    if kind == "exit":
        return _exit(frame)
    raise BadFrame("unknown frame type" if isinstance(kind, str) else "t must be a string")
