"""The persistent Python REPL that runs inside the jail; speaks JSON-line frames on a dedicated pipe pair."""

# The C halves of ast, json, signal and threading: their Python modules (with re, enum and tokenize, which
# linecache pulls in) would cost every jail start more CPU than the rest of it together.
import _ast
import _json
import _signal as signal
import _thread
import faulthandler
import io
import itertools
import mmap
import os
import select
import sys
import time
from _queue import SimpleQueue

SELF = os.path.abspath(__file__)
CPU_CHECK_S = 1.0  # how often the jail's init adds up the CPU time of every process in the jail
TICKS = os.sysconf("SC_CLK_TCK")


class _Decoding:
    """What _json.make_scanner reads from a JSONDecoder: standard JSON, NaN and Infinity included."""

    strict = True
    object_hook = object_pairs_hook = None
    parse_float, parse_int = float, int
    parse_constant = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}.__getitem__


def _not_json(value):
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_scan = _json.make_scanner(_Decoding())
_encode = _json.make_encoder(None, _not_json, _json.encode_basestring, None, ": ", ", ", False, False, True)


def loads(text: str):
    return _scan(text, 0)[0]


def dumps(value) -> str:
    """Like json.dumps(value, ensure_ascii=False)."""
    return "".join(_encode(value, 0))


class CellSources:
    """Each cell's source for tracebacks and inspect, handed to linecache when something first imports it."""

    def __init__(self):
        self.entries = {}

    def add(self, name: str, code: str) -> None:
        self.entries[name] = entry = (len(code), None, code.splitlines(True), name)
        linecache = sys.modules.get("linecache")
        if linecache is not None:
            linecache.cache[name] = entry

    def find_spec(self, name, path=None, target=None):  # a meta path finder that only watches for linecache
        if name != "linecache":
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                spec.loader = _Seeding(spec.loader, self.entries)
                return spec
        return None


class _Seeding:
    """linecache's own loader, which then puts the cells' sources in its cache."""

    def __init__(self, loader, entries):
        self.loader, self.entries = loader, entries

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        self.loader.exec_module(module)
        module.cache.update(self.entries)


class _Event:
    """threading.Event's set and wait, on one lock."""

    def __init__(self):
        self.lock = _thread.allocate_lock()
        self.lock.acquire()

    def set(self):
        self.lock.release()

    def wait(self):
        self.lock.acquire()


class Capture(io.TextIOBase):
    """A text stream that keeps the first `cap` characters and counts all of them."""

    def __init__(self, name: str, cap: int):
        self.name, self.cap = name, cap
        self.reset()

    def reset(self) -> None:
        self.parts, self.kept, self.total = [], 0, 0

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        n = len(s)
        self.total += n
        room = self.cap - self.kept
        if room > 0:
            part = s if n <= room else s[:room]
            self.parts.append(part)
            self.kept += len(part)
        return n

    def text(self) -> str:
        return "".join(self.parts)

    def writable(self):
        return True

    def isatty(self):
        return False

    @property
    def encoding(self):
        return "utf-8"

    @property
    def buffer(self):
        return _Bytes(self)


class _Bytes(io.RawIOBase):
    """`sys.stdout.buffer`: bytes written are decoded into the text capture."""

    def __init__(self, text: Capture):
        self.text = text

    def writable(self):
        return True

    def write(self, b):
        self.text.write(bytes(b).decode("utf-8", "replace"))
        return len(b)


def _clean(obj):
    """Make a frame encodable as UTF-8 (lone surrogates become escapes)."""
    if isinstance(obj, str):
        return obj.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


class Server:
    """The REPL: the main thread runs cells, a reader thread routes host frames."""

    def __init__(self, rfd: int, wfd: int):
        self.rfd, self.wfd = rfd, wfd
        self.pid = os.getpid()
        self.rin = open(rfd, "rb", buffering=1 << 16, closefd=False)
        self.wlock = _thread.allocate_lock()
        self.sources = CellSources()
        sys.meta_path.insert(0, self.sources)
        self.cells = SimpleQueue()  # exec frames for the main thread
        self.pending: dict[int, list] = {}  # llm_batch id -> [event, reply frame]
        self.ids = itertools.count(1)
        self.running = False  # a cell's user code is on the main thread: interrupts may land
        self.critical = False  # the main thread is writing a frame: defer the interrupt
        self.deferred = False
        self.count = 0
        self.forked = False
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        # a forked child of user code must never speak the protocol
        self.forked = True
        for fd in (self.rfd, self.wfd):
            try:
                os.close(fd)
            except OSError:
                pass

    def send(self, frame: dict) -> None:
        try:
            data = dumps(frame).encode("utf-8")
        except UnicodeEncodeError:
            data = dumps(_clean(frame)).encode("utf-8")
        data += b"\n"
        main = _thread.get_ident() == self.main_ident
        if main:
            self.critical = True
        try:
            with self.wlock:
                view = memoryview(data)
                while view:
                    view = view[os.write(self.wfd, view) :]
        finally:
            if main:
                self.critical = False
        if main and self.deferred:
            self.deferred = False
            raise KeyboardInterrupt

    def _on_sigint(self, signum, frame) -> None:
        if not self.running:
            return
        if self.critical:
            self.deferred = True
            return
        raise KeyboardInterrupt

    def _read(self) -> None:
        """Reader thread: route host frames; the host closing the pipe ends the REPL."""
        code = 0
        try:
            for line in self.rin:
                self._route(loads(line.decode("utf-8")))
        except BaseException as exc:  # noqa: BLE001 - e.g. user code closed our fd: end loudly, not silently
            os.write(2, f"repl_server: frame reader failed: {exc!r}\n".encode())
            code = 70
        finally:
            os._exit(code)

    def _route(self, frame: dict) -> None:
        kind = frame.get("t")
        if kind == "exec":
            self.cells.put(frame)
        elif kind == "llm_batch_result":
            slot = self.pending.pop(frame.get("id"), None)
            if slot is not None:
                slot[1] = frame
                slot[0].set()
        elif kind == "interrupt" and self.running:
            signal.pthread_kill(self.main_ident, signal.SIGINT)

    def rlm_batch(self, prompts: list) -> list:
        """Ask the host to run one child RLM per prompt (its own REPL, the prompt as its `context`); returns each
        child's answer, in order."""
        return self.llm_batch(prompts, rlm=True)

    def llm_batch(self, prompts: list, rlm: bool = False) -> list:
        """Ask the host to run one sub-LLM call per prompt (with rlm=True: one child RLM); returns the responses
        in order."""
        if isinstance(prompts, (str, bytes)) or not hasattr(prompts, "__iter__"):
            raise TypeError("llm_batch(prompts) takes a list of strings")
        prompts = list(prompts)
        if len(prompts) > self.max_prompts:
            raise ValueError(f"llm_batch got {len(prompts):,} prompts; send at most {self.max_prompts:,} per call")
        prompts = [p if isinstance(p, str) else str(p) for p in prompts]
        if not prompts:
            return []
        total = sum(map(len, prompts))
        if total > self.max_chars:
            raise ValueError(
                f"llm_batch prompts add up to {total:,} characters; send at most {self.max_chars:,} per call"
            )
        if self.forked:
            raise RuntimeError("llm_batch only works in the REPL process, not in a forked child")
        slot = [_Event(), None]
        call_id = next(self.ids)
        self.pending[call_id] = slot
        try:
            self.send({"t": "llm_batch", "id": call_id, "prompts": prompts, "rlm": bool(rlm)})
            slot[0].wait()
        finally:
            self.pending.pop(call_id, None)
        reply = slot[1]
        if reply.get("error"):
            raise RuntimeError(reply["error"])
        return reply["responses"]

    def init(self) -> None:
        frame = loads((self.rin.readline() or b'{"t": "eof"}').decode("utf-8"))
        if frame.get("t") != "init":
            os._exit(2)
        if "context_fd" in frame:
            frame["context"] = read_context(frame["context_fd"], frame["context_bytes"], frame["context_json"])
        self.cap = int(frame["output_cap"])
        self.max_answer, self.max_prompts = int(frame["max_answer_chars"]), int(frame["max_batch_prompts"])
        self.max_chars = int(frame["max_batch_chars"])
        self.stdout, self.stderr = Capture("<stdout>", self.cap), Capture("<stderr>", self.cap)
        sys.stdout, sys.stderr = self.stdout, self.stderr
        self.answer = frame.get("answer") or {"content": "", "ready": False}
        self.ns = {
            "__name__": "__main__",
            "__builtins__": __builtins__,
            "context": frame.get("context"),
            "answer": self.answer,
            "llm_batch": self.llm_batch,
            "rlm_batch": self.rlm_batch,
        }
        self.main_ident = _thread.get_ident()
        signal.signal(signal.SIGINT, self._on_sigint)
        _thread.start_new_thread(self._read, ())
        self.send({"t": "ready"})

    def serve(self) -> None:
        while True:
            frame = self.cells.get()
            try:
                result = self.run_cell(frame.get("code", ""))
            except KeyboardInterrupt:  # a late interrupt landed in our own code
                result = {"t": "result", "n": self.count, "error": "KeyboardInterrupt"}
            self.running = False
            if self.forked or os.getpid() != self.pid:
                os._exit(0)  # a child forked by user code finished the cell: leave quietly
            result["id"] = frame.get("id")
            result.update(self._answer_state(result))
            self.send(result)

    def run_cell(self, code: str) -> dict:
        self.count += 1
        n = self.count
        name = f"<cell-{n}>"
        self.sources.add(name, code)
        self.stdout.reset()
        self.stderr.reset()
        sys.stdout, sys.stderr = self.stdout, self.stderr  # undo a previous cell's rebinding
        if signal.getsignal(signal.SIGINT) != self._on_sigint:
            signal.signal(signal.SIGINT, self._on_sigint)
        value, error, start = None, None, time.perf_counter()
        try:
            tree = compile(code, name, "exec", _ast.PyCF_ONLY_AST)
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], _ast.Expr) else None
            body = compile(tree, name, "exec")
            tail = compile(_ast.Expression(last.value), name, "eval") if last else None
            self.running = True
            try:
                exec(body, self.ns)
                if tail is not None:
                    value = eval(tail, self.ns)
            finally:
                self.running = False
        except BaseException as exc:  # noqa: BLE001 - the user's SystemExit and KeyboardInterrupt are results too
            error = exc
        self.running = False
        elapsed = time.perf_counter() - start
        out, out_chars = None, 0
        if error is None and value is not None and not code.rstrip().endswith(";"):
            self.ns["_"] = value
            try:
                text = f"Out[{n}]: {value!r}"
                out, out_chars = text[: self.cap], len(text)
            except BaseException as exc:  # noqa: BLE001 - a broken __repr__ is the user's error
                error = exc
        result = {
            "t": "result",
            "n": n,
            "elapsed_s": elapsed,
            "out": out,
            "out_chars": out_chars,
            "error": None,
            "traceback": None,
        }
        if error is not None:
            result["error"], result["traceback"] = self._describe(error)
        result.update(
            stdout=self.stdout.text(),
            stdout_chars=self.stdout.total,
            stderr=self.stderr.text(),
            stderr_chars=self.stderr.total,
        )
        return result

    def _describe(self, exc: BaseException) -> tuple[str, str]:
        import traceback  # only errors pay for it

        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == SELF:
            tb = tb.tb_next  # drop the server's own frames
        report = traceback.TracebackException(type(exc), exc, tb)
        report.stack = traceback.StackSummary.from_list([f for f in report.stack if f.filename != SELF])
        error = list(report.format_exception_only())[-1].strip()
        return error[: self.cap], "".join(report.format())[: self.cap]

    def _answer_state(self, result: dict) -> dict:
        """Report `answer` as a plain dict of a str and a bool, whatever user code put there; say what was fixed."""
        notes = []
        current = self.ns.get("answer")
        if type(current) is dict:
            self.answer = current
        elif isinstance(current, dict):  # a subclass may override get, keys, __iter__...: take its items as a dict does
            notes.append(
                f"answer must be a plain dict, not a {type(current).__name__}; a plain dict with its "
                "content and ready was put back"
            )
            self.answer = {"content": dict.get(current, "content", ""), "ready": dict.get(current, "ready", False)}
            self.ns["answer"] = self.answer
        else:
            notes.append(
                f"answer must stay a dict like {{'content': '...', 'ready': False}}, but it was rebound to a "
                f"value of type {type(current).__name__}; the previous dict was restored"
            )
            self.ns["answer"] = self.answer
        content, ready = dict.get(self.answer, "content", ""), dict.get(self.answer, "ready", False)
        try:
            content = str.__str__(content) if isinstance(content, str) else str.__str__(str(content))
        except BaseException as exc:  # noqa: BLE001 - a broken __str__ must not take the REPL down
            notes.append(f"answer['content'] could not be turned into text: {exc!r}")
            content = ""
        try:
            ready = bool(ready)
        except BaseException as exc:  # noqa: BLE001 - nor a broken __bool__
            notes.append(f"answer['ready'] could not be turned into True or False: {exc!r}")
            ready = False
        if len(content) > self.max_answer:
            notes.append(
                f"answer['content'] had {len(content):,} characters and was cut to the first "
                f"{self.max_answer:,}, the most an answer may hold"
            )
            content = self.answer["content"] = content[: self.max_answer]
        if notes:
            result["error"] = "; ".join(([result["error"]] if result.get("error") else []) + notes)
        return {"answer": {"content": content, "ready": ready}}


def read_context(fd: int, size: int, is_json: bool):
    """The context from the host's sealed memfd, decoded straight from a shared mapping: one copy, the str."""
    try:
        if not size:
            text = ""
        else:
            with mmap.mmap(fd, size, prot=mmap.PROT_READ) as view:
                text = str(view, "utf-8", "surrogatepass")
    finally:
        os.close(fd)
    return loads(text) if is_json else text


def jail_cpu_seconds() -> float:
    """CPU time used by every process of the jail, live, dead and reaped, threads included (seen from its pid 1)."""
    own = os.times()
    total = own.user + own.system + own.children_user + own.children_system
    for name in os.listdir("/proc"):
        if name.isdigit() and name != "1":
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue  # it ended meanwhile: its time is now in its reaper's children times
            total += sum(int(v) for v in fields[11:15]) / TICKS  # utime, stime, cutime, cstime
    return total


def reap(server: int, wfd: int, cpu_budget: float) -> None:
    """Pid 1 of the jail: reap orphans, end the jail past its CPU budget, report how the server ended, leave."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        waits = [os.pidfd_open(server)]  # the server's exit wakes the select below; SIGCHLD is not ours to catch
    except OSError:
        waits = []  # a kernel before 5.3: notice it on the next check
    frame = None
    while frame is None:
        select.select(waits, [], [], CPU_CHECK_S)
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == 0:
                break
            if pid == server:
                code = os.waitstatus_to_exitcode(status)
                frame = {"t": "exit", "signal": -code} if code < 0 else {"t": "exit", "code": code}
        used = jail_cpu_seconds()
        if frame is None and used > cpu_budget:
            frame = {"t": "exit", "signal": signal.SIGKILL, "cpu_budget": True}
    frame["cpu_s"] = round(used, 3)
    code = frame.get("code", 128 + frame.get("signal", 0))
    try:
        os.write(wfd, b"\n" + dumps(frame).encode() + b"\n")  # newline ends any half-written frame
    finally:
        os._exit(code)  # the kernel kills whatever is left in the jail when its pid 1 ends


def main() -> None:
    rfd, wfd, cpu_budget = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    os.set_inheritable(rfd, False)
    os.set_inheritable(wfd, False)
    pid = os.fork() if os.getpid() == 1 else 0
    if pid:
        os.close(rfd)
        reap(pid, wfd, cpu_budget)
    faulthandler.enable(file=sys.__stderr__, all_threads=False)
    server = Server(rfd, wfd)
    server.init()
    server.serve()


if __name__ == "__main__":
    main()
