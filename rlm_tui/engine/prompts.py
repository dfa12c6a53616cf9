"""What the root model is told: the system prompts, the REPL tool, and the shape of each cell's output."""

from __future__ import annotations

from typing import Any, NamedTuple

from rlm_tui.sandbox.session import MAX_ANSWER_CHARS

REPL_TOOL_NAME = "call_python_repl"

REPL_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": REPL_TOOL_NAME,
        "description": "Run Python code in your persistent REPL and see its output (stdout, stderr, the value "
        "of a trailing expression, tracebacks). Variables persist between calls.",
        "parameters": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "Python code to run"}},
            "required": ["code"],
        },
    },
}


PYTHON_TOOL_NAME = "python"

PYTHON_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": PYTHON_TOOL_NAME,
        "description": "Run Python code in a persistent sandboxed interpreter without network (numpy, scipy and "
        "sympy are installed) and see its output. Variables persist between calls.",
        "parameters": REPL_TOOL["function"]["parameters"],
    },
}


HOW_TO_RUN = {
    "native": ", through the `call_python_repl` tool",
    "text": (
        ": put the code to run in a fenced block that opens with ```repl and closes with ```, such as\n"
        "```repl\nprint(2 + 2)\n```\nEvery such block in your reply runs, in order, and you get its output in the "
        "next message"
    ),
}


def rlm_system_prompt(
    *,
    has_context: bool,
    context_chars: int,
    timeout: float,
    max_output_chars: int,
    sub_tools: list[str],
    protocol: str = "native",
    recursive: bool = False,
) -> str:
    context = (
        f"- `context`: the input data for this task ({context_chars:,} characters when printed). It is too large "
        "to read at once: inspect it with code.\n"
        if has_context
        else ""
    )
    tools = f" Sub-LLMs can use these tools: {', '.join(sub_tools)}." if sub_tools else ""
    return (
        f"You solve the task by writing Python in a persistent REPL{HOW_TO_RUN.get(protocol, HOW_TO_RUN['native'])}. "
        "The REPL holds:\n"
        f"{context}"
        "- `llm_batch(prompts: list[str]) -> list[str]`: ask sub-LLMs, one per prompt, all in parallel; the "
        f"responses come back in the same order. A sub-LLM sees only its prompt.{tools}\n"
        f"{RLM_BATCH if recursive else ''}"
        '- `answer = {"content": "", "ready": False}`: write your final answer into answer["content"] (at most '
        f'{MAX_ANSWER_CHARS:,} characters are kept). The task ends as soon as you set answer["ready"] = True, so check the content first.\n'
        "numpy, scipy and sympy are installed. There is no network in the REPL.\n"
        f"Each cell may run for at most {timeout:g} seconds (time spent waiting on llm_batch does not count); a "
        "cell that runs longer is interrupted. You see at "
        f"most {max_output_chars:,} characters of each cell's output, and a note says how much was cut; print "
        "summaries, not whole data. Each output ends with the time the cell took."
    )


RLM_BATCH = (
    "- `rlm_batch(prompts: list[str]) -> list[str]`: like llm_batch, but each prompt goes to a child RLM with a "
    "REPL of its own that holds the prompt as its `context`: for a part too large or too hard for one sub-LLM "
    "call. Each returns its answer. Children are slower and dearer than sub-LLMs: use them when a part needs code.\n"
)


def child_user_prompt(chars: int) -> str:
    """What a child RLM (started by rlm_batch) is asked: its whole task is in its `context`."""
    return (
        f"Your task, with any data it needs, is the text in `context` ({chars:,} characters). Do what it asks, "
        'working in the REPL, then write your answer into answer["content"] and set answer["ready"] = True.'
    )


def nudge(protocol: str) -> str:
    """The reminder a model gets after a turn that ran no code."""
    run = (
        "write the code in a ```repl block"
        if protocol == "text"
        else 'call `call_python_repl` with {"code": "..."} (or write the code in a ```repl block)'
    )
    return (
        f"Your last reply ran no code, and only code moves this task on. To run code, {run}. To finish, write "
        'your answer into `answer` in code, for example:\n```repl\nanswer["content"] = "42"\n'
        'answer["ready"] = True\n```'
    )


def text_reports(reports: list[str]) -> str:
    """The message that gives a model the output of the blocks it wrote as text."""
    if len(reports) == 1:
        return f"REPL output:\n{reports[0]}"
    return "\n\n".join(f"REPL output of block {i}:\n{r}" for i, r in enumerate(reports, 1))


def llm_system_prompt(tools: list[str]) -> str:
    if tools:
        return f"Answer the user's task. You can call these tools: {', '.join(tools)}. Reply with your final answer."
    return "Answer the user's task. Reply with your final answer only."


class Shown(NamedTuple):
    """What the model sees of a cell's output."""

    text: str
    chars: int  # characters of the output in `text`, the marker not counted
    truncated: bool


def truncate(output: str, limit: int, total: int) -> Shown:
    """What the model sees of an output of `total` characters: the head, and a marker of what was cut."""
    if total <= limit and len(output) <= limit:
        return Shown(output, len(output), False)
    head = output[:limit]
    return Shown(
        head + f"\n[output truncated: showing {limit:,} of {total:,} characters; {total - limit:,} cut]",
        len(head),
        True,
    )


def cell_report(shown: str, *, elapsed_s: float, error: str | None, lost: str | None) -> str:
    """The tool message the model receives after a cell."""
    parts = []
    if lost:
        parts.append(f"[REPL restarted] {lost}")
    if shown:
        parts.append(shown)
    elif not error:
        parts.append("(no output)")
    if error == "timeout":
        parts.append("[the cell ran past the time limit and was interrupted]")
    parts.append(f"[cell took {elapsed_s:.2f} s]")
    return "\n".join(parts)


def not_run(decision: str, text: str) -> str:
    """The tool message the model receives for a cell the operator did not let run (approve mode)."""
    if decision == "reply":
        return f"[not run] the operator read your code and replied instead:\n{text}"
    return f"[not run] the operator skipped this cell{': ' + text if text else ''}"
