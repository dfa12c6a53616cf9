"""Each promise of the jail, checked from inside it with the real nsjail: network, files, environment, uid, bombs."""

import asyncio
import functools
import json
import os
import tempfile
import uuid
from pathlib import Path

import pytest

from rlm_tui.sandbox import Limits


@pytest.fixture
def make(make):
    return functools.partial(make, "ctx")


async def inside(box, code):
    """Run a cell whose last expression is the finding; return that value."""
    result = await box.run(code)
    assert result.error is None, result.output
    return eval(result.out.split(": ", 1)[1])


def process_tree(root: int) -> set[tuple[int, str]]:
    """(pid, start time) of `root` and all its descendants, read from the host's /proc."""
    parents, starts = {}, {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(fields[1]), []).append(int(name))
            starts[int(name)] = fields[19]
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in starts:
            tree.add((pid, starts[pid]))
        todo += parents.get(pid, [])
    return tree


def alive(tree: set[tuple[int, str]]) -> list[int]:
    left = []
    for pid, start in tree:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19] == start:
                left.append(pid)
        except OSError:
            pass
    return left


async def test_no_socket_reaches_anything(make):
    connections = []
    server = await asyncio.start_server(lambda reader, writer: (connections.append(1), writer.close()), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    box = await make()
    code = (
        "import socket\nfailed = []\n"
        f"for host, port in [('127.0.0.1', {port}), ('1.1.1.1', 53), ('8.8.8.8', 443), ('::1', {port})]:\n"
        "    try:\n"
        "        socket.create_connection((host, port), timeout=1).close()\n"
        "    except OSError as exc:\n"
        "        failed.append(exc.errno)\n"
        "len(failed), [name for _, name in socket.if_nameindex()]"
    )
    failed, interfaces = await inside(box, code)
    server.close()
    await server.wait_closed()
    assert failed == 4
    assert connections == []
    assert interfaces == ["lo"]


async def test_files_outside_the_mounts_are_invisible(make):
    secret = f"secret-{uuid.uuid4()}"
    paths = []
    with tempfile.TemporaryDirectory() as tmp:
        paths.append(Path(tmp) / "secret.txt")
        if os.access("/root", os.W_OK):
            paths.append(Path("/root") / f".rlm-tui-test-{uuid.uuid4()}")
        for path in paths:
            path.write_text(secret)
        paths += [Path(__file__).resolve(), Path(__file__).resolve().parent.parent / "pyproject.toml"]
        try:
            box = await make()
            code = (
                "import os\nseen = []\n"
                f"for path in {[str(p) for p in paths]!r}:\n"
                "    try:\n"
                "        seen.append(open(path).read())\n"
                "    except OSError:\n"
                "        pass\n"
                "seen, os.listdir('/tmp'), sorted(os.listdir('/'))"
            )
            seen, tmp_listing, root_listing = await inside(box, code)
        finally:
            for path in paths[:-2]:
                path.unlink(missing_ok=True)
    assert seen == []
    assert Path(tmp).name not in tmp_listing
    from rlm_tui.sandbox import nsjail as jail

    mounted = {Path(p).parts[1] for p in jail.python_mounts() if len(Path(p).parts) > 1}  # a virtualenv's own root
    assert [name for name in ("home", "work", "var") if name in root_listing and name not in mounted] == []


async def test_host_environment_is_not_visible(make, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-for-the-jail")
    box = await make()
    code = (
        "import os, glob\n"
        "environs = b''.join(open(p, 'rb').read() for p in glob.glob('/proc/[0-9]*/environ'))\n"
        "sorted(os.environ), b'sk-test' in environs, b'OPENAI' in environs, len(environs) > 0"
    )
    names, key_seen, name_seen, read_any = await inside(box, code)
    assert "OPENAI_API_KEY" not in names
    assert set(names) <= {
        "HOME",
        "TMPDIR",
        "PATH",
        "LANG",
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "MPLBACKEND",
    }
    assert read_any and not key_seen and not name_seen


async def test_nothing_outside_tmp_is_writable(make):
    box = await make(limits=Limits(tmp_mb=8, file_size_mb=4))
    code = (
        "import os, sys\nwritten = []\n"
        "for d in ['/', '/usr', '/etc', '/root', '/dev', '/proc', '/rlm_sandbox', sys.prefix, sys.base_prefix,\n"
        "          os.path.dirname(os.__file__)]:\n"
        "    try:\n"
        "        open(os.path.join(d, 'x'), 'w').write('x')\n"
        "        written.append(d)\n"
        "    except OSError:\n"
        "        pass\n"
        "open('/tmp/ok', 'w').write('fine')\n"
        "open('/dev/null', 'w').write('fine')\n"
        "def write(path, mb):\n"
        "    try:\n"
        "        with open(path, 'wb') as f:\n"
        "            f.write(b'x' * (mb << 20))\n"
        "        return 'ok'\n"
        "    except OSError as exc:\n"
        "        return exc.strerror\n"
        "big = write('/tmp/big', 5)\n"
        "os.remove('/tmp/big')\n"
        "fills = [write(f'/tmp/fill{i}', 3) for i in range(3)]\n"
        "rw = [f[1] for f in map(str.split, open('/proc/mounts')) if 'rw' in f[3].split(',')]\n"
        "written, rw, open('/tmp/ok').read(), big, fills"
    )
    written, rw, back, big, fills = await inside(box, code)
    assert written == []
    assert sorted(rw) == ["/dev/null", "/tmp"]
    assert back == "fine"
    assert big == "File too large"  # RLIMIT_FSIZE
    assert fills[:2] == ["ok", "ok"] and fills[2] == "No space left on device"  # the tmpfs size cap


async def test_jail_is_not_root_outside(make):
    box = await make()
    code = (
        "import os\n"
        "def outside(ident, mapfile):\n"
        "    for line in open(mapfile):\n"
        "        inner, outer, count = map(int, line.split())\n"
        "        if inner <= ident < inner + count:\n"
        "            return outer + ident - inner\n"
        "status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
        "(os.getuid(), outside(os.getuid(), '/proc/self/uid_map'), outside(os.getgid(), '/proc/self/gid_map'),\n"
        " int(status['CapEff'], 16), int(status['NoNewPrivs']))"
    )
    uid, outside_uid, outside_gid, caps, no_new_privs = await inside(box, code)
    assert uid != 0 and outside_uid not in (0, None) and outside_gid not in (0, None)
    assert caps == 0 and no_new_privs == 1
    uids = {
        Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0]
        for pid, _ in process_tree(box.pid)
        if pid != box.pid
    }
    assert uids and "0" not in uids  # and seen from the host: every jailed process runs as a non-root uid


async def test_fork_bomb_is_contained(make):
    # the interrupted REPL formats its traceback while 23 forks take the CPU: give it the time to answer
    box = await make(limits=Limits(processes=24), timeout=1.0, interrupt_grace=5.0)
    result = await box.run("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass")
    assert result.error == "timeout"
    count = await inside(box, "import os\nsum(name.isdigit() for name in os.listdir('/proc'))")
    assert count <= 24
    tree = process_tree(box.pid)
    assert len(tree) > 10
    await box.close()
    assert alive(tree) == []


async def test_close_leaves_no_process_behind(make):
    box = await make()
    await inside(
        box,
        "import subprocess, os\n"
        "subprocess.Popen(['sleep', '1000'], start_new_session=True)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        import time; time.sleep(1000)\n"
        "    os._exit(0)\n"
        "1",
    )
    tree = process_tree(box.pid)
    assert len(tree) >= 5  # nsjail, the jail's init, the REPL, sleep, the daemon
    await box.close()
    assert alive(tree) == []


async def test_memory_bomb_is_contained(make):
    box = await make(limits=Limits(memory_mb=512))
    result = await box.run("x = bytearray(4 * 1024 ** 3)")
    assert result.error == "MemoryError" and not result.restarted
    result = await box.run("chunks = []\nwhile True:\n    chunks.append(b'x' * 50_000_000)")
    # the address-space limit (virtual) is reached before the memory cgroup's (resident): the REPL lives on
    assert result.error == "MemoryError" and not result.restarted, result.error
    assert (await box.run("n = len(chunks)\ndel chunks\n0 < n < 11")).out == "Out[3]: True"
    assert (await box.run("2")).out == "Out[4]: 2"


async def test_endless_loop_is_contained(make):
    box = await make(timeout=0.5)
    result = await box.run("while True:\n    pass")
    assert result.error == "timeout" and not result.restarted
    assert (await box.run("3")).out == "Out[2]: 3"


@pytest.mark.parametrize("code", ["import os\nos._exit(0)", "import ctypes\nctypes.string_at(0)"])
async def test_exit_and_segfault_are_contained(make, code):
    box = await make()
    result = await box.run(code)
    assert result.restarted and result.error.startswith("crash:")
    assert (await box.run("4")).out == "Out[1]: 4"


async def test_huge_print_is_contained(make):
    box = await make(output_cap=50_000, timeout=30.0)
    result = await box.run("import sys\nsys.stdout.write('y' * 100_000_000)")
    assert len(result.output) == 50_000 and result.output_chars >= 100_000_000
    assert (await box.run("5")).out == "Out[2]: 5"


def test_command_keeps_every_namespace_and_clears_the_environment():
    from rlm_tui.sandbox import nsjail as jail

    limits = Limits(memory_mb=300, open_files=17)
    cmd = jail.command(limits, 3, 4)
    for flag in (
        "-N",
        "--disable_clone_newnet",
        "--disable_clone_newns",
        "--disable_clone_newpid",
        "--keep_env",
        "-e",
        "--keep_caps",
        "--disable_no_new_privs",
        "--rw",
    ):
        assert flag not in cmd
    pairs = list(zip(cmd, cmd[1:]))
    assert [v for k, v in pairs if k == "-E"] == [f"{k}={v}" for k, v in jail.ENV.items()]  # nothing of ours
    assert [v for k, v in pairs if k == "--pass_fd"] == ["3", "4"]  # the protocol pipes, and no other fd
    assert ("--rlimit_as", "300") in pairs and ("--rlimit_nofile", "17") in pairs
    assert ("--seccomp_string", jail.SECCOMP) in pairs and "-Mo" in cmd
    assert not any(k in ("-B", "--bindmount") and v != "/dev/null" for k, v in pairs)  # the rest is read-only


async def test_flooding_the_protocol_pipe_is_contained(make):
    box = await make(timeout=30.0)
    flood = "import os, sys\nchunk = b'x' * (1 << 24)\nwhile True:\n    os.write(int(sys.argv[2]), chunk)"
    result = await box.run(flood)  # sys.argv[2] is the REPL's frame pipe to the host
    assert result.restarted and "over 256 MB" in result.error
    assert (await box.run("6")).out == "Out[1]: 6"


async def test_oversized_llm_batch_is_refused_in_the_jail(make):
    box = await make()

    async def llm(prompts):
        raise AssertionError("must not be called")

    result = await box.run("llm_batch(['x' * 30_000_000, 'y' * 30_000_000])", llm)
    assert result.error.startswith("ValueError: llm_batch prompts add up to 60,000,000 characters")


def _world_readable(path: Path) -> bool:
    return all(p.stat().st_mode & 0o005 == 0o005 for p in [path, *path.parents] if p.is_dir())


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists(), reason="needs root and setpriv")
async def test_user_namespace_mode_for_a_normal_user():
    # as root the jail has no user namespace; running the host side as uid 1234 covers the other mode
    import rlm_tui
    from rlm_tui.sandbox import nsjail as jail

    root, nsjail = Path(rlm_tui.__file__).resolve().parents[1], Path(jail.find_nsjail())
    python = Path("/usr/bin/python3")
    if not python.exists() or not _world_readable(root) or not _world_readable(nsjail.parent):
        pytest.skip("needs a system python3 and a project and nsjail readable by other users")
    script = (
        f"import asyncio, json, sys\nsys.path.insert(0, {str(root)!r})\n"
        "from rlm_tui.sandbox import Sandbox\n"
        "async def main():\n"
        f"    async with Sandbox(nsjail={str(nsjail)!r}, timeout=10) as box:\n"
        "        await box.start('ctx')\n"
        "        r = await box.run(\"import os\\nos.getuid(), open('/proc/self/uid_map').read().split(), "
        'sorted(os.environ)")\n'
        "        print(json.dumps([r.out, r.error]))\n"
        "asyncio.run(main())\n"
    )
    proc = await asyncio.create_subprocess_exec(
        "/usr/bin/setpriv",
        "--reuid=1234",
        "--regid=1234",
        "--clear-groups",
        "env",
        "-i",
        "OPENAI_API_KEY=sk-x",
        str(python),
        "-I",
        "-c",
        script,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if b"SyntaxError" in err or b"ModuleNotFoundError" in err:
        pytest.skip(f"the system python cannot import rlm_tui.sandbox: {err.decode()[-200:]}")
    assert proc.returncode == 0, err.decode()
    shown, error = json.loads(out)
    assert error is None
    assert "(65534, ['65534', '1234', '1']" in shown and "OPENAI" not in shown
