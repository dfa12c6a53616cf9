"""One JSON object per rollout, folded from the event log, run by run (format in docs/export.md)."""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from rlm_tui.state import Cell, RolloutState, RunState, Turn, fold
from rlm_tui.store import Database, get_run, read_events

MAX_ENV_ARGS = 64  # more knobs than any environment has: a damaged record, not a setting


class ExportError(Exception):
    """A run that cannot be exported as stored; the message is one line and names the run."""


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
                "depth": call.depth,  # 1: the root model's; 2: a child RLM's
                "rlm": call.rlm,  # a child RLM (rlm_batch): its turns are in the rollout's events
                "child_turns": len(call.child_turns),
            }
            for batch in r.batches
            for call in sorted(batch.calls, key=lambda c: c.index)
        ],
        "metrics": metrics,
        "forked_from": _lineage(r),
    }


def _lineage(r: RolloutState) -> dict[str, Any] | None:
    f = r.forked_from
    return None if f is None else {"rollout_id": f.parent_rollout_id, "run_id": f.parent_run_id, "turn": f.turn}


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
        "proposed": cell.proposed if cell else None,  # the model's code, when the operator edited it first
        "error": (cell.error if cell else turn.error),
    }


def run_records(run: RunState, run_status: str | None = None) -> list[dict[str, Any]]:
    """`run_status`: the run's status as the store shows it (`interrupted` when its process is gone)."""
    interrupted = run_status == "interrupted"
    settings = cell_settings(run.id, run.config)
    return [
        {**rollout_record(run, r, interrupted), **settings}
        for r in sorted(run.rollouts.values(), key=lambda r: r.index)
    ]


def stored_records(db: Database, run_ids: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The records of these runs, one run folded at a time, so that a grid of any size is never in memory whole."""
    for run_id in run_ids:
        try:
            row = get_run(db, run_id)
            events = [e for _, e in read_events(db, run_id=run_id)]
            run = fold(events, run_id)
            records = run_records(run, row["status"] if row else None)
            add_seed_metrics(run, records, generated_until(events))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # a hand-edited or damaged row
            raise ExportError(
                f"run {run_id} cannot be exported, its rows are damaged: {type(exc).__name__}: {exc}"
            ) from None
        for record in records:
            for nested in ("info", "metrics", "answer"):
                if not isinstance(record[nested], dict):
                    raise ExportError(f"rollout {record['rollout_id']}'s {nested} is damaged: {_short(record[nested])}")
        yield from records


def generated_until(events: list[Any]) -> dict[str, float]:
    """Per rollout, the time of its last event before it finished: where generation ended and scoring began."""
    until: dict[str, float] = {}
    for e in events:
        if e.rollout_id is not None and e.kind != "rollout_finished":
            until[e.rollout_id] = e.ts
    return until


def add_seed_metrics(run: RunState, records: list[dict[str, Any]], until: dict[str, float]) -> None:
    """The metric names the study's own scripts read (verifiers' timing and token totals), where a record lacks them:
    an imported log's own numbers stay."""
    for record in records:
        r = run.rollouts[record["rollout_id"]]
        metrics = record["metrics"]
        if not isinstance(metrics, dict):
            continue
        start, end = r.started, r.finished
        generated = until.get(r.id, end)
        seed = {
            "turns": len(r.turns),
            "prompt_tokens": r.main_prompt_tokens,
            "completion_tokens": r.main_completion_tokens,
            "generation_ms": (generated - start) * 1000 if start is not None and generated is not None else 0.0,
            "scoring_ms": max(0.0, (end - generated) * 1000) if end is not None and generated is not None else 0.0,
            "total_ms": (end - start) * 1000 if start is not None and end is not None else 0.0,
        }
        for name, value in seed.items():
            metrics.setdefault(name, value)


def cell_settings(run_id: str, config: Any) -> dict[str, Any]:
    """The grid, the cell and the swept settings of a run, as flat fields a groupby can take with no join."""
    rollout = config.get("rollout") if isinstance(config, dict) else None
    if not isinstance(config, dict) or not isinstance(rollout, (dict, type(None))):
        raise ExportError(f"run {run_id}'s config is damaged: {_short(config)}")
    grid, cell = config.get("grid"), config.get("cell")
    if grid is not None and (not isinstance(grid, str) or not isinstance(cell, dict)):
        raise ExportError(f"run {run_id}'s grid record is damaged: grid {_short(grid)}, cell {_short(cell)}")
    place = cell if grid is not None else {"env_args": config.get("env_args"), **(rollout or {})}
    env_args, timeout = place.get("env_args") or {}, place.get("timeout", 120.0)
    if (
        not isinstance(env_args, dict)
        or len(env_args) > MAX_ENV_ARGS
        or not all(isinstance(v, (str, int, float, bool)) for v in env_args.values())
    ):
        raise ExportError(f"run {run_id}'s environment arguments are damaged: {_short(env_args)}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout):
        raise ExportError(f"run {run_id}'s cell timeout is damaged: {_short(timeout)}")
    label = None
    if grid is not None:
        env, mode = cell.get("env"), cell.get("mode")
        if not isinstance(env, str) or not isinstance(mode, str):
            raise ExportError(f"run {run_id}'s grid cell is damaged: {_short(cell)}")
        label = " ".join([env, mode, *(f"{k}={v}" for k, v in sorted(env_args.items())), f"timeout={timeout:g}s"])
    return {
        "grid": grid,
        "cell": label,
        "timeout": float(timeout),
        **{f"env_args.{k}": v for k, v in sorted(env_args.items())},
    }


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


CSV_FIRST = [
    "run_id",
    "grid",
    "cell",
    "rollout_id",
    "env",
    "mode",
    "timeout",
    "model",
    "sub_model",
    "example_id",
    "status",
    "stop_reason",
    "reward",
    "answer_ready",
    "error",
    "forked_from",  # the parent rollout of a fork, and the turn it left from
    "forked_at_turn",
]
_FLAT = ("env_args.", "info.", "metrics.")  # the prefixed columns, in this order after the fixed ones


def csv_row(record: dict[str, Any]) -> dict[str, Any]:
    """One flat row: the fixed fields, the swept `env_args.*`, then `info.*` and `metrics.*` columns."""
    row = {k: record.get(k) for k in CSV_FIRST if k not in ("answer_ready", "forked_from", "forked_at_turn")}
    row["answer_ready"] = record["answer"].get("ready")
    lineage = record.get("forked_from") or {}
    row["forked_from"], row["forked_at_turn"] = lineage.get("rollout_id"), lineage.get("turn")
    row.update((k, v) for k, v in record.items() if k.startswith("env_args."))
    for prefix in ("info", "metrics"):
        for key, value in record[prefix].items():
            row[f"{prefix}.{key}"] = json.dumps(value) if isinstance(value, (dict, list)) else value
    return row


@contextmanager
def csv_table(records: Iterable[dict[str, Any]]) -> Iterator[tuple[list[str], Iterator[dict[str, Any]]]]:
    """The header and the rows; rows wait in a temporary file, since the header needs every row's columns first."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
        extra: dict[str, None] = {}
        for record in records:
            row = csv_row(record)
            extra.update(dict.fromkeys(k for k in row if k.startswith(_FLAT)))
            spool.write(json.dumps(row, default=str) + "\n")
        spool.seek(0)
        order = sorted(extra, key=lambda c: (next(i for i, p in enumerate(_FLAT) if c.startswith(p)), c))
        yield CSV_FIRST + order, (json.loads(line) for line in spool)
