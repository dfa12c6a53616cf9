"""The host side of the sandbox: one jailed REPL per rollout, its frames, timeouts and restarts."""

from __future__ import annotations

import asyncio
import fcntl
import functools
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rlm_tui.sandbox import frames, nsjail
from rlm_tui.sandbox.jail import Jail, Limits, SandboxError
from rlm_tui.sandbox.nsjail import find_nsjail

LlmBatch = Callable[..., Awaitable[list[str]]]  # (prompts) -> responses; (prompts, rlm=True) for rlm_batch
MAX_ANSWER_CHARS = 1_000_000  # answer["content"] is cut to this: it is stored after every cell
MAX_BATCH_PROMPTS = 5_000  # prompts in one llm_batch call
MAX_BATCH_CHARS = 20_000_000  # characters in one llm_batch call; even escaped, its frame stays under jail.MAX_FRAME
MAX_ROLLOUT_PROMPTS = 50_000  # prompts over a whole rollout, across restarts
CHUNK_CHARS = 1 << 20  # the context is encoded into its memfd this much at a time: no second whole copy on the host
SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


class CpuBudgetSpent(SandboxError):
    """The rollout used the CPU seconds its limits give it, across every REPL it had: no more code can run."""


@dataclass(frozen=True)
class CellResult:
    output: str  # what a person reads: stdout, stderr, traceback (or error), Out[n]; capped at output_cap
    output_chars: int  # length the full output would have had
    stdout: str
    stderr: str
    out: str | None
    error: str | None
    traceback: str | None
    elapsed_s: float
    answer: dict
    restarted: bool = False  # the REPL process was replaced during this cell
    lost: str | None = None  # for the model: what the restart lost (not part of `output`)


def _answer(value: Any) -> dict:
    value = value if isinstance(value, dict) else {}
    content = value.get("content", "")
    return {"content": content if isinstance(content, str) else str(content), "ready": bool(value.get("ready", False))}


def _context_file(context: Any) -> tuple[int, int, bool]:
    """The context in a sealed memfd, the same bytes for every REPL of the rollout: (fd, bytes, is_json).
    The jail maps it read-only instead of reading it through the frame pipe; the seals keep it from changing it."""
    is_json = not isinstance(context, str)
    try:
        text = json.dumps(context) if is_json else context
    except (TypeError, ValueError) as exc:
        raise SandboxError(f"the context must be JSON data (str, number, list, dict...): {exc}") from None
    fd = os.memfd_create("rlm-context", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        size = 0
        for start in range(0, len(text), CHUNK_CHARS):
            view = memoryview(text[start : start + CHUNK_CHARS].encode("utf-8", "surrogatepass"))
            size += len(view)
            while view:
                view = view[os.write(fd, view) :]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
    except BaseException:
        os.close(fd)
        raise
    return fd, size, is_json


def _close_made(made: asyncio.Future) -> None:
    """Close the memfd a start made after it was cancelled."""
    if not made.cancelled() and made.exception() is None:
        os.close(made.result()[0])


def _fit(responses: Any, n: int) -> list[str]:
    """Exactly one string per prompt, whatever the callable returned."""
    got = [r if isinstance(r, str) else str(r) for r in list(responses)][:n]
    return got + ["[llm_batch error] no response for this prompt"] * (n - len(got))


def _join(pieces: list[tuple[str, int]], cap: int) -> tuple[str, int]:
    """Join (kept text, full length) pieces with newlines between them: the capped text and the full length."""
    kept: list[str] = []
    total = 0
    for text, full in pieces:
        if not full:
            continue
        if kept and not kept[-1].endswith("\n"):
            kept.append("\n")
            total += 1
        kept.append(text)
        total += full
    return "".join(kept)[:cap], total


@dataclass
class _Cell:
    id: int
    llm: LlmBatch | None
    done: asyncio.Future
    frame: dict | None = None  # the result, kept even if it lands just as the timer fires
    tasks: set[asyncio.Task] = field(default_factory=set)
    waiting_since: float | None = None  # an llm_batch is in flight since then
    waited: float = 0.0  # seconds spent waiting on sub-LLMs, which the timeout does not count

    def batch_started(self) -> None:
        if not self.tasks:
            self.waiting_since = time.perf_counter()

    def batch_ended(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not self.tasks and self.waiting_since is not None:
            self.waited += time.perf_counter() - self.waiting_since
            self.waiting_since = None

    def sub_llm_seconds(self) -> float:
        running = time.perf_counter() - self.waiting_since if self.waiting_since is not None else 0.0
        return self.waited + running


def _settle(fut: asyncio.Future, value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


class Sandbox:
    """A persistent jailed Python REPL holding `context`, `answer` and `llm_batch`."""

    def __init__(
        self,
        *,
        limits: Limits = Limits(),
        timeout: float = 120.0,
        output_cap: int = 1_000_000,
        interrupt_grace: float = 2.0,
        nsjail: str | None = None,
    ):
        self.limits, self.timeout, self.output_cap = limits, timeout, output_cap
        self.interrupt_grace = interrupt_grace
        self.nsjail = find_nsjail(nsjail)  # a missing binary fails here, before anything starts
        self.restarts = 0
        self._repl: Jail | None = None
        self._cell: _Cell | None = None
        self._cells = 0
        self._context: tuple[int, int, bool] | None = None  # the memfd holding it, its size, whether it is JSON
        self._answer = _answer(None)
        self._lock = asyncio.Lock()
        self._closed = False
        self._prompts = 0  # sent to sub-LLMs by this rollout
        self.cpu_spent = 0.0  # CPU seconds used by the jails this sandbox has ended
        self.spent: str | None = None  # why no more code can run, once the CPU budget is used

    @property
    def pid(self) -> int | None:
        """Host pid of the nsjail process supervising the current REPL, if one is running."""
        repl = self._repl
        return repl.proc.pid if repl is not None and repl.proc is not None and repl.proc.returncode is None else None

    @property
    def answer(self) -> dict:
        """The last known `answer` (from the most recent cell)."""
        return dict(self._answer)

    async def __aenter__(self) -> Sandbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self, context: Any = None, answer: dict | None = None) -> None:
        if self._closed or self._repl is not None:
            raise SandboxError("this sandbox was already started; create a new Sandbox for a new REPL")
        if isinstance(context, str) and len(context) <= CHUNK_CHARS:
            self._context = _context_file(context)
        elif context is not None:  # megabytes to encode would hold up the event loop (the first model call)
            made = asyncio.get_running_loop().run_in_executor(None, _context_file, context)
            try:
                self._context = await asyncio.shield(made)
            except asyncio.CancelledError:
                made.add_done_callback(_close_made)
                raise
        self._answer = _answer(answer)
        self._repl = await self._spawn()

    async def _spawn(self) -> Jail:
        left = self.limits.cpu_seconds - self.cpu_spent
        if left <= 0:
            self.spent = (
                f"the rollout used its CPU budget of {self.limits.cpu_seconds} s (all its processes and "
                "threads together, across REPL restarts): no more code can run"
            )
            raise CpuBudgetSpent(self.spent)
        head = {
            "t": "init",
            "output_cap": int(self.output_cap),
            "answer": self._answer,
            "max_answer_chars": MAX_ANSWER_CHARS,
            "max_batch_prompts": MAX_BATCH_PROMPTS,
            "max_batch_chars": MAX_BATCH_CHARS,
        }
        fds: tuple[int, ...] = ()
        if self._context is not None:
            fd, size, is_json = self._context
            head.update(context_fd=fd, context_bytes=size, context_json=is_json)
            fds = (fd,)
        read = functools.partial(frames.read, cap=int(self.output_cap), answer_cap=MAX_ANSWER_CHARS)
        repl = Jail(self._on_frame, read, self.limits, self.nsjail, cpu_budget=left)
        await repl.start(json.dumps(head).encode() + b"\n", fds)
        repl.ended.add_done_callback(lambda _: self._on_end(repl))
        return repl

    async def _retire(self) -> None:
        """Kill the current jail and count the CPU it used."""
        old, self._repl = self._repl, None
        if old is not None:
            await old.kill()
            self.cpu_spent += old.cpu_s

    async def _restart(self) -> None:
        await self._retire()
        if self._closed:
            raise SandboxError("the sandbox was closed while a cell was running")
        self._repl = await self._spawn()
        self.restarts += 1

    async def close(self) -> None:
        """Kill the jail and everything in it; safe to call twice."""
        self._closed = True
        if self._cell is not None:
            _settle(self._cell.done, ("closed", None))
        await self._retire()
        if self._context is not None:
            os.close(self._context[0])
            self._context = None

    def _on_end(self, repl: Jail) -> None:
        if self._cell is not None and repl is self._repl:
            _settle(self._cell.done, ("died", repl.ended.result()))

    def _on_frame(self, repl: Jail, frame: dict) -> None:
        if repl is not self._repl:
            return
        kind, cell = frame.get("t"), self._cell
        if kind == "result":
            if cell is not None and frame["id"] == cell.id:
                cell.frame = frame
                _settle(cell.done, ("result", frame))
        elif kind == "llm_batch":
            call_id, prompts = frame["id"], frame["prompts"]
            refused = self._refuse(cell, prompts)
            if refused:
                repl.send({"t": "llm_batch_result", "id": call_id, "error": refused})
            else:
                assert cell is not None and cell.llm is not None  # _refuse said so
                self._prompts += len(prompts)
                cell.batch_started()
                rlm = frame.get("rlm") is True
                task = asyncio.ensure_future(self._llm_batch(cell.llm, repl, call_id, prompts, rlm))
                cell.tasks.add(task)
                task.add_done_callback(cell.batch_ended)

    def _refuse(self, cell: _Cell | None, prompts: list[str]) -> str | None:
        """Why this batch is not run, checked again on the host since the jail can forge a frame; None to run it."""
        if cell is None:
            return "llm_batch was called between cells (from a thread that outlived its cell?)"
        if cell.llm is None:
            return "llm_batch is not available: this REPL was given no sub-LLM to call"
        if len(prompts) > MAX_BATCH_PROMPTS:
            return f"llm_batch got {len(prompts):,} prompts; send at most {MAX_BATCH_PROMPTS:,} per call"
        chars = sum(map(len, prompts))
        if chars > MAX_BATCH_CHARS:
            return f"llm_batch prompts add up to {chars:,} characters; send at most {MAX_BATCH_CHARS:,} per call"
        if self._prompts + len(prompts) > MAX_ROLLOUT_PROMPTS:
            return (
                f"llm_batch refused: this rollout has already sent {self._prompts:,} prompts, the most one rollout "
                f"may send is {MAX_ROLLOUT_PROMPTS:,}"
            )
        return None

    async def _llm_batch(self, llm: LlmBatch, repl: Jail, call_id: int, prompts: list[str], rlm: bool) -> None:
        try:  # only a host that runs child RLMs is asked for them; others answer as before
            responses = _fit(await (llm(prompts, rlm=True) if rlm else llm(prompts)), len(prompts))
        except asyncio.CancelledError:
            repl.send({"t": "llm_batch_result", "id": call_id, "error": "llm_batch was cancelled: its cell ended"})
            raise
        except Exception as exc:  # a batch never fails as a whole: each prompt gets the error
            responses = [f"[llm_batch error] {type(exc).__name__}: {exc}"] * len(prompts)
        repl.send({"t": "llm_batch_result", "id": call_id, "responses": responses})

    async def _wait(self, cell: _Cell, repl: Jail, seconds: float) -> tuple[str, Any]:
        if cell.frame is not None:
            return "result", cell.frame
        if repl.ended.done():
            return "died", repl.ended.result()
        loop = asyncio.get_running_loop()
        cell.done = loop.create_future()
        start, timer = time.perf_counter(), None

        def check() -> None:
            # Time spent waiting on llm_batch is the sub-LLMs', not the code's: it does not count.
            nonlocal timer
            used = time.perf_counter() - start - (cell.sub_llm_seconds() - waited_before)
            if used >= seconds:
                _settle(cell.done, ("timeout", None))
            else:
                timer = loop.call_later(max(seconds - used, 0.05), check)

        waited_before = cell.sub_llm_seconds()
        timer = loop.call_later(seconds, check)
        try:
            return await cell.done
        finally:
            timer.cancel()

    async def run(self, code: str, llm_batch: LlmBatch | None = None) -> CellResult:
        """Run one cell; a timeout or a crash of the REPL is reported in the result, never raised."""
        async with self._lock:
            if self.spent:
                raise CpuBudgetSpent(self.spent)
            if self._closed or self._repl is None:
                raise SandboxError("the sandbox is not running; call start() on a new Sandbox first")
            lost_before = None
            if self._repl.ended.done():
                cause = self._repl.ended.result()
                await self._restart()
                lost_before = (
                    f"The REPL process {cause} after the previous cell, so it was restarted before this "
                    "one: every variable you defined is gone; `context` and `answer` were restored."
                )
            repl, self._cells = self._repl, self._cells + 1
            cell = self._cell = _Cell(self._cells, llm_batch, asyncio.get_running_loop().create_future())
            mark, start, timed_out = repl.err_total, time.perf_counter(), False
            try:
                repl.send({"t": "exec", "id": cell.id, "code": code})
                kind, value = await self._wait(cell, repl, self.timeout)
                if kind == "timeout":
                    timed_out = True
                    repl.send({"t": "interrupt"})
                    kind, value = await self._wait(cell, repl, self.interrupt_grace)
            except asyncio.CancelledError:
                repl.send({"t": "interrupt"})  # the caller gave up: stop the cell rather than let it run on
                raise
            finally:
                self._cell = None
                for task in list(cell.tasks):
                    task.cancel()
            elapsed = time.perf_counter() - start
            if kind == "closed":
                raise SandboxError("the sandbox was closed while the cell was running")
            if kind == "result":
                return self._result(value, timed_out, lost_before)
            crash = repl.stderr_since(mark) if kind == "died" else ""
            try:
                await self._restart()
            except CpuBudgetSpent:
                return self._lost(kind, value, elapsed, crash, restarted=False)
            return self._lost(kind, value, elapsed, crash)

    def _result(self, frame: dict, timed_out: bool, lost: str | None) -> CellResult:
        """A cell's result from a frame that frames.read has checked."""
        self._answer = dict(frame["answer"])
        stdout, stderr, out = frame["stdout"], frame["stderr"], frame["out"]
        error, tb = frame["error"], frame["traceback"]
        if timed_out:
            error = "timeout"
        shown_error = error if error and error != "timeout" and not (tb and tb.rstrip().endswith(error)) else None
        output, chars = _join(
            [
                (stdout, frame["stdout_chars"]),
                (stderr, frame["stderr_chars"]),
                (tb or "", len(tb or "")),
                (shown_error or "", len(shown_error or "")),
                (out or "", frame["out_chars"]),
            ],
            self.output_cap,
        )
        return CellResult(
            output=output,
            output_chars=chars,
            stdout=stdout,
            stderr=stderr,
            out=out,
            error=error,
            traceback=tb,
            elapsed_s=frame["elapsed_s"],
            answer=dict(self._answer),
            restarted=lost is not None,
            lost=lost,
        )

    def _lost(self, kind: str, cause: str | None, elapsed: float, crash: str, restarted: bool = True) -> CellResult:
        if kind == "timeout":
            error = (
                f"timeout: the cell ran past {self.timeout:g} s and did not stop when interrupted, "
                "so the REPL was restarted"
            )
            lost = (
                f"The cell timed out after {self.timeout:g} s and the REPL did not respond to an interrupt, so it "
                "was restarted: every variable you defined is gone and the cell's output was lost; `context` "
                "and `answer` were restored."
            )
        else:
            error = f"crash: the REPL process {cause}"
            lost = (
                f"The REPL process {cause} during this cell, so it was restarted: every variable you defined is "
                "gone and the cell's output was lost; `context` and `answer` were restored."
            )
        if not restarted:
            lost = f"{error}; the cell's output was lost and {self.spent}."
        lines = [line for line in crash.splitlines() if nsjail.SERVER_DIR not in line and line.strip()]
        tb = "\n".join(lines)[-4000:] or None
        output, chars = _join([(tb or "", len(tb or "")), (error, len(error))], self.output_cap)
        return CellResult(
            output=output,
            output_chars=chars,
            stdout="",
            stderr="",
            out=None,
            error=error,
            traceback=tb,
            elapsed_s=elapsed,
            answer=dict(self._answer),
            restarted=restarted,
            lost=lost,
        )
