"""verifiers' eval output: `results.jsonl`, one rollout per row, its completion a chat with REPL tool calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlm_tui.events import new_id

from .build import TEXT_TOOL, Clock, ImportedRun, RolloutBuilder, as_text, run_events
from .lines import Line, number, read_side_file, typed

NOTE = "per-turn tokens are estimated with tiktoken (the rollout totals are the file's); cell times were not logged"
# the row's own fields; any other number at the top level is a metric verifiers flattened there
ROW_FIELDS = {
    "example_id", "id", "prompt", "completion", "answer", "info", "reward", "error", "timing", "is_completed",
    "is_truncated", "stop_condition", "metrics", "tool_defs", "token_usage", "task", "error_chain",
    "long_error_chain", "trajectory", "final_answer",
}  # fmt: skip
TIMING = ("generation_ms", "scoring_ms", "total_ms")


def convert(lines: list[Line], path: str, sha256: str, source: Path) -> ImportedRun:
    run_id = new_id()
    meta = read_side_file(source.with_name("metadata.json")) or {}
    model = meta.get("model") if isinstance(meta.get("model"), str) else "unknown"
    clock = Clock(_start(lines[0]) or 0.0)
    builders = [_rollout(run_id, i, line, model, clock) for i, line in enumerate(lines)]
    rlm = any(e.kind == "cell_started" for b in builders for e in b.events)
    env_id = meta.get("env_id") or meta.get("env")
    return ImportedRun(
        run_id,
        run_events(
            run_id=run_id,
            fmt="verifiers",
            path=path,
            sha256=sha256,
            mode="rlm" if rlm else "llm",
            model=model,
            sub_model=model,
            rollouts=builders,
            started=clock.now,
            note=NOTE,
            extra={"source": {"env_id": env_id}} if isinstance(env_id, str) else None,
        ),
        path,
        len(builders),
    )


def _start(line: Line) -> float | None:
    timing = line.get("timing", dict, {})
    start = timing.get("start_time")
    return start if isinstance(start, (int, float)) and not isinstance(start, bool) and start > 0 else None


def _messages(line: Line, name: str) -> list[dict[str, Any]]:
    value = line.get(name, (list, str), [])
    if isinstance(value, str):  # a completion-style row: plain text
        return [{"role": "assistant" if name == "completion" else "user", "content": value}]
    for i, m in enumerate(value):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise line.fail(f"`{name}[{i}]` should be a message with a role")
    return value


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts: keep their text
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return as_text(content)


def _tool_calls(line: Line, where: str, message: dict[str, Any]) -> list[dict[str, Any]]:
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise line.fail(f"`{where}.tool_calls` should be a list")
    out = []
    for i, call in enumerate(calls):
        if isinstance(call, str):  # older verifiers wrote each call as a JSON string
            try:
                call = json.loads(call)
            except ValueError:
                raise line.fail(f"`{where}.tool_calls[{i}]` is a string that is not JSON") from None
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise line.fail(f"`{where}.tool_calls[{i}]` should have a function with a name")
        arguments = function.get("arguments")
        text = arguments if isinstance(arguments, str) else json.dumps(arguments if arguments is not None else {})
        out.append({"id": as_text(call.get("id") or f"call-{i}"), "name": function["name"], "arguments": text})
    return out


def _rollout(run_id: str, index: int, line: Line, model: str, clock: Clock) -> RolloutBuilder:
    start = _start(line)
    if start is not None:  # rollouts that ran at once keep their own times: each its own clock
        clock = Clock(start - 1e-6)
    r = RolloutBuilder(run_id=run_id, rollout_id=f"{run_id}-r{index:03d}", clock=clock)
    example = line.data.get("example_id", line.data.get("id", index))
    if isinstance(example, bool) or not isinstance(example, (int, str)):
        raise line.fail("`example_id` should be a number or a string")
    info = line.get("info", dict, {})
    r.queued(index, str(example), info, line.get("answer", str))
    prompt, completion = _messages(line, "prompt"), _messages(line, "completion")
    system = next((_content(m) for m in prompt if m["role"] == "system"), "")
    user = "\n\n".join(_content(m) for m in prompt if m["role"] == "user")
    timing = line.get("timing", dict, {})
    numbers = {k: number(line, timing.get(k, line.data.get(k)), f"timing.{k}") for k in TIMING}
    r.started(system, user, start)
    turns = sum(1 for m in completion if m["role"] == "assistant")
    step = numbers["generation_ms"] / 1000 / turns if turns else 0.0  # no per-turn times: spread evenly
    history = [{"role": m["role"], "content": _content(m)} for m in prompt]
    replies = {m.get("tool_call_id"): _content(m) for m in completion if m["role"] == "tool"}
    at = start
    last_text = ""
    for i, m in enumerate(completion):
        if m["role"] != "assistant":
            history.append({"role": m["role"], "content": _content(m)})
            continue
        text, calls = _content(m), _tool_calls(line, f"completion[{i}]", m)
        call_id = r.model_turn(
            text,
            model=model,
            prompt_tokens=None,
            completion_tokens=None,
            estimate_prompt=list(history),
            latency_s=step,
            tool_calls=calls,
            ts=at,
            messages=len(history),
        )
        history.append({"role": "assistant", "content": text})
        last_text = text
        for call in calls:
            reply = replies.get(call["id"], "")
            if call["name"] == TEXT_TOOL:
                code = _code(call["arguments"])
                r.cell(code if code is not None else call["arguments"], reply, 0.0)
            else:
                r.tool(call["name"], _arguments(call["arguments"]), reply, call_id)
        if at is not None:
            at += step
    final = line.data.get("final_answer")
    answer = as_text(final) if final is not None else last_text
    completed = line.get("is_completed", bool, True) and not line.get("is_truncated", bool, False)
    r.set_answer(answer, bool(completed))
    reward = line.data.get("reward")
    reward = None if reward is None else number_or_negative(line, reward)
    metrics = _metrics(line)
    usage = line.get("token_usage", dict, {})
    if usage:
        metrics["prompt_tokens"] = int(number(line, usage.get("input_tokens"), "token_usage.input_tokens"))
        metrics["completion_tokens"] = int(number(line, usage.get("output_tokens"), "token_usage.output_tokens"))
    metrics.update((k, v) for k, v in numbers.items() if k in timing or k in line.data)
    error = _error(line)
    stop = line.get("stop_condition", str) or ("answer_ready" if completed else "max_turns")
    end = None if start is None else start + (numbers["total_ms"] or numbers["generation_ms"]) / 1000
    r.finished("failed" if error else "done", "error" if error else stop[:60], reward, metrics, error, ts=end)
    return r


def number_or_negative(line: Line, value: Any) -> float:
    """A reward: any finite number, negative ones too."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or abs(value) == float("inf"):
        raise line.fail(f"`reward` should be a finite number, got {as_text(value)[:40]}")
    return float(value)


def _code(arguments: str) -> str | None:
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return None
    code = parsed.get("code") if isinstance(parsed, dict) else None
    return code if isinstance(code, str) else None


def _arguments(arguments: str) -> dict[str, Any]:
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return {"arguments": arguments}
    return parsed if isinstance(parsed, dict) else {"arguments": parsed}


def _metrics(line: Line) -> dict[str, Any]:
    """The row's metrics: its `metrics` object, or the numbers verifiers flattened to the top level."""
    nested = line.get("metrics", dict, None)
    source = nested if nested is not None else {k: v for k, v in line.data.items() if k not in ROW_FIELDS}
    return {
        str(k)[:80]: float(v)
        for k, v in source.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")
    }


def _error(line: Line) -> str | None:
    error = line.data.get("error")
    if error is None:
        return None
    if isinstance(error, dict):
        error = error.get("error_chain_str") or error.get("error")
    return " ".join(as_text(error).split())[:200] or None


__all__ = ["convert", "typed"]
