"""Nothing from a model, a cell or the database reaches a terminal as a control sequence."""

from __future__ import annotations

import json
import os
import pty
import subprocess

import pytest

from fake_openai import FakeOpenAI, Reply, code_call, is_root, root_turn
from rlm_tui.text import printable
from test_cli import RLM_TUI, cli

# clear screen, alternate screen, window title, clipboard write, 8-bit CSI, carriage return, backspace, bidi override
SEQUENCES = (
    "\x1b[2J\x1b[H \x1b[?1049h \x1b]0;pwned\x07 \x1b]52;c;cm0gLXJmIH4=\x07 \x9b2J abc\rXYZ ab\x08\x08 \u202eevil\u2066"
)
FORBIDDEN = ("\x1b", "\x9b", "\x07", "\x08", "\r", "\u202e", "\u2066")


def clean(out: str) -> bool:
    return not any(c in out for c in FORBIDDEN)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """A run whose model, cell output, sub-LLM replies and answer all carry every sequence."""
    tmp_path = tmp_path_factory.mktemp("hostile")
    payload = json.dumps(SEQUENCES)  # escapes in the source: a raw CR would end the Python line

    def respond(body):
        if not is_root(body):
            return Reply(content=SEQUENCES)
        if root_turn(body) == 0:
            reply = code_call(f"# {SEQUENCES.replace(chr(13), '')}\nprint({payload})\nr = llm_batch(['x'])")
            reply.content = SEQUENCES
            return reply
        return code_call(f"answer.update(content={payload}, ready=True)")

    with FakeOpenAI(respond) as server:
        out = cli(
            tmp_path,
            "run",
            "verbatim-copy",
            "--headless",
            "-n",
            "1",
            "--model",
            "m\x1b]0;title\x07",
            "--base-url",
            server.base_url,
            "--db",
            "h.db",
        ).stdout
    (record,) = [json.loads(line) for line in cli(tmp_path, "export", "--db", "h.db").stdout.splitlines()]
    assert SEQUENCES in record["answer"]["content"]  # stored exactly; only the display escapes it
    return tmp_path, record, out


def test_the_run_summary_prints_no_control_sequences(hostile_run):
    assert clean(hostile_run[2]), repr(hostile_run[2])


@pytest.mark.parametrize(
    "args",
    [["show", "ROLLOUT"], ["show", "ROLLOUT", "--full"], ["show", "RUN"], ["runs"], ["export"], ["report", "RUN"]],
)
def test_commands_print_no_control_sequences(hostile_run, args):
    tmp_path, record, _ = hostile_run
    args = [{"ROLLOUT": record["rollout_id"], "RUN": record["run_id"]}.get(a, a) for a in args]
    out = cli(tmp_path, *args, "--db", "h.db").stdout
    assert clean(out), repr(out)
    if args[0] == "show" and args[1] == record["rollout_id"]:
        assert "\\x1b]52;c;" in out and "\\u202eevil" in out  # shown, as visible escapes


def test_csv_to_a_file_keeps_the_exact_text_and_to_a_terminal_escapes_it(hostile_run):
    tmp_path, record, _ = hostile_run
    cli(tmp_path, "export", "--format", "csv", "--db", "h.db", "-o", "out.csv")
    assert "m\x1b]0;title\x07" in (tmp_path / "out.csv").read_text()  # the model's name, byte for byte
    leader, follower = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RLM_TUI_"))}
    proc = subprocess.run(
        [RLM_TUI, "export", "--format", "csv", "--db", "h.db"],
        cwd=tmp_path,
        env=environ,
        stdout=follower,
        stderr=subprocess.PIPE,
        timeout=120,
    )
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the writer closed
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert proc.returncode == 0, proc.stderr
    text = out.decode().replace("\r\n", "\n")  # the terminal's own line discipline turns \n into \r\n
    assert record["rollout_id"] in text and clean(text), repr(text)


def test_printable():
    assert printable("a\tb\nc") == "a\tb\nc"
    assert printable("line\r\nnext\rover\x08\x00\x7f\x1b[2J\x9b\u202e\u2069") == (
        "line\nnext\\x0dover\\x08\\x00\\x7f\\x1b[2J\\x9b\\u202e\\u2069"
    )


@pytest.mark.parametrize("command", ["runs", "show", "report"])
def test_names_from_the_database_print_no_control_sequences(tmp_path, command):
    from runs import store_events
    from synthetic import run_events
    from test_tui_text import with_markup

    store_events(tmp_path / "s.db", with_markup(run_events("hostile-run", rollouts=2), SEQUENCES))
    args = {"runs": [], "show": ["hostile-run"], "report": ["hostile-run"]}[command]
    out = cli(tmp_path, command, *args, "--db", "s.db").stdout
    assert "hostile-run" in out and clean(out), repr(out)
