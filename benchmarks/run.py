"""Run every benchmark, even past one that misses or fails: `python benchmarks/run.py [--out FILE] [NAME...]`.

Prints one table of figure, floor and ratio, and writes it as JSON (default benchmarks/results/<time>.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from table import ROWS_FILE, format_row

HERE = Path(__file__).resolve().parent
SCRIPTS = (
    "bench_startup.py",
    "bench_sandbox.py",
    "bench_engine.py",
    "bench_client.py",
    "bench_store.py",
    "bench_tui.py",
    "bench_mission.py",
    "bench_quit.py",
    "bench_ray.py",
    "bench_stress.py",
    "bench_environments.py",
    "bench_report.py",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="only these scripts (e.g. engine tui)")
    parser.add_argument("--out", type=Path, help="where to write the JSON table")
    args = parser.parse_args()
    scripts = [s for s in SCRIPTS if not args.names or any(n in s for n in args.names)]
    rows, failed = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for script in scripts:
            print(f"== {script}", flush=True)
            rows_file = Path(tmp) / f"{script}.jsonl"
            env = {**os.environ, ROWS_FILE: str(rows_file)}
            code = subprocess.run([sys.executable, str(HERE / script)], env=env).returncode
            got = [json.loads(line) for line in rows_file.read_text().splitlines()] if rows_file.exists() else []
            rows += [{**r, "script": script} for r in got]
            if code != 0:
                failed.append(f"{script} exited {code}")
    print("\n== every figure beside its floor")
    for r in rows:
        print(format_row(r))
    for f in failed:
        print(f"FAILED: {f}")
    out = args.out or HERE / "results" / time.strftime("%Y%m%d-%H%M%S.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg()}
    out.write_text(json.dumps({"machine": machine, "rows": rows, "failed": failed}, indent=1) + "\n")
    print(f"written to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
