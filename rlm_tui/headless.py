"""Terminal output without the app: the progress bar, summary, runs table and transcripts."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from datetime import datetime
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.padding import Padding
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from rlm_tui import events as ev
from rlm_tui.env import recorded_data_note
from rlm_tui.state import Cell, RolloutState, RunState, operator_by_turn
from rlm_tui.text import printable
from rlm_tui.units import tokens, usd

# Piped output is read by programs and people alike: do not squeeze it to 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """A signal stopped a headless run, after the run recorded its end; it travels up as Ctrl-C does."""

    def __init__(self, run_id: str, signum: int) -> None:
        super().__init__(f"run {run_id} was stopped by {signal.Signals(signum).name}; what it did is recorded")
        self.signum = signum


def run_headless(run: Any, client: Any) -> RunState:
    """Execute `run` with a progress bar on stderr; the run's own events drive the bar.

    SIGTERM and SIGHUP (unless ignored, as under nohup) stop it as Ctrl-C does, then raise Stopped."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("reward {task.fields[reward]}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[retries]}", style="yellow"),
        console=err,
        transient=True,
    )
    task = progress.add_task(
        escape(f"{run.config.env} [{run.config.rollout.mode}]"), total=run.config.num_examples, reward="-", retries=""
    )

    def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            progress.update(task, total=event.num_rollouts)
            progress.start()  # only now: an error while preparing the run then prints as a clean single line
        elif isinstance(event, ev.RolloutFinished):
            mean = run.state.mean_reward
            progress.update(task, advance=1, reward="-" if mean is None else f"{mean:.3f}")
        elif isinstance(event, ev.ModelRetry):
            count = run.state.retries
            progress.update(task, retries=f"{count} {'retry' if count == 1 else 'retries'}")

    run.sinks.append(on_event)

    received: list[int] = []

    async def main() -> RunState:
        loop, main_task = asyncio.get_running_loop(), asyncio.current_task()

        def stop(signum: int) -> None:
            received.append(signum)
            main_task.cancel()  # as asyncio does for Ctrl-C: the run's own cleanup then records its end

        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) is not signal.SIG_IGN:  # under nohup a hang-up must not stop the run
                loop.add_signal_handler(signum, stop, signum)
        try:
            return await run.execute()
        finally:
            await client.close()

    try:
        state = asyncio.run(main())
    finally:
        progress.stop()
    if received:
        raise Stopped(run.id, received[0])
    return state


def _t(text: Any, style: str = "") -> Text:
    """Outside text (a model's, a cell's, the database's) as literal, visible characters: never markup or a control."""
    return Text(printable(str(text)), style=style)


def model_label(model: str) -> str:
    """The model's name, and what it is when it is the built-in offline one."""
    return f"{model} (simulated model)" if model == "scripted" else model


def print_summary(state: RunState) -> None:
    note = recorded_data_note(state.config)
    if note:  # before the numbers, so that no one takes a stand-in's rewards for the real data's
        console.print(_t(f"data: {note}", "yellow"))
    table = Table(title=_t(f"{state.env} [{state.mode}] · {model_label(state.model)}"), title_justify="left")
    names = (
        "#",
        "example",
        "outcome",
        "reward",
        "turns",
        "main tok",
        "sub calls",
        "sub tok",
        "cost",
        "repl s",
        "wall s",
    )
    for name in names:
        table.add_column(name, justify="right" if name not in ("example", "outcome") else "left")
    rollouts = sorted(state.rollouts.values(), key=lambda r: r.index)
    for r in rollouts[:30]:
        m = r.final_metrics or r.metrics(time.time())
        table.add_row(
            str(r.index),
            _t(r.example_id),
            _t(r.status if r.status != "done" else r.stop_reason or "done"),
            "-" if r.reward is None else f"{r.reward:.3f}",
            str(m["main_rlm_turns"]),
            tokens(r.main_tokens),
            str(m["sub_llm_call_count"]),
            tokens(r.sub_tokens),
            usd(r.cost_usd),
            f"{m['repl_total_time_seconds']:.2f}",
            f"{m['wall_time_seconds']:.2f}",
        )
    if len(rollouts) > 30:
        table.add_row("…", f"{len(rollouts) - 30} more", *[""] * 9)
    mean = state.mean_reward
    table.add_section()
    table.add_row(
        "",
        "all",
        f"{len(state.done)}/{len(rollouts)}",
        "-" if mean is None else f"{mean:.3f}",
        str(sum(len(r.turns) for r in rollouts)),
        tokens(sum(r.main_tokens for r in rollouts)),
        str(sum(r.sub_calls for r in rollouts)),
        tokens(sum(r.sub_tokens for r in rollouts)),
        usd(state.cost_usd),
        f"{sum(r.repl_time_s for r in rollouts):.2f}",
        f"{(state.finished or time.time()) - (state.started or time.time()):.2f}",
    )
    console.print(table)
    judges = sorted({str(r.final_metrics["judge"]) for r in rollouts if "judge" in r.final_metrics})
    if judges:  # a scorer that says what scored (an LLM judge, or exact match offline)
        console.print(_t(f"scored by: {', '.join(judges)}"))
    console.print(_t(f"run {state.id} {state.status}"))
    console.print(_t(state.id))


def print_runs(runs: list[dict[str, Any]]) -> None:
    if not runs:
        console.print("no runs yet: start one with `rlm-tui run verbatim-copy`")
        return
    table = Table()
    for name in ("run", "env", "mode", "model", "started", "done", "mean reward", "cost", "status"):
        table.add_column(name, no_wrap=name in ("run", "started"))
    for r in runs:
        started = datetime.fromtimestamp(r["started"]).strftime("%Y-%m-%d %H:%M") if r.get("started") else "-"
        reward = r.get("mean_reward")
        table.add_row(
            *(_t(r[k]) for k in ("id", "env", "mode", "model")),
            started,
            f"{r['ended']}/{r['rollouts']}",
            "-" if reward is None else f"{reward:.3f}",
            usd(r.get("cost_usd")),
            _t(r["status"]),
        )
    console.print(table)


def _clip(text: str | None, limit: int = 160) -> str:
    text = " ".join(printable(text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _args(arguments: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in arguments.items())


def _print_calls(batch: Any) -> None:
    for call in sorted(batch.calls, key=lambda c: c.index):
        console.print(Text(f"    [{call.index}] {_clip(call.prompt)}", style="dim"))
        for tool in call.tools:
            console.print(_t(f"        {tool.name}({_args(tool.arguments)}) -> {_clip(tool.result)}", "magenta"))
        console.print(Text(f"        => {_clip(call.response)}", style="green" if not call.error else "red"))


def print_rollouts(run: RunState) -> None:
    table = Table(title=_t(f"run {run.id} · {run.env} [{run.mode}] · {run.model} · {run.status}"), title_justify="left")
    for name in ("#", "rollout", "example", "status", "reward", "turns", "sub calls"):
        table.add_column(name, no_wrap=name == "rollout")
    for r in sorted(run.rollouts.values(), key=lambda r: r.index):
        table.add_row(
            str(r.index),
            _t(r.id),
            _t(r.example_id),
            _t(r.stop_reason or r.status),
            "-" if r.reward is None else f"{r.reward:.3f}",
            str(len(r.turns)),
            str(r.sub_calls),
        )
    console.print(table)


def _print_operator(items: Any, batches_by_cell: dict, full: bool) -> None:
    """What the operator did between two turns: the messages, answers and cells, as the model's turns show."""
    for item in items:
        if isinstance(item, Cell):
            _print_cell(item, batches_by_cell, full)
        elif item.action in ("approve", "skip", "reply"):
            continue  # shown with the cell it decided
        else:
            console.print(_t(f"operator {item.action}" + (f": {item.text}" if item.text else ""), "bold yellow"))


def _print_cell(cell: Cell, batches_by_cell: dict, full: bool) -> None:
    if cell.proposed is not None:
        console.print(_t("the model proposed this cell; the operator edited it before it ran:", "yellow"))
        console.print(Syntax(printable(cell.proposed), "python", theme="ansi_dark", line_numbers=False))
        console.print(_t("it ran as:", "yellow"))
    console.print(Syntax(printable(cell.code), "python", theme="ansi_dark", line_numbers=False))
    for batch in batches_by_cell.get(cell.id, ()):
        if batch.rlm:
            _print_children(batch, batches_by_cell, full, "  ")
            continue
        tools = sum(len(c.tools) for c in batch.calls)
        console.print(
            Text(
                f"  llm_batch #{batch.batch}: {batch.size} prompts, {tools} tool calls, "
                f"{batch.elapsed_s or 0:.2f} s, {batch.errors} errors",
                style="magenta",
            )
        )
        if full:
            _print_calls(batch)
    text = cell.output if full else cell.shown
    note = f"{cell.elapsed_s or 0:.2f} s" + (
        f", model saw {cell.shown_chars:,} of {cell.output_chars:,} chars" if cell.truncated else ""
    )
    if cell.source == "operator":
        note += ", the operator's cell"
    style = "red" if cell.error else "dim"
    console.print(
        Panel(_t(text or "(no output)"), title=escape(f"output · {note}"), title_align="left", border_style=style)
    )


def _print_children(batch: Any, batches_by_cell: dict, full: bool, indent: str) -> None:
    """An rlm_batch: each child RLM's turns, indented under the cell that started them, their own batches too."""
    console.print(
        _t(
            f"{indent}rlm_batch #{batch.batch}: {batch.size} child RLMs, {batch.elapsed_s or 0:.2f} s, "
            f"{batch.errors} errors",
            "magenta",
        )
    )
    for call in sorted(batch.calls, key=lambda c: c.index):
        head = (
            f"{indent}  child {call.index} · {call.turns} turns · {call.prompt_tokens}+{call.completion_tokens} tok"
            f" · answer: {_clip(call.error or call.response)}"
        )
        console.print(_t(head, "red" if call.error else "cyan"))
        for turn in call.child_turns:
            for cell in turn.cells:
                console.print(_t(indent + "    " + f"turn {turn.index}:", "cyan"))
                console.print(
                    Padding(Syntax(printable(cell.code), "python", theme="ansi_dark"), (0, 0, 0, len(indent) + 4))
                )
                out = (cell.output if full else cell.shown) or "(no output)"
                console.print(Padding(_t(out if full else _clip(out, 400), "dim"), (0, 0, 0, len(indent) + 6)))
                for inner in batches_by_cell.get(cell.id, ()):
                    if inner.rlm:
                        _print_children(inner, batches_by_cell, full, indent + "    ")
                    else:
                        console.print(
                            _t(
                                f"{indent}      llm_batch #{inner.batch}: {inner.size} prompts, depth {inner.depth}",
                                "magenta",
                            )
                        )


def print_transcript(run: RunState, r: RolloutState, *, full: bool = False) -> None:
    ended = f" ({r.stop_reason})" if r.stop_reason else ""
    head = (
        f"rollout {r.id} · {run.env} [{run.mode}] · {run.model} · example {r.example_id} · {r.status}{ended}"
        f" · reward {'-' if r.reward is None else f'{r.reward:.3f}'}"
        f" · cost {usd(r.cost_usd)} (main {usd(r.main_cost_usd)}, sub {usd(r.sub_cost_usd)})"
    )
    console.print(_t(head, "bold"))
    console.print(Panel(_t(r.user_prompt), title="prompt", title_align="left", border_style="dim"))
    batches_by_cell: dict[str | None, list] = {}
    for batch in r.batches:
        batches_by_cell.setdefault(batch.cell_id, []).append(batch)
    placed = operator_by_turn(r)
    _print_operator(placed.get(0, ()), batches_by_cell, full)
    for turn in r.turns:
        usage = f"{turn.prompt_tokens}+{turn.completion_tokens} tok, {turn.latency_s or 0:.2f} s"
        console.print(Text(f"── turn {turn.index} · {usage}", style="cyan"))
        if turn.error:
            console.print(_t(f"model error: {turn.error}", "red"))
        if turn.text:
            console.print(_t(turn.text))
        for tool in turn.tools:
            console.print(_t(f"  {tool.name}({_args(tool.arguments)}) -> {_clip(tool.result)}", "magenta"))
        for proposal in turn.proposals:
            if proposal.decision in ("skip", "reply"):
                said = "skipped it" if proposal.decision == "skip" else "replied instead"
                console.print(_t(f"proposed cell, not run: the operator {said}: {proposal.text or '-'}", "yellow"))
                console.print(Syntax(printable(proposal.code), "python", theme="ansi_dark", line_numbers=False))
        for cell in turn.cells:
            _print_cell(cell, batches_by_cell, full)
        _print_operator(placed.get(turn.index, ()), batches_by_cell, full)
    for restart in r.restarts:
        console.print(_t(f"sandbox restarted ({restart.reason}): {restart.lost}", "yellow"))
    ready = "ready" if r.answer.get("ready") else "not ready"
    console.print(
        Panel(
            Group(_t(r.answer.get("content", ""))), title=f"answer · {ready}", title_align="left", border_style="green"
        )
    )
