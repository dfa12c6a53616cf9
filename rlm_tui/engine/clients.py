"""Model clients behind one small interface: OpenAI-compatible chat completions through the `openai` SDK."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import openai

from rlm_tui.engine.failures import (
    MAX_REPLY_BYTES,
    ModelError,
    RetryHook,
    Transient,
    decode_reply,
    status_failure,
    too_large,
    with_retries,
)
from rlm_tui.engine.generation import Generation
from rlm_tui.engine.replies import (
    ModelClient,
    ModelReply,
    context_window_of,
    count_tokens,
    estimate_usage,
    one_line,
    parse_arguments,
    tool_call_message,
)
from rlm_tui.engine.wire import WireClient

try:  # the SDK's own HTTP response type: httpx2 from openai 3 on, httpx before (whose import pulls in rich)
    from httpx2 import Response as HTTPResponse
except ImportError:
    from httpx import Response as HTTPResponse  # type: ignore[assignment]

__all__ = [  # what the engine takes from here, wherever it is defined
    "ModelClient",
    "ModelError",
    "ModelReply",
    "OpenAIClient",
    "RetryHook",
    "count_tokens",
    "estimate_usage",
    "parse_arguments",
    "tool_call_message",
]

CONTEXT_QUERY_TIMEOUT = 5.0  # seconds for a server to say its context window before we stop asking


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
        # The sub-LLM fan-out takes the hot path: same endpoint, same rules, without the SDK's CPU per call.
        self.sub = WireClient(
            base_url=str(self._client.base_url),
            api_key=api_key,
            max_retries=max_retries,
            request_timeout=request_timeout,
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
        return await with_retries(model, self.max_retries + 1, on_retry, lambda: self._attempt(model, body, messages))

    async def _attempt(self, model: str, body: dict[str, Any], messages: list[dict[str, Any]]) -> ModelReply:
        """One request; raises Transient for what is worth retrying and ModelError for what is not."""
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
                raise Transient(
                    "connection", f"cannot reach {self._client.base_url}: {one_line(exc.__cause__)}"
                ) from None
            raise Transient("timeout", f"no reply within {self.request_timeout:g} s") from None
        except TimeoutError:
            raise Transient("timeout", f"no reply within {self.request_timeout:g} s") from None
        except openai.APIStatusError as exc:
            said = exc.body.get("message") if isinstance(exc.body, dict) else None
            detail = f"{getattr(exc, 'code', '') or ''} {exc.message} {exc.body}"
            raise status_failure(
                model,
                exc.status_code,
                said if isinstance(said, str) else exc.message,
                detail,
                bool(body.get("tools")),
                exc.response.headers,
            ) from None
        except openai.APIConnectionError as exc:
            raise Transient("connection", f"cannot reach {self._client.base_url}: {one_line(exc)}") from None
        latency = time.perf_counter() - start
        return decode_reply(model, raw, response.headers.get("content-type", ""), messages, latency)

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
        await self.sub.close()
        await self._client.close()


async def _read_capped(response: Any) -> bytes:
    """The reply body, refusing one past MAX_REPLY_BYTES; a connection that breaks mid-body is transient."""
    failure = too_large(response.headers.get("content-length", ""))
    if failure is not None:
        raise failure
    chunks, size = [], 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_REPLY_BYTES:
                raise Transient("malformed", f"the reply is larger than {MAX_REPLY_BYTES:,} bytes")
            chunks.append(chunk)
    except Transient:
        raise
    except Exception as exc:  # the transport's own error types differ between SDK versions
        raise Transient(
            "connection", f"the connection broke while reading the reply ({type(exc).__name__}: {one_line(exc, 120)})"
        ) from None
    return b"".join(chunks)
