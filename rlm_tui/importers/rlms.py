"""The official RLM library's `RLMLogger` JSONL: a metadata line, then one line per iteration (docs/import.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rlm_tui.events import new_id

from .build import Clock, ImportedRun, RolloutBuilder, SubCall, as_text, estimate_tokens, run_events
from .lines import Line, number, typed

NOTE = "main-model tokens are estimated with tiktoken; nothing was scored"


def parse_time(line: Line, name: str = "timestamp") -> float | None:
    raw = line.get(name, str)
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw).timestamp()
    except ValueError:
        raise line.fail(f"`{name}` is not an ISO date and time: {raw[:40]!r}") from None


def convert(lines: list[Line], path: str, sha256: str) -> ImportedRun:
    run_id = new_id()
    meta: dict[str, Any] = {}
    groups: list[tuple[str | None, list[Line]]] = []
    pending_prompt: str | None = None
    current: list[Line] = []
    for line in lines:
        kind = line.get("type", str, required=True)
        if kind == "metadata":
            if not meta:  # a rotated log repeats it at the top of each file
                meta = line.data
        elif kind == "run_context":
            pending_prompt = as_text(line.data.get("root_prompt") or line.data.get("prompt"))
        elif kind == "iteration":
            if not current:
                groups.append((pending_prompt, current))
                pending_prompt = None
            current.append(line)
            if line.data.get("final_answer") is not None:
                current = []
        else:
            raise line.fail(f"unknown record type {kind[:40]!r}; expected metadata, run_context or iteration")
    if not groups:
        raise lines[-1].fail("no iteration records: the log holds no completion")
    model = meta.get("root_model") if isinstance(meta.get("root_model"), str) else "unknown"
    first_ts = next((t for t in (parse_time(line) for line in lines) if t is not None), 0.0)
    clock = Clock(first_ts)
    builders = [_completion(run_id, i, prompt, group, model, clock) for i, (prompt, group) in enumerate(groups)]
    others = meta.get("other_backends")
    sub_model = (
        next((m for m in _sub_models(groups) if m), None)
        or (others[0] if isinstance(others, list) and others and isinstance(others[0], str) else None)
        or model
    )
    settings = {k: meta.get(k) for k in ("max_depth", "max_iterations", "backend", "environment_type")}
    events = run_events(
        run_id=run_id,
        fmt="rlms",
        path=path,
        sha256=sha256,
        mode="rlm",
        model=model,
        sub_model=sub_model,
        rollouts=builders,
        started=first_ts,
        note=NOTE,
        extra={"source": {k: v for k, v in settings.items() if isinstance(v, (str, int))}},
    )
    return ImportedRun(run_id, events, path, len(builders))


def _sub_models(groups: list[tuple[str | None, list[Line]]]) -> list[str | None]:
    models: list[str | None] = []
    for _, group in groups:
        for line in group:
            for block in line.data.get("code_blocks") or ():
                result = block.get("result") if isinstance(block, dict) else None
                for call in (result or {}).get("rlm_calls") or () if isinstance(result, dict) else ():
                    if isinstance(call, dict) and isinstance(call.get("root_model"), str):
                        models.append(call["root_model"])
    return models


def _completion(
    run_id: str, index: int, user_prompt: str | None, group: list[Line], model: str, clock: Clock
) -> RolloutBuilder:
    r = RolloutBuilder(run_id=run_id, rollout_id=f"{run_id}-r{index:03d}", clock=clock)
    numbers = [g.data.get("iteration") for g in group]
    r.queued(index, f"completion-{index}", {"iterations": [n for n in numbers if isinstance(n, int)]})
    first = group[0]
    prompt = first.data.get("prompt")
    system, user = _prompts(prompt)
    iteration_time = number(first, first.data.get("iteration_time"), "iteration_time")
    start = parse_time(first)
    r.started(system, user_prompt or user, None if start is None else start - iteration_time)
    final: str | None = None
    for line in group:
        final = _iteration(r, line, model)
    if final is not None:
        r.set_answer(final, True)
        r.finished("done", "answer_ready")
    else:
        r.finished("done", "max_turns")  # the log ends, or the library ran out of iterations, with no final answer
    return r


def _prompts(prompt: Any) -> tuple[str, str]:
    """The first system and user messages of a chat prompt; a plain string is the user's."""
    if isinstance(prompt, list):
        system = next((m.get("content") for m in prompt if isinstance(m, dict) and m.get("role") == "system"), "")
        user = next((m.get("content") for m in prompt if isinstance(m, dict) and m.get("role") == "user"), "")
        return as_text(system), as_text(user)
    return "", as_text(prompt)


def _iteration(r: RolloutBuilder, line: Line, model: str) -> str | None:
    response = line.text("response")
    prompt = line.get("prompt", (str, list, dict), "")
    if isinstance(prompt, list) and not all(isinstance(m, dict) for m in prompt):
        raise line.fail("`prompt` should be a string or a list of messages")
    blocks = line.get("code_blocks", list, [])
    parsed = [_block(line, i, b) for i, b in enumerate(blocks)]
    total = number(line, line.data.get("iteration_time"), "iteration_time")
    ts = parse_time(line)
    cells_time = sum(p[2] for p in parsed)
    latency = max(0.0, total - cells_time)
    start = None if ts is None else ts - total
    messages = [m for m in prompt if isinstance(m.get("content"), str)] if isinstance(prompt, list) else []
    r.model_turn(
        response,
        model=model,
        prompt_tokens=None,
        completion_tokens=None,
        estimate_prompt=messages or prompt,
        latency_s=latency,
        ts=start,
        messages=len(prompt) if isinstance(prompt, list) else 1,
    )
    at = None if start is None else start + latency
    for code, output, elapsed, error, calls in parsed:
        r.cell(code, output, elapsed, error, ts=at)
        r.sub_batch(calls)
        if at is not None:
            at += elapsed
    final = line.data.get("final_answer")
    if final is None:
        return None
    return as_text(final)


def _block(line: Line, i: int, block: Any) -> tuple[str, str, float, str | None, list[SubCall]]:
    where = f"code_blocks[{i}]."
    if not isinstance(block, dict):
        raise line.fail(f"`code_blocks[{i}]` should be an object")
    code = typed(line, block, "code", str, "", where=where)
    result = typed(line, block, "result", dict, {}, where=where)
    stdout = typed(line, result, "stdout", str, "", where=f"{where}result.")
    stderr = typed(line, result, "stderr", str, "", where=f"{where}result.")
    elapsed = number(line, result.get("execution_time"), f"{where}result.execution_time")
    calls = typed(line, result, "rlm_calls", list, [], where=f"{where}result.")
    output = stdout + (("\n" if stdout and not stdout.endswith("\n") else "") + stderr if stderr else "")
    error = stderr.strip().splitlines()[-1][:200] if stderr.strip() else None
    subs = [_sub_call(line, f"{where}result.rlm_calls[{j}].", call) for j, call in enumerate(calls)]
    return code, output, elapsed, error, subs


def _sub_call(line: Line, where: str, call: Any) -> SubCall:
    if not isinstance(call, dict):
        raise line.fail(f"`{where[:-1]}` should be an object")
    prompt = as_text(call.get("prompt"))
    response = as_text(call.get("response"))
    usage = typed(line, call, "usage_summary", dict, {}, where=where)
    summaries = typed(line, usage, "model_usage_summaries", dict, {}, where=f"{where}usage_summary.")
    prompt_tokens = completion_tokens = 0
    for name, summary in summaries.items():
        if not isinstance(summary, dict):
            raise line.fail(f"`{where}usage_summary.model_usage_summaries.{name[:40]}` should be an object")
        prompt_tokens += int(number(line, summary.get("total_input_tokens"), "total_input_tokens"))
        completion_tokens += int(number(line, summary.get("total_output_tokens"), "total_output_tokens"))
    if not summaries:  # an older log without usage: counted as the main model's turns are
        prompt_tokens, completion_tokens = estimate_tokens(prompt), estimate_tokens(response)
    error = call.get("error")
    sub = SubCall(
        prompt=prompt,
        response=response,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_s=number(line, call.get("execution_time"), f"{where}execution_time"),
        error=None if error is None else as_text(error)[:200],
    )
    nested = typed(line, call, "metadata", dict, None, where=where)
    if nested is not None:  # a child RLM: its iterations become the sub call's steps
        iterations = typed(line, nested, "iterations", list, [], where=f"{where}metadata.")
        sub.turns = len(iterations)
        for k, it in enumerate(iterations):
            if not isinstance(it, dict):
                raise line.fail(f"`{where}metadata.iterations[{k}]` should be an object")
            blocks = [b for b in it.get("code_blocks") or () if isinstance(b, dict)]
            codes = [b.get("code") for b in blocks if isinstance(b.get("code"), str)]
            outputs = [
                b["result"].get("stdout")
                for b in blocks
                if isinstance(b.get("result"), dict) and b["result"].get("stdout")
            ]
            grandchildren = sum(
                len(b["result"].get("rlm_calls") or ()) for b in blocks if isinstance(b.get("result"), dict)
            )
            arguments: dict[str, Any] = {"iteration": k + 1, "code": "\n\n".join(codes)}
            if grandchildren:
                arguments["sub_calls"] = grandchildren
            result = as_text(it.get("response")) + "".join(f"\n{o}" for o in outputs if isinstance(o, str))
            sub.steps.append(("child_iteration", arguments, result))
    return sub
