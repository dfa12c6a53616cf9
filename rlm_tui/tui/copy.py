"""`y`: copy a turn, a sub-LLM call or the answer, by OSC 52 and to a file, since a terminal may ignore OSC 52."""

from __future__ import annotations

import os
from pathlib import Path

from textual.app import App

from rlm_tui.state import SubCall, Turn


def copied_path() -> Path:
    """Where the last copy is also written: the XDG state directory, as the spec says it defaults."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "rlm-tui" / "copied.txt"


def turn_text(turn: Turn) -> str:
    parts = [f"# turn {turn.index}"]
    if turn.text:
        parts.append(turn.text)
    for cell in turn.cells:
        parts.append(f"## cell\n{cell.code}")
        parts.append(f"## output\n{cell.error or cell.output or ''}")
    return "\n\n".join(parts) + "\n"


def call_text(call: SubCall) -> str:
    parts = [f"# sub-LLM call #{call.index} of batch #{call.batch}", f"## prompt\n{call.prompt}"]
    for tool in call.tools:
        parts.append(f"## {tool.name}({tool.arguments!r})\n{tool.error or tool.result}")
    parts.append(f"## {'error' if call.error else 'response'}\n{call.error or call.response or '(still running)'}")
    return "\n\n".join(parts) + "\n"


def copy(app: App, text: str, what: str) -> Path | None:
    """Copy `text` both ways and say where the file is; a file that cannot be written is said, not raised."""
    app.copy_to_clipboard(text)
    path = copied_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        app.notify(f"copied {what} ({len(text):,} chars) by OSC 52; {path} not written: {exc}", severity="warning")
        return None
    app.notify(f"copied {what} ({len(text):,} chars); also in {path}", timeout=4)
    return path
