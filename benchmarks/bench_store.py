"""Events per second through EventWriter, beside raw sqlite3 executemany of the same rows."""

from __future__ import annotations

import random
import sqlite3
import string
import sys
import tempfile
import time
from pathlib import Path

from rlm_tui.events import (
    AnswerUpdated,
    CellFinished,
    CellStarted,
    Event,
    ModelCallFinished,
    ModelCallStarted,
    RolloutFinished,
    RolloutQueued,
    RolloutStarted,
    RunFinished,
    RunStarted,
    SubBatchFinished,
    SubBatchStarted,
    SubCallFinished,
    SubCallStarted,
    ToolCalled,
)
from rlm_tui.store import EventWriter, open_db
from rlm_tui.store.writer import _INSERT_EVENT, _event_row
from table import row  # noqa: E402

TARGET = 20_000  # events per second
REPEATS = 3
rng = random.Random(0)


def text(n: int) -> str:
    return "".join(rng.choices(string.ascii_letters + "     \n", k=n))


def rollout_events(run_id: str, idx: int, turns: int = 3, calls: int = 24) -> list[Event]:
    """One rollout: a few turns, each a cell whose llm_batch fans out to many sub-calls."""
    ro = f"{run_id}-ro{idx}"
    out: list[Event] = [
        RolloutQueued(run_id=run_id, rollout_id=ro, index=idx, example_id=f"ex{idx}", info={"level": 2}, target="42"),
        RolloutStarted(
            run_id=run_id, rollout_id=ro, system_prompt=text(800), user_prompt=text(300), context_chars=50_000
        ),
    ]
    for turn in range(turns):
        call = ModelCallStarted(run_id=run_id, rollout_id=ro, role="main", model="m", turn=turn, messages=2 + 2 * turn)
        out += [
            call,
            ModelCallFinished(
                run_id=run_id,
                rollout_id=ro,
                parent_id=call.id,
                role="main",
                text=text(600),
                prompt_tokens=3000,
                completion_tokens=200,
                latency_s=1.2,
            ),
        ]
        cell = CellStarted(run_id=run_id, rollout_id=ro, turn=turn, code=text(300))
        batch = SubBatchStarted(run_id=run_id, rollout_id=ro, parent_id=cell.id, batch=turn, size=calls)
        out += [cell, batch]
        for i in range(calls):
            sub = SubCallStarted(
                run_id=run_id, rollout_id=ro, parent_id=batch.id, batch=turn, index=i, prompt=text(200)
            )
            out.append(sub)
            if i % 6 == 0:
                out.append(
                    ToolCalled(
                        run_id=run_id,
                        rollout_id=ro,
                        parent_id=sub.id,
                        name="search",
                        arguments={"q": text(40)},
                        result=text(200),
                    )
                )
            out.append(
                SubCallFinished(
                    run_id=run_id,
                    rollout_id=ro,
                    parent_id=sub.id,
                    batch=turn,
                    index=i,
                    response=text(200),
                    turns=1,
                    prompt_tokens=180,
                    completion_tokens=60,
                )
            )
        out += [
            SubBatchFinished(run_id=run_id, rollout_id=ro, batch=turn, elapsed_s=3.0),
            CellFinished(
                run_id=run_id,
                rollout_id=ro,
                parent_id=cell.id,
                turn=turn,
                output=text(500),
                shown=text(500),
                output_chars=500,
                truncated=False,
                elapsed_s=3.1,
                answer={"content": "", "ready": False},
            ),
        ]
    out += [
        AnswerUpdated(run_id=run_id, rollout_id=ro, content="42", ready=True),
        RolloutFinished(
            run_id=run_id,
            rollout_id=ro,
            status="done",
            stop_reason="answer_ready",
            answer={"content": "42", "ready": True},
            reward=1.0,
            metrics={"turns": turns},
        ),
    ]
    return out


def make_events(run_id: str, rollouts: int) -> list[Event]:
    events: list[Event] = [
        RunStarted(run_id=run_id, env="bench", mode="rlm", model="m", sub_model="s", num_rollouts=rollouts)
    ]
    for idx in range(rollouts):
        events += rollout_events(run_id, idx)
    return events + [RunFinished(run_id=run_id, status="done")]


def through_writer(path: Path, events: list[Event]) -> tuple[float, float]:
    """Seconds from the first append until flush returns, and seconds spent in append()."""
    writer = EventWriter(path)
    writer.start()
    t0 = time.perf_counter()
    for event in events:
        writer.append(event)
    t1 = time.perf_counter()
    writer.flush()
    t2 = time.perf_counter()
    writer.close()
    return t2 - t0, t1 - t0


def floor(path: Path, rows: list[tuple]) -> float:
    """Seconds for one raw executemany of prepared rows into the same schema, in one transaction."""
    open_db(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = NORMAL")
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(_INSERT_EVENT, rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


def main() -> int:
    rollouts = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    best_writer = best_floor = best_append = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(REPEATS):
            # fresh ids for each repeat, since ids are unique per database
            events = make_events(f"bench{i}", rollouts)
            rows = [_event_row(e) for e in events]
            writer_s, append_s = through_writer(Path(tmp) / f"writer{i}.db", events)
            best_writer, best_append = min(best_writer, writer_s), min(best_append, append_s)
            best_floor = min(best_floor, floor(Path(tmp) / f"floor{i}.db", rows))
    n = len(events)
    sub = sum(e.kind in ("sub_call_started", "sub_call_finished") for e in events)
    print(f"{n:,} events ({sub / n:.0%} sub_call_started/finished, ~200-char prompts and responses), best of {REPEATS}")
    row(
        "store: time per event through EventWriter",
        best_writer / n * 1e6,
        "us",
        floor=best_floor / n * 1e6,
        floor_name="raw executemany, one transaction",
        max_value=1e6 / TARGET,
        note=f"append() costs the caller {best_append / n * 1e6:.2f} us/event",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
