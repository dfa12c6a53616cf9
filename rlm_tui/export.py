"""One JSON object per rollout, folded from the event log (format in docs/export.md)."""

from __future__ import annotations

import json
from typing import Any

from rlm_tui.state import Cell, RolloutState, RunState, Turn


def shown_status(status: str, run_interrupted: bool) -> str:
    """A rollout's status as shown: one still queued or running in a run whose process is gone is interrupted."""
    return "interrupted" if run_interrupted and status in ("queued", "running") else status


def rollout_record(run: RunState, r: RolloutState, run_interrupted: bool = False) -> dict[str, Any]:
    metrics = dict(r.final_metrics) if r.final_metrics else r.metrics()
    return {
        "run_id": run.id,
        "rollout_id": r.id,
        "env": run.env,
        "mode": run.mode,
        "model": run.model,
        "sub_model": run.sub_model,
        "example_id": r.example_id,
        "info": r.info,
        "target": r.target,
        "status": shown_status(r.status, run_interrupted),
        "stop_reason": r.stop_reason,
        "error": r.error,
        "reward": r.reward,
        "answer": r.answer,
        "turns": [_turn(turn, cell) for turn in r.turns for cell in (turn.cells or [None])],
        "sub_llm_calls": [
            {
                "batch": call.batch,
                "index": call.index,
                "prompt": call.prompt,
                "response": call.response,
                "prompt_tokens": call.prompt_tokens,
                "completion_tokens": call.completion_tokens,
                "tool_calls": [{"name": t.name, "arguments": t.arguments, "result": t.result} for t in call.tools],
            }
            for batch in r.batches
            for call in sorted(batch.calls, key=lambda c: c.index)
        ],
        "metrics": metrics,
    }


def _turn(turn: Turn, cell: Cell | None) -> dict[str, Any]:
    """One cell of a turn; a turn that ran no cell (a final text reply) has no code."""
    return {
        "index": turn.index,
        "text": turn.text,
        "code": cell.code if cell else None,
        "output": cell.shown if cell else None,
        "output_chars": cell.output_chars if cell else 0,
        "truncated": cell.truncated if cell else False,
        "elapsed_s": cell.elapsed_s if cell else None,
        "error": (cell.error if cell else turn.error),
    }


def run_records(run: RunState, run_status: str | None = None) -> list[dict[str, Any]]:
    """`run_status`: the run's status as the store shows it (`interrupted` when its process is gone)."""
    interrupted = run_status == "interrupted"
    return [rollout_record(run, r, interrupted) for r in sorted(run.rollouts.values(), key=lambda r: r.index)]


CSV_FIRST = [
    "run_id",
    "rollout_id",
    "env",
    "mode",
    "model",
    "sub_model",
    "example_id",
    "status",
    "stop_reason",
    "reward",
    "answer_ready",
    "error",
]


def csv_table(records: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """One flat row per rollout: the fixed fields, then `info.*` and `metrics.*` columns."""
    rows, extra = [], {}
    for record in records:
        row = {k: record.get(k) for k in CSV_FIRST if k != "answer_ready"}
        row["answer_ready"] = record["answer"].get("ready")
        for prefix in ("info", "metrics"):
            for key, value in (record.get(prefix) or {}).items():
                column = f"{prefix}.{key}"
                extra[column] = None
                row[column] = json.dumps(value) if isinstance(value, (dict, list)) else value
        rows.append(row)
    return CSV_FIRST + sorted(extra, key=lambda c: (not c.startswith("info."), c)), rows
