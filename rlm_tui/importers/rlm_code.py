"""rlm-code's trajectory JSONL: one event per line (event_type, timestamp, run_id, iteration, depth, data, ...)."""

from __future__ import annotations

from typing import Any

from rlm_tui.events import new_id

from .build import Clock, ImportedRun, RolloutBuilder, SubCall, as_text, run_events
from .lines import Line, number

NOTE = "turns without logged token counts are estimated with tiktoken; logged replies may be cut at 1,000 characters"
DROPPED = {"context_load", "context_update", "memory_compact", "iteration_start", "iteration_end"}


def convert(lines: list[Line], path: str, sha256: str) -> ImportedRun:
    run_id = new_id()
    by_run: dict[str, list[Line]] = {}
    for line in lines:
        line.get("event_type", str, required=True)
        number(line, line.data.get("timestamp"), "timestamp")
        by_run.setdefault(line.get("run_id", str, ""), []).append(line)
    model = (
        next((m for line in lines if isinstance(m := (line.data.get("data") or {}).get("model"), str)), "unknown")
        if all(isinstance(line.data.get("data", {}), dict) for line in lines)
        else "unknown"
    )
    clock = Clock(min(float(line.data.get("timestamp") or 0.0) for line in lines))
    builders = [_rollout(run_id, i, name, group, model, clock) for i, (name, group) in enumerate(by_run.items())]
    return ImportedRun(
        run_id,
        run_events(
            run_id=run_id,
            fmt="rlm-code",
            path=path,
            sha256=sha256,
            mode="rlm",
            model=model,
            sub_model=model,
            rollouts=builders,
            started=clock.now,
            note=NOTE,
        ),
        path,
        len(builders),
    )


def _rollout(run_id: str, index: int, name: str, group: list[Line], model: str, clock: Clock) -> RolloutBuilder:
    r = RolloutBuilder(run_id=run_id, rollout_id=f"{run_id}-r{index:03d}", clock=clock)
    r.queued(index, name or f"run-{index}", {"source_run_id": name})
    started = False
    iteration: Any = object()
    pending: list[SubCall] = []
    status, stop, error = "done", "max_turns", None
    asked: int | None = None  # an llm_request's tokens_in, for the llm_response that follows it
    for line in group:
        kind, data = line.data["event_type"], line.get("data", dict, {})
        ts = float(line.data.get("timestamp") or 0.0) or None
        tokens_in, tokens_out = line.get("tokens_in", int), line.get("tokens_out", int)
        duration = number(line, line.data.get("duration_ms"), "duration_ms") / 1000
        depth = line.get("depth", int, 0)
        if not started:
            task = as_text(data.get("task")) if kind == "run_start" else ""
            r.started("", task, ts, int(number(line, data.get("context_length"), "data.context_length")))
            started = True
        if kind == "llm_request" and depth == 0:
            asked = tokens_in
            continue
        if depth > 0 or kind in DROPPED or kind == "run_start":
            continue  # a child agent's own events are summed up in its child_result
        if kind in ("iteration_reasoning", "llm_response") and line.data.get("iteration") != iteration:
            r.sub_batch(pending)
            pending = []
            iteration = line.data.get("iteration")
            text = as_text(data.get("reasoning") if kind == "iteration_reasoning" else data.get("response"))
            r.model_turn(
                text,
                model=model,
                prompt_tokens=tokens_in if tokens_in is not None else asked,
                completion_tokens=tokens_out,
                latency_s=duration,
                ts=ts,
            )
            asked = None
        elif kind == "iteration_code":
            if r.turn == 0 or line.data.get("iteration") != iteration:
                iteration = line.data.get("iteration")
                r.model_turn("", model=model, prompt_tokens=None, completion_tokens=None, ts=ts)
            r.cell(as_text(data.get("code")), "", 0.0, ts=ts)
        elif kind == "iteration_output":
            _fill_output(r, as_text(data.get("output")), duration)
        elif kind == "sub_llm_request":
            pending.append(SubCall(prompt=as_text(data.get("prompt")), response="", prompt_tokens=tokens_in or 0))
        elif kind == "sub_llm_response":
            call = pending[-1] if pending and not pending[-1].response else None
            if call is None:
                call = SubCall(prompt="", response="")
                pending.append(call)
            call.response, call.completion_tokens, call.latency_s = (
                as_text(data.get("response")),
                tokens_out or 0,
                duration,
            )
        elif kind == "child_spawn":
            pending.append(SubCall(prompt=as_text(data.get("task")), response=""))
        elif kind == "child_result":
            call = next((c for c in pending if not c.response), None) or SubCall(prompt="", response="")
            if call not in pending:
                pending.append(call)
            call.response = as_text(data.get("result"))
            call.error = None if data.get("success", True) else "the child agent did not succeed"
        elif kind == "final_detected":
            r.set_answer(as_text(data.get("answer")), True, ts)
            stop = "answer_ready"
        elif kind == "error":
            error = " ".join(as_text(data.get("error")).split())[:200]
        elif kind == "run_end":
            if data.get("success") is False:
                status, stop, error = "failed", "error", error or "the run ended without success"
            if data.get("answer") is not None and not r.answer["ready"]:
                r.set_answer(as_text(data.get("answer")), True, ts)
                stop = "answer_ready" if status == "done" else stop
        else:
            raise line.fail(f"unknown event_type {kind[:40]!r}")
    r.sub_batch(pending)
    if error and status == "done" and stop != "answer_ready":
        status, stop = "failed", "error"
    r.finished(status, stop, error=error if status == "failed" else None)
    return r


def _fill_output(r: RolloutBuilder, output: str, elapsed: float) -> None:
    """The output of the cell just logged: rewrite its finished event, which had none yet."""
    from dataclasses import replace

    from rlm_tui import events as ev

    for i in range(len(r.events) - 1, -1, -1):
        e = r.events[i]
        if isinstance(e, ev.CellFinished):
            r.events[i] = replace(
                e, output=output, shown=output, shown_chars=len(output), output_chars=len(output), elapsed_s=elapsed
            )
            return
