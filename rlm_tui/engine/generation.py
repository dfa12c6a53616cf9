"""The sampling knobs sent with each model call, and the body fields they become for a given server."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

REASONING_EFFORTS = ("minimal", "low", "medium", "high")
TOOL_PROTOCOLS = ("auto", "native", "text")  # how a root model's cells arrive: see docs/servers.md
# OpenAI's reasoning models refuse max_tokens and take max_completion_tokens instead.
_COMPLETION_TOKENS = re.compile(r"^(?:openai/)?(?:o\d|gpt-5)", re.I)
OPENAI_HOST = "api.openai.com"
RESERVED = frozenset({"model", "messages", "tools", "stream"})  # the body fields that are ours to set


@dataclass(frozen=True)
class Generation:
    """What to ask of the model beyond the messages; None leaves the server's default."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    reasoning_effort: str | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)  # sent as given, last: a server's own knobs

    def body(self, model: str, base_url: str | None) -> dict[str, Any]:
        """The request fields for `model` at `base_url` (None: OpenAI's own API)."""
        fields: dict[str, Any] = {}
        if self.max_tokens is not None:
            openai = base_url is None or OPENAI_HOST in base_url
            name = "max_completion_tokens" if openai and _COMPLETION_TOKENS.match(model) else "max_tokens"
            fields[name] = self.max_tokens
        for key in ("temperature", "top_p", "seed", "reasoning_effort"):
            value = getattr(self, key)
            if value is not None:
                fields[key] = value
        fields.update(self.extra_body)
        return fields

    def describe(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Generation:
        """The knobs a stored run recorded; what is unknown or of the wrong type is dropped (the store is input)."""
        data = data if isinstance(data, dict) else {}
        types: dict[str, type | tuple[type, ...]] = {
            "max_tokens": int,
            "seed": int,
            "temperature": (int, float),
            "top_p": (int, float),
            "reasoning_effort": str,
            "extra_body": dict,
        }
        kept: dict[str, Any] = {
            k: v for k, v in data.items() if k in types and isinstance(v, types[k]) and not isinstance(v, bool)
        }
        if isinstance(kept.get("extra_body"), dict):
            kept["extra_body"] = {k: v for k, v in kept["extra_body"].items() if k not in RESERVED}
        return cls(**kept)


def parse_extra_body(raw: str) -> dict[str, Any]:
    """`--extra-body` as a JSON object; ValueError with a plain reason otherwise."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object, such as '{\"top_k\": 20}'")
    taken = sorted(RESERVED & value.keys())
    if taken:
        raise ValueError(f"may not set {', '.join(taken)}: rlm-tui sets those itself")
    if len(raw) > 100_000:
        raise ValueError("is longer than 100,000 characters")
    return value
