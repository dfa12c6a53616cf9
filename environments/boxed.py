"""The last \\boxed{...} of an answer, as the math and Oolong scorers read it."""

from __future__ import annotations

import re


def last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} or \\fbox{...} (nested braces included; `\\boxed 5` too), stripped, and
    unwrapped when it is one whole \\text{...}; None when there is none."""
    boxed, fbox = text.rfind("\\boxed"), text.rfind("\\fbox")
    if boxed < 0 and fbox < 0:
        return None
    i = boxed + len("\\boxed") if boxed > fbox else fbox + len("\\fbox")
    while i < len(text) and text[i] == " ":
        i += 1
    if i >= len(text) or text[i] != "{":
        match = re.match(r"[^\s$]+", text[i:])  # \boxed 5
        return match.group(0) if match else None
    inner = _braced(text, i)
    if inner is None:
        return None
    inner = inner.strip()
    # \boxed{\text{Laura}} is Laura; \boxed{\text{a} and \text{b}} stays as it is
    if inner.startswith("\\text{") and inner.endswith("}"):
        word = _braced(inner, len("\\text"))
        if word is not None and len(word) == len(inner) - len("\\text{}"):
            return word
    return inner


def _braced(text: str, i: int) -> str | None:
    """What is between the brace at `i` and the one that closes it; None when it never closes."""
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None
