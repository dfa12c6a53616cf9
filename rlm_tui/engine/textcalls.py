"""Tool calls a model wrote as text instead of as native tool calls: tags, JSON objects, fenced code."""

from __future__ import annotations

import json
import re
from typing import Any

CODE_FENCES = ("repl", "python", "py", "python3")  # the fence languages read as a cell
MAX_UNLABELLED = 100_000  # characters of a fence without a language that are checked for being Python
MAX_RECOVERED = 8  # cells taken from one reply: a model that writes fifty fences is not asking for fifty runs

_TAG = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)  # Hermes/Qwen; an unclosed last tag counts
_LANG = re.compile(r"[\w+-]*")
_DECODER = json.JSONDecoder()


def _fences(text: str) -> list[tuple[str, str]]:
    """Each closed ``` block as (language, body), in one pass over the lines: a reply of many unclosed fences
    (a broken or hostile server) must not cost more than reading it once."""
    found: list[tuple[str, str]] = []
    lang: str | None = None
    body: list[str] = []
    for line in text.split("\n"):
        stripped = line.strip()
        if lang is None:
            if stripped.startswith("```"):
                word = _LANG.match(stripped[3:].lstrip())
                lang = word.group() if word else ""
                body = []
        elif stripped == "```":
            found.append((lang, "".join(f"{b}\n" for b in body)))
            lang = None
        else:
            body.append(line)
    return found


def _object(text: str) -> dict[str, Any] | None:
    """`text` as one JSON object naming a tool ({"name": ..., "arguments": ...}), or None."""
    text = text.strip()
    if not text.startswith("{"):
        return None
    try:
        value, end = _DECODER.raw_decode(text)
    except ValueError:
        return None
    if text[end:].strip() or not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    return value


def _is_python(text: str) -> bool:
    """Whether an unlabelled block is Python code (it compiles) rather than prose or output."""
    if not text.strip() or len(text) > MAX_UNLABELLED:
        return False
    try:
        compile(text, "<fence>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def _call(n: int, name: str, arguments: Any, how: str) -> dict[str, Any]:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments if arguments is not None else {})
    return {"id": f"text_call_{n}", "name": name, "arguments": raw, "recovered": how}


def _from_object(n: int, value: dict[str, Any], how: str) -> dict[str, Any]:
    arguments = value.get("arguments", value.get("parameters", {}))
    return _call(n, value["name"], arguments, how)


def recover_calls(text: str, tool: str) -> list[dict[str, Any]]:
    """The calls of `tool` (or of any tool, when the reply is nothing but a call) written in `text`, in order.

    Each is shaped like a native call ({"id", "name", "arguments"}) with "recovered" saying how it was written:
    "tag" (<tool_call>{...}</tool_call>), "json" (a bare or ```json-fenced object naming a tool), or "fence"
    (a ```python / ```repl block, run as the code). A JSON object in prose that names some other tool is an
    example the model gave, not a call."""
    if not text:
        return []
    tags = _TAG.findall(text)
    if tags:
        objects = [_object(t) for t in tags]
        return [_from_object(i, o, "tag") for i, o in enumerate(objects) if o is not None][:MAX_RECOVERED]
    fences = _fences(text)
    whole = _object(fences[0][1]) if len(fences) == 1 and text.strip().startswith("```") else _object(text)
    if whole is not None:
        return [_from_object(0, whole, "json")]
    calls: list[dict[str, Any]] = []
    for lang, body in fences:
        if len(calls) == MAX_RECOVERED:
            break
        lang = lang.lower()
        if lang in CODE_FENCES and body.strip():
            calls.append(_call(len(calls), tool, {"code": body.rstrip("\n") + "\n"}, "fence"))
        elif lang in ("json", ""):
            value = _object(body)
            if value is not None and value["name"] == tool:
                calls.append(_from_object(len(calls), value, "json"))
            elif not lang and value is None and _is_python(body):  # small models often leave the language out
                calls.append(_call(len(calls), tool, {"code": body.rstrip("\n") + "\n"}, "fence"))
    return calls[:MAX_RECOVERED]
