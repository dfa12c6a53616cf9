"""One jailed REPL process: spawn it, speak frames on its pipes, learn how it ended, kill it."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from rlm_tui.sandbox.nsjail import (
    HINT,
    MB,
    Limits,
    SandboxError,
    cgroups_v1,
    children,
    command,
    remove_cgroups,
    start_error,
    tree_cpu_seconds,
)

__all__ = ["Jail", "Limits", "SandboxError"]

START_TIMEOUT = 60.0  # seconds for a jail to come up and load its context
KILL_GRACE = 2.0  # seconds nsjail gets to kill and reap its pid namespace after SIGTERM
REAP_TIMEOUT = 5.0  # seconds to wait for the kernel to reap nsjail after SIGKILL; then it is left to the kernel
PIPE_SIZE = 1 << 20  # fewer wakeups for megabyte frames (a 16 MB context, a capped 1 MB output)
STDERR_TAIL = 64 * 1024  # bytes of the jail's fd 2 kept for crash reports
MAX_FRAME = 256 * MB  # a jail streaming more than this without a newline is stopped, not buffered
SIGNAL_NOTES = {
    "SIGSEGV": "segmentation fault",
    "SIGBUS": "bus error",
    "SIGABRT": "abort",
    "SIGFPE": "arithmetic fault",
    "SIGILL": "illegal instruction",
}


async def _uncancellable(awaitable: Awaitable) -> Any:
    """Finish `awaitable` even if the caller is cancelled meanwhile, then let the cancellation through:
    a jail must be reaped before its event loop closes, or it outlives it."""
    task = asyncio.ensure_future(awaitable)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result


class _Lines(asyncio.Protocol):
    """Splits the frame pipe into lines, scanning each chunk once."""

    def __init__(self, on_line: Callable[[bytes], None], on_eof: Callable[[], None], on_overflow: Callable[[], None]):
        self.buf = bytearray()
        self.on_line, self.on_eof, self.on_overflow = on_line, on_eof, on_overflow
        self.transport: asyncio.ReadTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.ReadTransport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            if self.buf:
                self.buf += data[start:end]
                line = bytes(self.buf)
                self.buf.clear()
            else:
                line = data[start:end]
            self.on_line(line)
            start = end + 1
        if start < len(data):
            self.buf += data[start:]
            if len(self.buf) > MAX_FRAME:
                self.buf.clear()
                if self.transport is not None:
                    self.transport.close()
                self.on_overflow()

    def connection_lost(self, exc: Exception | None) -> None:
        self.on_eof()


class Jail:
    """One jailed REPL process: spawn it, send frames, learn how it ended, kill it."""

    def __init__(
        self,
        on_frame: Callable[[Jail, dict], None],
        read: Callable[[bytes], dict],
        limits: Limits,
        nsjail: str | None = None,
        cpu_budget: float | None = None,
    ):
        loop = asyncio.get_running_loop()
        self.on_frame, self.read, self.limits, self.nsjail = on_frame, read, limits, nsjail
        self.cpu_budget = cpu_budget
        self.cpu_s = 0.0  # CPU seconds the jail used: the most its init reported or the host measured
        self.ready = loop.create_future()
        self.ended = loop.create_future()  # resolves to plain words: "exited with code 3"
        self.exit: dict | None = None  # the jail's own report of how the REPL ended
        self.bad: str | None = None  # why the jail's frames stopped being trusted
        self.killer: asyncio.Future | None = None
        self.drainer: asyncio.Task | None = None
        self.err, self.err_total = bytearray(), 0
        self.proc: asyncio.subprocess.Process | None = None
        self.writer: asyncio.WriteTransport | None = None
        self.reader: asyncio.ReadTransport | None = None
        self.lines: _Lines | None = None
        self.tasks: set[asyncio.Task] = set()

    async def start(self, init: bytes, fds: tuple[int, ...] = ()) -> None:
        """Spawn the jail with `fds` passed in, send the init frame and wait for `ready`; raises SandboxError."""
        loop = asyncio.get_running_loop()
        jail_in, host_out = os.pipe()
        host_in, jail_out = os.pipe()
        for fd in (jail_in, host_in):
            try:
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
            except OSError:
                pass  # over the user's pipe quota: the default size only costs speed
        try:
            cmd = command(self.limits, jail_in, jail_out, self.nsjail, cpu_budget=self.cpu_budget, fds=fds)
            self.proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(jail_in, jail_out, *fds),
            )
        except OSError as exc:
            os.close(host_in)
            os.close(host_out)
            raise SandboxError(f"could not start the nsjail sandbox: {exc.strerror or exc}; {HINT}") from None
        except BaseException:
            os.close(host_in)
            os.close(host_out)
            raise
        finally:
            os.close(jail_in)
            os.close(jail_out)
        try:
            self.reader, self.lines = await loop.connect_read_pipe(
                lambda: _Lines(self._line, self._eof, self._overflow), open(host_in, "rb", 0)
            )
            self.writer, _ = await loop.connect_write_pipe(asyncio.Protocol, open(host_out, "wb", 0))
            self.drainer = self._spawn(self._drain())
            self.writer.write(init)
            await asyncio.wait((self.ready, self.ended), timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled while starting (ctrl+c): nobody else knows of this process yet
            await self.kill()
            raise
        if self.ready.done():
            return
        stderr, ended = self.err.decode("utf-8", "replace"), self.ended.done()
        await self.kill()
        if not ended:  # the wait itself is the reason, whatever the jail logged meanwhile
            raise SandboxError(
                f"could not start the nsjail sandbox: the jail was not ready after {START_TIMEOUT:g} s; "
                "is the machine overloaded? try a lower --concurrency"
            )
        raise start_error(stderr, f"the jail {self.ended.result()}")

    def _spawn(self, coro: Awaitable) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def send(self, frame: dict) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(json.dumps(frame).encode() + b"\n")

    def _line(self, line: bytes) -> None:
        try:
            frame = self.read(line)
        except ValueError as exc:
            if self.bad is None:  # a half frame cut by a crash is followed by the exit report, in the same write
                self._reject(f"sent a malformed frame ({exc}) and was stopped")
            return
        kind = frame["t"]
        if kind == "exit":
            self.exit = frame  # the REPL ended (or says so): either way this jail is done
            self.cpu_s = max(self.cpu_s, frame.get("cpu_s", 0.0))  # a forged low report cannot lower it
            self._spawn(self._finish())
        elif self.bad is not None or self.exit is not None:
            return  # nothing more from a jail that lied or whose REPL ended
        elif kind == "ready":
            if not self.ready.done():
                self.ready.set_result(None)
        else:
            self.on_frame(self, frame)

    def _reject(self, why: str) -> None:
        """Stop trusting this jail at once, and kill it."""
        self.bad = why
        self._spawn(self.kill())

    def _overflow(self) -> None:
        self._reject(f"sent a frame over {MAX_FRAME // MB} MB on the protocol pipe and was stopped")

    def _eof(self) -> None:
        self._spawn(self._finish())

    async def _drain(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(65536):
            self.err += chunk
            self.err_total += len(chunk)
            if len(self.err) > STDERR_TAIL:
                del self.err[:-STDERR_TAIL]

    def stderr_since(self, mark: int) -> str:
        keep = min(len(self.err), self.err_total - mark)
        return self.err[len(self.err) - keep :].decode("utf-8", "replace") if keep > 0 else ""

    async def _finish(self) -> None:
        """The REPL ended (the frame pipe closed, or an exit report came): let the jail go, then say how it ended."""
        try:
            if self.proc is not None:
                await asyncio.wait_for(self.proc.wait(), KILL_GRACE)
        except TimeoutError:
            await self.kill()
        if self.drainer is not None:
            await asyncio.wait((self.drainer,), timeout=1.0)  # the crash report on fd 2
        if not self.ended.done():
            self.ended.set_result(self._cause())

    def _cause(self) -> str:
        if self.exit is not None and self.exit.get("cpu_budget"):
            return (
                f"was stopped: the rollout used its CPU budget of {self.limits.cpu_seconds} s "
                "(all its processes and threads together, across REPL restarts)"
            )
        if self.bad is not None and self.exit is None:
            return self.bad
        code = self.proc.returncode if self.proc else None
        if self.exit is not None:
            code = -self.exit["signal"] if "signal" in self.exit else self.exit.get("code")
        elif code is not None and code > 128:
            code = 128 - code  # nsjail reports a signal as 128 + its number
        if code is None:
            return "stopped for an unknown reason"
        if code >= 0:
            return f"exited with code {code}"
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        note = SIGNAL_NOTES.get(name) or {
            "SIGKILL": f"often the {self.limits.memory_mb} MB memory limit",
            "SIGXCPU": "the CPU time limit",
            "SIGXFSZ": "the file size limit",
        }.get(name)
        return f"was killed by {name}" + (f" ({note})" if note else "")

    async def kill(self) -> None:
        """Stop the jail and everything in it, in bounded time; safe to call from many places at once."""
        if self.killer is None:
            self.killer = asyncio.ensure_future(self._kill())
        await _uncancellable(self.killer)

    async def _kill(self) -> None:
        # nsjail kills and reaps the whole pid namespace on SIGTERM; SIGKILL ends nsjail and, with it, its jail's init
        for sig, seconds in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, REAP_TIMEOUT)):
            if self.proc is None or self.proc.returncode is not None:
                break
            if sig == signal.SIGTERM:  # nsjail's SIGKILL to the jail's init leaves it no time to report its CPU
                self.cpu_s = max(self.cpu_s, tree_cpu_seconds(self.proc.pid))
            inits = children(self.proc.pid) if sig == signal.SIGKILL and cgroups_v1() else []
            try:
                self.proc.send_signal(sig)
                await asyncio.wait_for(self.proc.wait(), seconds)
            except ProcessLookupError:  # it ended on its own meanwhile
                break
            except TimeoutError:
                continue
            remove_cgroups(inits)
        for transport in (self.writer, self.reader):
            if transport is not None:
                transport.close()
        for task in list(self.tasks):
            if task is not asyncio.current_task():
                task.cancel()
        if not self.ended.done():
            self.ended.set_result(self._cause())
