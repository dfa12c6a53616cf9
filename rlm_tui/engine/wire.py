"""The sub-LLM hot path: chat completions spoken over one aiohttp session, with OpenAIClient's semantics and
about a quarter of its CPU per call (the SDK's request building and response wrapping are most of a call's cost)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from rlm_tui.engine.failures import (
    MAX_REPLY_BYTES,
    RetryHook,
    Transient,
    decode_reply,
    status_failure,
    too_large,
    with_retries,
)
from rlm_tui.engine.generation import Generation
from rlm_tui.engine.replies import ModelReply, one_line

OPENAI_URL = "https://api.openai.com/v1"  # where the SDK goes too when given no URL
IDLE_S = 300.0  # seconds an idle connection is kept: a root call of minutes must not reopen every sub-LLM's
MAX_ERROR_TEXT = 4096  # characters of an error body read for its reason and its context-length markers


class WireClient:
    """Any OpenAI-compatible chat-completions endpoint, over aiohttp directly; only ModelError leaves `complete`.

    The pool has no size of its own: the callers' concurrency limit (SubLLMs' semaphore) bounds it, so the
    widest batch gets a connection per call and keeps it.
    """

    def __init__(
        self,
        *,
        base_url: str | None,
        api_key: str | None,
        max_retries: int = 4,
        request_timeout: float = 120.0,
        idle_s: float = IDLE_S,
    ) -> None:
        self.base_url = (base_url or OPENAI_URL).rstrip("/")
        self.max_retries, self.request_timeout, self.idle_s = max_retries, request_timeout, idle_s
        self._url = self.base_url + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key or 'EMPTY'}", "Content-Type": "application/json"}
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:  # made on first use, inside the loop that uses it
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=self.idle_s)
            no_limit = aiohttp.ClientTimeout(total=None)  # request_timeout, ours, is the one limit
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers, timeout=no_limit)
        return self._session

    async def complete(
        self,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        on_retry: RetryHook | None = None,
        generation: Generation | None = None,
    ) -> ModelReply:
        async def attempt() -> ModelReply:
            extra = generation.body(model, self.base_url) if generation is not None else {}
            body: dict[str, Any] = {**extra, "model": model, "messages": messages}
            if tools:
                body["tools"] = tools
            return await self._attempt(model, json.dumps(body).encode(), bool(tools), messages)

        return await with_retries(model, self.max_retries + 1, on_retry, attempt)

    async def _attempt(self, model: str, data: bytes, has_tools: bool, messages: list[dict[str, Any]]) -> ModelReply:
        """One request; raises Transient for what is worth retrying and ModelError for what is not."""
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.request_timeout):
                async with self._open().post(self._url, data=data) as response:
                    if response.status >= 400:
                        text = await _error_text(response)
                        raise status_failure(
                            model, response.status, _said(text), text, has_tools, response.headers
                        ) from None
                    raw = await _read_capped(response)
        except TimeoutError:
            raise Transient("timeout", f"no reply within {self.request_timeout:g} s") from None
        except aiohttp.ClientConnectorError as exc:
            raise Transient("connection", f"cannot reach {self.base_url}: {one_line(exc)}") from None
        except aiohttp.ClientError as exc:  # the server closed or broke the connection before a reply
            raise Transient(
                "connection", f"cannot reach {self.base_url}: {type(exc).__name__}: {one_line(exc)}"
            ) from None
        latency = time.perf_counter() - start
        return decode_reply(model, raw, response.headers.get("Content-Type", ""), messages, latency)

    def for_rollout(self, example: Any, mode: str) -> WireClient:
        return self

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """The reply body, refusing one past MAX_REPLY_BYTES; a connection that breaks mid-body is transient."""
    failure = too_large(response.headers.get("Content-Length", ""))
    if failure is not None:
        raise failure
    chunks, size = [], 0
    try:
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > MAX_REPLY_BYTES:
                raise Transient("malformed", f"the reply is larger than {MAX_REPLY_BYTES:,} bytes")
            chunks.append(chunk)
    except aiohttp.ClientError as exc:
        raise Transient(
            "connection", f"the connection broke while reading the reply ({type(exc).__name__}: {one_line(exc, 120)})"
        ) from None
    return b"".join(chunks)


async def _error_text(response: aiohttp.ClientResponse) -> str:
    """The start of an error reply's body as text; a body that will not come is no body."""
    try:
        return (await response.content.read(MAX_ERROR_TEXT)).decode(errors="replace")
    except aiohttp.ClientError:
        return ""


def _said(text: str) -> str:
    """The server's own message in an error body (`{"error": {"message": ...}}`), else the body's text."""
    try:
        data = json.loads(text)
    except ValueError:
        return text or "no message"
    if isinstance(data, dict):
        error = data.get("error")
        message = error.get("message") if isinstance(error, dict) else data.get("message")
        if isinstance(message, str):
            return message
    return text
