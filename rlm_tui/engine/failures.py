"""How a model call fails, one rule each for every client: the error kinds, which failures are retried and
after how long, what an HTTP error status means, and a reply body checked on arrival."""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from typing import Any

from rlm_tui.engine.replies import ModelReply, RetryHook, one_line, parse_completion

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


class ModelError(Exception):
    """A model call that failed after retries; `kind` is context_length, tools_refused, connection, timeout,
    malformed or api."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Transient(Exception):
    """A failed attempt worth another try; `wait` is what the server asked for, if anything."""

    def __init__(self, kind: str, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.kind, self.wait = kind, wait


def retry_after(headers: Any) -> float | None:
    """The wait a server asks for, in seconds: `retry-after-ms`, or `retry-after` in seconds or as an HTTP date."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name)
        value: float | None
        try:
            value = float(raw) / scale
        except (TypeError, ValueError):
            value = _seconds_until(raw) if name == "retry-after" else None
        if value is not None and math.isfinite(value) and value >= 0:
            return value
    return None


def _seconds_until(date: Any) -> float | None:
    """Seconds from now to an HTTP date (RFC 9110), 0 when it has passed; None when it is not one."""
    if not isinstance(date, str) or len(date) > 64:
        return None
    try:
        when = parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time()) if when.tzinfo is not None else None


def retry_delay(attempt: int, asked: float | None) -> float:
    """Seconds before the next try: what the server asked for (capped), else exponential backoff with jitter."""
    if asked is not None and math.isfinite(asked) and asked >= 0:
        return min(asked, MAX_RETRY_AFTER)
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


async def with_retries(
    model: str, attempts: int, on_retry: RetryHook | None, attempt: Callable[[], Awaitable[ModelReply]]
) -> ModelReply:
    """`attempt` until it succeeds, retrying each Transient after `retry_delay`; only ModelError leaves."""
    number = 1
    try:
        while True:
            try:
                return await attempt()
            except Transient as failure:
                if number == attempts:
                    raise ModelError(failure.kind, f"{failure} (after {attempts} attempts)") from None
                wait = retry_delay(number, failure.wait)
                if on_retry is not None:
                    on_retry(attempt=number, max_attempts=attempts, reason=str(failure), wait_s=wait)
                await asyncio.sleep(wait)
            number += 1
    except ModelError:
        raise
    except Exception as exc:  # a bug or a fault nobody foresaw: the call fails, the engine does not
        raise ModelError("api", f"{model} call failed: {type(exc).__name__}: {one_line(exc)}") from None


def status_failure(model: str, status: int, said: Any, detail: str, has_tools: bool, headers: Any) -> Exception:
    """What an HTTP error status means: a Transient to retry, or a ModelError. `said` is the server's message,
    `detail` all the text it sent (searched for the context-length markers)."""
    reason = f"HTTP {status}: {one_line(said)}"
    if status in (400, 413) and any(marker in detail.lower() for marker in _CONTEXT_MARKERS):
        return ModelError("context_length", f"the prompt is longer than {model}'s context window: {reason}")
    if has_tools and status in (400, 404, 422, 501) and "tool" in reason.lower():
        return ModelError("tools_refused", f"{model} refused the tools parameter: {reason}")
    if status in RETRY_STATUSES or status >= 500:
        return Transient("api", f"{model} request failed with {reason}", retry_after(headers))
    return ModelError("api", f"{model} request failed with {reason}")


def too_large(declared: str) -> Transient | None:
    """The failure for a reply whose Content-Length is past MAX_REPLY_BYTES, before any of it is read."""
    if declared.isdigit() and int(declared) > MAX_REPLY_BYTES:
        return Transient(
            "malformed", f"the reply is larger than {MAX_REPLY_BYTES:,} bytes ({int(declared):,} declared)"
        )
    return None


def decode_reply(
    model: str, raw: bytes, content_type: str, messages: list[dict[str, Any]], latency: float
) -> ModelReply:
    """A 200's body as a reply; a body that is not a chat completion is a Transient saying what it is."""
    try:
        data = json.loads(raw)
    except ValueError:
        start_of = one_line(raw[:80].decode(errors="replace"), 80)
        raise Transient(
            "malformed",
            f"{model} sent a malformed reply: not JSON ({one_line(content_type, 60)}, "
            f"{len(raw):,} bytes: {start_of!r})",
        ) from None
    try:
        return parse_completion(data, messages, latency)
    except ValueError as exc:
        raise Transient("malformed", f"{model} sent a malformed reply: {exc}") from None
