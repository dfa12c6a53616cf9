"""What a rollout is doing now, and the run view's inline bars, from its folded state alone."""

from __future__ import annotations

from rlm_tui.state import RolloutState

BLOCKS = " ▏▎▍▌▋▊▉█"


def doing(r: RolloutState, now: float, paused: bool = False) -> str:
    """One short phrase: waiting for the model · 3s, running cell 4 · 12s, llm_batch 37/64, paused, done."""
    if r.status != "running":
        return r.status
    if paused or r.paused:
        return "paused"
    if r.waiting is not None:
        return f"cell of turn {r.waiting.turn} waits for approval (d)"
    if not r.turns:
        return "starting"
    turn = r.turns[-1]
    batch = r.batches[-1] if r.batches else None
    if batch is not None and not batch.finished:
        answered = sum(1 for c in batch.calls if c.response is not None or c.error is not None)
        if batch.owner is not None:  # the last batch is a child RLM's own: say so, with the children's count
            return f"child RLM's llm_batch {answered}/{batch.size}"
        return f"{'rlm_batch' if batch.rlm else 'llm_batch'} {answered}/{batch.size}"
    cell = turn.cells[-1] if turn.cells else None
    if cell is not None and cell.output is None and cell.error is None:
        cells = sum(len(t.cells) for t in r.turns)
        return f"running cell {cells}" + _since(cell.started, now)
    if turn.outcome is None:
        return "waiting for the model" + _since(turn.started, now)
    return "between turns"


def _since(start: float | None, now: float) -> str:
    return "" if start is None else f" · {max(0, int(now - start))}s"


def bar(fraction: float, width: int = 6) -> str:
    """`fraction` (clamped to 0..1) as `width` cells of eighth blocks, padded with spaces."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (BLOCKS[part] if part else "")).ljust(width)


def context_tokens(r: RolloutState) -> int:
    """The last main call's prompt: how full the model's context window is."""
    for turn in reversed(r.turns):
        if turn.prompt_tokens:
            return turn.prompt_tokens
    return 0
