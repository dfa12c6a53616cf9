"""`rlm-tui report --out` on a 1,000-rollout grid, beside matplotlib writing as many empty figures."""

from __future__ import annotations

import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rlm_tui import events as ev
from rlm_tui.store import EventWriter
from table import row

ROLLOUTS = 1_000
TARGET = 5.0  # seconds for the tables and every figure
REPEATS = 3
# (env, env_args, timeout) per cell; every cell runs in the three modes
CELLS = [
    ("verbatim-copy", {"content_type": "all"}, 120.0),
    ("oolong", {"subset": "synth"}, 120.0),
    ("oolong", {"subset": "real"}, 120.0),
    ("math-python", {"tips": "default"}, 30.0),
    ("math-python", {"tips": "default"}, 120.0),
    ("math-python", {"tips": "sub_llms"}, 30.0),
    ("math-python", {"tips": "sub_llms"}, 120.0),
    ("deepdive", {}, 120.0),
]
MODES = ("llm", "rlm", "rlm-tips")


def info(env: str, args: dict, i: int, rng: random.Random) -> dict:
    if env == "verbatim-copy":
        return {
            "content_type": ["json", "csv", "code", "text"][i % 4],
            "target_length": 500,
            "mean_fragment_length": 20,
        }
    if env == "oolong":
        return {"subset": args["subset"], "context_len": rng.choice([4096, 8192, 16384]), "question_type": f"q{i % 5}"}
    if env == "math-python":
        return {"topic": ["algebra", "calculus"][i % 2], "difficulty": "medium", "source": "offline"}
    return {"question_type": ["person", "date", "number"][i % 3], "hops": 2}


def build(path: Path) -> int:
    """A grid of finished rollouts written straight through the store's writer."""
    rng = random.Random(0)
    per_cell = ROLLOUTS // (len(CELLS) * len(MODES)) + 1
    writer = EventWriter(path)
    writer.start()
    count = 0
    for c, (env, args, timeout) in enumerate(CELLS):
        for mode in MODES:
            run_id = f"run-{c}-{mode}"
            cell = {"env": env, "mode": mode, "env_args": args, "timeout": timeout}
            config = {"grid": "bench", "cell": cell, "data_note": ""}
            writer.append(
                ev.RunStarted(
                    run_id=run_id,
                    env=env,
                    mode=mode,
                    model="scripted",
                    sub_model="scripted",
                    num_rollouts=per_cell,
                    config=config,
                )
            )
            for i in range(per_cell):
                rid = f"{run_id}-{i}"
                writer.append(
                    ev.RolloutQueued(
                        run_id=run_id, rollout_id=rid, index=i, example_id=f"ex{i}", info=info(env, args, i, rng)
                    )
                )
                sub = mode != "llm"
                metrics = {
                    "main_rlm_prompt_tokens": rng.randrange(1000, 9000),
                    "main_rlm_completion_tokens": rng.randrange(50, 500),
                    "sub_llm_prompt_tokens": rng.randrange(0, 5000) if sub else 0,
                    "sub_llm_completion_tokens": rng.randrange(0, 500) if sub else 0,
                    "sub_llm_call_count": rng.randrange(0, 12) if sub else 0,
                    "wall_time_seconds": rng.uniform(2, 30),
                    "model_time_seconds": rng.uniform(1, 2),
                    "repl_total_time_seconds": rng.uniform(0, 1),
                    "search_query_redundancy": rng.random(),
                }
                writer.append(
                    ev.RolloutFinished(
                        run_id=run_id,
                        rollout_id=rid,
                        status="done",
                        stop_reason="answer_ready",
                        answer={"content": "x", "ready": True},
                        reward=float(rng.random() < 0.6),
                        metrics=metrics,
                    )
                )
                count += 1
            writer.append(ev.RunFinished(run_id=run_id, status="done"))
    writer.close()
    return count


FLOOR = """
import sys, matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from pathlib import Path
out = Path(sys.argv[1])
for i in range(int(sys.argv[2])):
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar([0], [1])
    for suffix in ("png", "svg"):
        fig.savefig(out / f"empty{i}.{suffix}", dpi=120)
    plt.close(fig)
"""


def timed(args: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, its workers included) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{args[:4]} failed: {proc.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "grid.db"
        count = build(db)
        out = Path(tmp) / "figures"
        report = [sys.executable, "-m", "rlm_tui.cli", "report", "bench", "--db", str(db), "--out", str(out)]
        runs = [timed(report) for _ in range(REPEATS)]
        figures = len(list(out.glob("*.png")))
        empty = Path(tmp) / "empty"
        empty.mkdir()
        floors = [timed([sys.executable, "-c", FLOOR, str(empty), str(figures)]) for _ in range(REPEATS)]
        name = f"matplotlib: {figures} one-bar figures, one process"
        what = f"report --out on {count:,} rollouts ({figures} figures, PNG+SVG)"
        wall, cpu = (statistics.median(x) for x in zip(*runs))
        floor_wall, floor_cpu = (statistics.median(x) for x in zip(*floors))
        row(f"{what}, wall", wall, "s", floor=floor_wall, floor_name=name, max_value=TARGET)
        row(f"{what}, CPU", cpu, "s", floor=floor_cpu, floor_name=name, note="user + system, workers included")


if __name__ == "__main__":
    main()
