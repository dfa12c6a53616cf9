"""Math answers graded as the study grades them: the reply's last \\boxed{...} against the gold, by math-verify, in
warm worker processes that a time limit can kill (sympy cannot be stopped inside a thread)."""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlm_tui.env import Score

TIMEOUT = 5.0  # seconds for one answer, as the study's MathRubric
START_TIMEOUT = 60.0  # seconds for a new worker to import math-verify: a bound on a hang, not a measure
WORKERS = max(1, min(4, os.cpu_count() or 1))  # answers graded at once; the others wait for a free worker
MEMORY = 2 << 30  # bytes of address space for one worker
MAX_CHARS = 20_000  # an answer or gold longer than this is not parsed
MAX_REPLY = 4096  # bytes of one verdict line
WORKER = Path(__file__).with_name("verify_worker.py")


@dataclass(frozen=True)
class Verdict:
    correct: bool
    error: str = ""  # why the answer could not be graded, in one line; empty when it was


# --- the answer, as the study extracts it -------------------------------------------------------


def boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} whose braces close; None when there is none."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth = 0
    for i in range(start + len("\\boxed"), len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + len("\\boxed{") : i]
    return None


def extract_answer(text: str) -> str:
    """What the study grades: nothing while a <think> is open, else the last box after any </think>, else that text."""
    if "<think>" in text and "</think>" not in text:
        return ""
    text = text.split("</think>")[-1].strip()
    found = boxed(text)
    return text if found is None else found


def to_score(response: str, verdict: Verdict) -> Score:
    metrics: dict[str, Any] = {"boxed": float(boxed(response) is not None)}
    if verdict.error:
        metrics["grade_error"] = verdict.error  # why the answer scored 0 without being compared, in one line
    return Score(reward=float(verdict.correct), metrics=metrics)


# --- the workers --------------------------------------------------------------------------------


class WorkerError(Exception):
    """A worker that died, hung or answered out of protocol: it is killed and replaced."""


class Worker:
    """One warm math-verify process; used by one thread at a time."""

    def __init__(self) -> None:
        # -P keeps the worker's own folder off sys.path; a session of its own keeps a terminal's ^C off it
        self.proc = subprocess.Popen(
            [sys.executable, "-P", str(WORKER), str(MEMORY)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.ready = False
        self._buffer = b""

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def check(self, answer: str, gold: str, timeout: float) -> Verdict:
        try:
            if not self.ready:
                hello = self._read(START_TIMEOUT, f"the grading worker did not start in {START_TIMEOUT:g} s")
                if hello != {"ready": True}:
                    raise WorkerError("the grading worker answered out of protocol")
                self.ready = True
            job = json.dumps({"answer": answer, "gold": gold, "limit": timeout}) + "\n"
            assert self.proc.stdin is not None
            self.proc.stdin.write(job.encode())
            self.proc.stdin.flush()
            reply = self._read(timeout, f"grading took longer than {timeout:g} s")
        except WorkerError as exc:
            self.kill()
            return Verdict(False, str(exc))
        except OSError as exc:  # a worker gone between two answers
            self.kill()
            return Verdict(False, f"the grading worker failed: {type(exc).__name__}: {exc}")
        correct, error = reply.get("correct"), reply.get("error", "")
        if not isinstance(correct, bool) or not isinstance(error, str):
            self.kill()
            return Verdict(False, "the grading worker answered out of protocol")
        return Verdict(correct, " ".join(f"math-verify failed: {error}".split())[:300] if error else "")

    def _read(self, timeout: float, late: str) -> dict:
        """The worker's next line as a JSON object, within `timeout` seconds; else WorkerError(late)."""
        assert self.proc.stdout is not None
        fd, deadline = self.proc.stdout.fileno(), time.monotonic() + timeout
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(left * 1000):
                raise WorkerError(late)
            chunk = os.read(fd, MAX_REPLY)
            if not chunk:
                code = self.proc.wait()
                if code == -signal.SIGALRM:  # the worker's own backstop fired: this host was later still
                    raise WorkerError(late)
                raise WorkerError(f"the grading worker exited with code {code}")
            self._buffer += chunk
            if len(self._buffer) > MAX_REPLY:
                raise WorkerError("the grading worker answered out of protocol")
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            raise WorkerError("the grading worker answered out of protocol")
        return reply

    def kill(self) -> None:
        if self.alive:
            self.proc.kill()  # SIGKILL: a runaway power is C code that no gentler signal reaches
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


class Grader:
    """Up to `workers` warm workers, each started when an answer finds none idle; a killed one is not reused."""

    def __init__(self, workers: int = WORKERS, timeout: float = TIMEOUT) -> None:
        self.timeout = timeout
        self._slots = threading.BoundedSemaphore(workers)
        self._idle: queue.LifoQueue[Worker] = queue.LifoQueue()  # the warmest first
        self._workers: set[Worker] = set()
        self._lock = threading.Lock()
        self._threads = ThreadPoolExecutor(workers, thread_name_prefix="math-grade")
        self._closed = False

    def check(self, response: str, gold: str) -> Verdict:
        """Whether the response's answer equals the gold; safe from any thread; waits for a free worker."""
        answer, gold = extract_answer(response), gold.strip()
        if not answer:
            return Verdict(False, "no answer")
        too_long = next((n for n, t in (("answer", answer), ("gold", gold)) if len(t) > MAX_CHARS), None)
        if too_long:
            return Verdict(False, f"the {too_long} has more than {MAX_CHARS:,} characters")
        with self._slots:
            worker = self._take()
            try:
                return worker.check(answer, gold, self.timeout)
            finally:
                self._give_back(worker)

    async def check_async(self, response: str, gold: str) -> Verdict:
        """`check` on the grader's own threads: the event loop and the default executor never wait on sympy."""
        return await asyncio.get_running_loop().run_in_executor(self._threads, self.check, response, gold)

    def _take(self) -> Worker:
        try:
            worker = self._idle.get_nowait()
        except queue.Empty:
            return self._start()
        if worker.alive:
            return worker
        self._drop(worker)  # it died idle (the memory limit, a signal): a fresh one instead
        return self._start()

    def _start(self) -> Worker:
        with self._lock:
            if self._closed:
                raise RuntimeError("the grader is closed")
            worker = Worker()
            self._workers.add(worker)
            return worker

    def _give_back(self, worker: Worker) -> None:
        if worker.alive:
            self._idle.put(worker)
        else:
            self._drop(worker)  # the next answer starts its replacement

    def _drop(self, worker: Worker) -> None:
        worker.kill()
        with self._lock:
            self._workers.discard(worker)

    def close(self) -> None:
        with self._lock:
            self._closed, workers = True, list(self._workers)
            self._workers.clear()
        for worker in workers:
            worker.kill()
        self._threads.shutdown(wait=False)


_shared: Grader | None = None
_shared_lock = threading.Lock()


def grader() -> Grader:
    """The process's one grader, started on first use and closed at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Grader()
            atexit.register(_shared.close)
        return _shared
