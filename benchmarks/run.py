"""Run every benchmark: `python benchmarks/run.py`."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

for script in (
    "bench_sandbox.py",
    "bench_engine.py",
    "bench_store.py",
    "bench_tui.py",
    "bench_stress.py",
    "bench_environments.py",
):
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script)], check=True)
