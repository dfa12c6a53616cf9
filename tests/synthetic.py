"""Deterministic synthetic runs, for benchmarks, tests and screenshots of the app."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import zip_longest

from rlm_tui import events as ev

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC


class _Ids:
    def __init__(self, prefix: str) -> None:
        self.prefix, self.n = prefix, 0

    def __call__(self) -> str:
        self.n += 1
        return f"{self.prefix}{self.n:07d}"


def rollout_events(
    run_id: str,
    index: int,
    *,
    turns: int = 3,
    batch: int = 4,
    tools: int = 1,
    output_chars: int = 120,
    dt: float = 0.01,
    t0: float = T0,
    finish: bool = True,
) -> Iterator[ev.Event]:
    """One rollout: turns of model call, cell, an llm_batch of `batch` calls (each with `tools` tool calls), output."""
    rid = f"{run_id}-r{index:03d}"
    new = _Ids(f"{rid}-")
    clock = iter(t0 + dt * i for i in range(10**9))
    common = lambda: {"run_id": run_id, "rollout_id": rid, "id": new(), "ts": next(clock)}  # noqa: E731
    yield ev.RolloutQueued(**common(), index=index, example_id=f"ex-{index}", info={"size": output_chars}, target="T")
    yield ev.RolloutStarted(
        **common(),
        system_prompt="You write Python in a REPL.",
        user_prompt=f"Copy the text of example {index} exactly.\n<text>{'lorem ipsum ' * 8}</text>",
    )
    answer = ""
    for turn in range(1, turns + 1):
        call = ev.ModelCallStarted(**common(), role="main", model="synthetic", turn=turn, messages=2 * turn)
        yield call
        code = f"parts = llm_batch([f'copy part {{i}}' for i in range({batch})])\nprint(len(parts), parts[:2])"
        yield ev.ModelCallFinished(
            **common(),
            parent_id=call.id,
            role="main",
            text=f"Turn {turn}: split and copy.",
            reasoning="The text is long, so I split it." if turn == 1 else "",
            tool_calls=[{"id": f"c{turn}", "name": "call_python_repl", "arguments": "{}"}],
            prompt_tokens=400 * turn,
            completion_tokens=60,
            latency_s=0.5,
        )
        cell = ev.CellStarted(**common(), turn=turn, code=code)
        yield cell
        if batch:
            b = ev.SubBatchStarted(**common(), parent_id=cell.id, batch=turn - 1, size=batch)
            yield b
            for i in range(batch):
                sub = ev.SubCallStarted(**common(), parent_id=b.id, batch=turn - 1, index=i, prompt=f"copy part {i}")
                yield sub
                for k in range(tools):
                    yield ev.ToolCalled(
                        **common(),
                        parent_id=sub.id,
                        name="lookup",
                        arguments={"part": i, "k": k},
                        result=f"part {i}",
                        elapsed_s=0.01,
                    )
                yield ev.SubCallFinished(
                    **common(),
                    parent_id=sub.id,
                    batch=turn - 1,
                    index=i,
                    response=f"part {i}",
                    turns=1 + bool(tools),
                    tool_calls=tools,
                    prompt_tokens=30,
                    completion_tokens=8,
                    latency_s=0.2,
                )
            yield ev.SubBatchFinished(**common(), parent_id=b.id, batch=turn - 1, elapsed_s=0.4)
        lines = "".join(
            f"line {i:04d}: the quick brown fox jumps over the lazy dog\n" for i in range(output_chars // 50 + 1)
        )
        output = (f"{batch} ['part 0', 'part 1']\n" + lines)[: max(output_chars, 1)]
        shown = (
            output
            if len(output) <= 8192
            else output[:8192]
            + f"\n[output truncated: showing 8,192 of {len(output):,} characters; {len(output) - 8192:,} cut]"
        )
        answer += f"part {turn} "
        yield ev.CellFinished(
            **common(),
            parent_id=cell.id,
            turn=turn,
            output=output,
            shown=shown,
            shown_chars=min(len(output), 8192),
            output_chars=len(output),
            truncated=len(output) > 8192,
            elapsed_s=0.42,
            answer={"content": answer, "ready": turn == turns},
        )
        yield ev.AnswerUpdated(**common(), content=answer.strip(), ready=turn == turns)
    if finish:
        yield ev.RolloutFinished(
            **common(),
            status="done",
            stop_reason="answer_ready",
            answer={"content": answer.strip(), "ready": True},
            reward=1.0 if index % 3 else 0.5,
        )


def run_events(
    run_id: str = "synthetic-run", *, rollouts: int = 3, finish: bool = True, t0: float = T0, **kw: object
) -> list[ev.Event]:
    """A whole run; the rollouts' events interleave as concurrent rollouts' would."""
    head = [
        ev.RunStarted(
            run_id=run_id,
            id=f"{run_id}-start",
            ts=t0,
            env="verbatim-copy",
            mode="rlm",
            model="synthetic",
            sub_model="synthetic",
            num_rollouts=rollouts,
            config={"rollout": {"max_output_chars": 8192}},
        )
    ]
    streams = [rollout_events(run_id, i, t0=t0 + 0.001 * i, finish=finish, **kw) for i in range(rollouts)]
    body = [e for group in zip_longest(*streams) for e in group if e is not None]
    tail = (
        [ev.RunFinished(run_id=run_id, id=f"{run_id}-end", ts=max(e.ts for e in body) + 0.01, status="done")]
        if finish
        else []
    )
    return head + body + tail
