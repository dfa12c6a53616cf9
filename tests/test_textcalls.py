"""Calls a model wrote as text are recovered as cells: real replies of a small model, and each form on its own."""

import json
from pathlib import Path

import pytest

from rlm_tui.engine.clients import parse_arguments
from rlm_tui.engine.textcalls import MAX_RECOVERED, recover_calls

TOOL = "call_python_repl"
# Every reply Qwen2.5-Coder-0.5B-Instruct (Q4_K_M) gave through llama.cpp's server to our prompts; the server's
# own tool parser recovered no call from any of them.
REAL = [
    json.loads(line)
    for line in (Path(__file__).parent / "fixtures" / "qwen2.5-coder-0.5b-instruct.jsonl").read_text().splitlines()
]


def codes(text):
    return [parse_arguments(c["arguments"]).get("code") for c in recover_calls(text, TOOL)]


def test_every_real_rlm_reply_becomes_a_call():
    replies = [r for r in REAL if r["mode"] == "rlm"]
    assert len(replies) == 5 and all(r["tool_calls"] == [] for r in replies)
    got = [[(c["name"], c["recovered"]) for c in recover_calls(r["content"], TOOL)] for r in replies]
    assert got == [
        [("find_21st_term", "json")],  # an invented tool: the model is told there is no such tool
        [(TOOL, "fence")],
        [(TOOL, "fence")],
        [(TOOL, "json")],
        [(TOOL, "json")],
    ]
    assert codes(replies[1]["content"])[0].startswith("import sympy as sp\n")
    assert codes(replies[3]["content"]) == ["itglax"]


def test_plain_answers_are_not_calls():
    assert all(recover_calls(r["content"], TOOL) == [] for r in REAL if r["mode"] == "llm")
    assert recover_calls("The answer is \\boxed{3}.", TOOL) == []
    assert recover_calls("", TOOL) == []


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>\n{"name": "call_python_repl", "arguments": {"code": "x = 1"}}\n</tool_call>',
        '<tool_call>{"name": "call_python_repl", "arguments": "{\\"code\\": \\"x = 1\\"}"}',  # unclosed, string arguments
        '{"name": "call_python_repl", "arguments": {"code": "x = 1"}}',
        '```json\n{"name": "call_python_repl", "arguments": {"code": "x = 1"}}\n```',
        "Let me look.\n```repl\nx = 1\n```\n",
        "Let me look.\n```python\nx = 1\n```\n```output\n1\n```",
    ],
)
def test_each_form_gives_the_same_cell(text):
    assert [c.strip() for c in codes(text)] == ["x = 1"]


def test_fences_run_in_order_and_examples_of_other_tools_do_not():
    text = (
        "First:\n```python\na = 1\n```\nthen\n```repl\nb = 2\n```\n"
        'It prints:\n```json\n{"name": "result", "arguments": {"value": 3}}\n```'
    )
    assert codes(text) == ["a = 1\n", "b = 2\n"]
    assert [c["id"] for c in recover_calls(text, TOOL)] == ["text_call_0", "text_call_1"]


def test_a_reply_of_many_fences_is_capped():
    text = "".join(f"```python\nprint({i})\n```\n" for i in range(50))
    assert len(recover_calls(text, TOOL)) == MAX_RECOVERED


def test_broken_json_is_not_a_call_but_its_fence_is_read_as_what_it_is():
    assert recover_calls('{"name": "call_python_repl", "arguments": {"code": ', TOOL) == []
    assert recover_calls('```json\n{"name": 3}\n```', TOOL) == []


def test_an_unlabelled_fence_runs_only_when_it_is_python():
    assert codes('To finish:\n```\nanswer["content"] = "42"\nanswer["ready"] = True\n```') == [
        'answer["content"] = "42"\nanswer["ready"] = True\n'
    ]
    assert codes("The output:\n```\nThe sum is 42, so we are done.\n```") == []


def test_many_unclosed_fences_are_read_in_one_pass():
    # a regex over the whole reply rescanned to the end from every opening: 46 s for 8,000 of these lines
    assert codes("```python\n" * 200_000) == []
    assert codes("```python\n" * 200_000 + "```\n") == ["```python\n" * 199_999]
    assert codes("```py title\nx = 1\n```") == ["x = 1\n"]  # the language is the first word after the fence
