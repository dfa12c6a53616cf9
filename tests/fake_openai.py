"""A real local HTTP server that speaks the OpenAI chat-completions API, scripted by a Python function."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    content: str = ""
    tool_calls: list[tuple[str, str]] = field(default_factory=list)  # (name, raw JSON arguments)
    usage: dict[str, Any] | None = None  # None: the server reports no usage
    reasoning: str | None = None


@dataclass
class Fail:
    status: int
    message: str
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Raw:
    """Any bytes as the reply: the body is `body` sent `repeat` times over (a gigantic reply without holding
    it); with `cut` the reply promises more than it sends and the connection closes mid-body."""

    body: bytes
    status: int = 200
    content_type: str = "application/json"
    repeat: int = 1
    cut: bool = False


@dataclass
class Hang:
    """Never answers: the request is held until the client gives up or the server stops."""


@dataclass
class Held:
    """`reply`, sent only once `until` requests have arrived: proves that many were in flight at once."""

    reply: Reply
    until: int


Responder = Callable[
    [dict[str, Any]], "Reply | Fail | Raw | Hang | Held | dict[str, Any]"
]  # a dict is sent as the JSON body


class FakeOpenAI:
    """Serves /v1/chat/completions from `respond(request_body)`; records every request body."""

    def __init__(
        self,
        respond: Responder,
        *,
        latency: float = 0.0,
        models: list[dict[str, Any]] | None = None,
        props: dict[str, Any] | None = None,
    ) -> None:
        self.respond, self.latency = respond, latency
        self.models = models if models is not None else [{"id": "fake-model", "object": "model"}]
        self.props = props  # llama.cpp's /props, served only when given
        self.requests: list[dict[str, Any]] = []
        self.peers: set[Any] = set()  # the client ends of the connections requests came on
        self.authorizations: list[str] = []  # each request's Authorization header
        self._ids = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self.base_url = ""

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stopping.set)  # releases every held request
        self._loop.call_soon_threadsafe(self._crowd.set)
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> int:
        self._stopping = asyncio.Event()
        self._crowd = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        if self.props is not None:
            app.router.add_get("/props", self._props)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=2048)
        await site.start()
        return site._server.sockets[0].getsockname()[1]

    async def _props(self, request: web.Request) -> web.Response:
        return web.json_response(self.props)

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": self.models})

    async def _completions(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        if request.transport is not None:
            self.peers.add(request.transport.get_extra_info("peername"))
        self.authorizations.append(request.headers.get("Authorization", ""))
        if self.latency:
            await asyncio.sleep(self.latency)
        result = self.respond(body)
        if isinstance(result, Held):
            if len(self.requests) >= result.until:
                self._crowd.set()
            await self._crowd.wait()
            result = result.reply
        if isinstance(result, Hang):
            await self._stopping.wait()
            return web.Response(status=503)
        if isinstance(result, Raw):
            return await self._raw(request, result)
        if isinstance(result, dict):
            return web.json_response(result)
        if isinstance(result, Fail):
            error = {"error": {"message": result.message, "type": "invalid_request_error", "code": result.code}}
            return web.json_response(error, status=result.status, headers=result.headers)
        message: dict[str, Any] = {"role": "assistant", "content": result.content or None}
        if result.reasoning is not None:
            message["reasoning_content"] = result.reasoning
        if result.tool_calls:
            message["tool_calls"] = [
                {"id": f"call_{next(self._ids)}", "type": "function", "function": {"name": name, "arguments": args}}
                for name, args in result.tool_calls
            ]
        payload: dict[str, Any] = {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls" if result.tool_calls else "stop"}
            ],
        }
        if result.usage is not None:
            payload["usage"] = {"total_tokens": 0, **result.usage}
        return web.json_response(payload)

    async def _raw(self, request: web.Request, raw: Raw) -> web.StreamResponse:
        size = len(raw.body) * raw.repeat
        response = web.StreamResponse(
            status=raw.status,
            headers={"Content-Type": raw.content_type, "Content-Length": str(size + 100 if raw.cut else size)},
        )
        await response.prepare(request)
        try:
            for _ in range(raw.repeat):
                await response.write(raw.body)
        except (ConnectionError, RuntimeError):  # the client stopped reading: that is its right
            return response
        if raw.cut:
            request.transport.close()
        return response


class FakeOpenAIProcess:
    """The same server in a forked process, so that a benchmark's client does not share its GIL."""

    def __init__(self, respond: Responder, *, latency: float = 0.0) -> None:
        self.respond, self.latency = respond, latency
        self.base_url = ""

    def __enter__(self) -> FakeOpenAIProcess:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        parent, child = context.Pipe()
        self._process = context.Process(target=self._serve, args=(child,), daemon=True)
        self._process.start()
        self.base_url = parent.recv()
        return self

    def _serve(self, pipe) -> None:
        with FakeOpenAI(self.respond, latency=self.latency) as server:
            pipe.send(server.base_url)
            pipe.recv()  # blocks until the parent goes away

    def __exit__(self, *exc: object) -> None:
        self._process.terminate()
        self._process.join(10)


def code_call(code: str) -> Reply:
    return Reply(tool_calls=[("call_python_repl", json.dumps({"code": code}))])


def is_root(body: dict[str, Any]) -> bool:
    return any(t["function"]["name"] == "call_python_repl" for t in body.get("tools") or ())


def root_turn(body: dict[str, Any]) -> int:
    """How many assistant turns the root has taken before this request."""
    return sum(1 for m in body["messages"] if m["role"] == "assistant")


def looping(body: dict[str, Any]) -> Reply:
    """A root model that prints its turn number until an injected message asks it to finish."""
    if is_root(body):
        said = [m["content"] for m in body["messages"] if m["role"] == "user"]
        if any("please finish" in s for s in said):
            return code_call('answer.update(content="stopped on request", ready=True)')
        return code_call(f"print('turn {root_turn(body)}')")
    return Reply(content="sub")
