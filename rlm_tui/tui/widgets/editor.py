"""A text area that goes to the start and end of its text with ctrl+home and ctrl+end, as editors do."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import TextArea


class Editor(TextArea):
    BINDINGS = [
        Binding("ctrl+home", "text_start", "Start of text", show=False),
        Binding("ctrl+end", "text_end", "End of text", show=False),
    ]

    def action_text_start(self) -> None:
        self.move_cursor((0, 0))

    def action_text_end(self) -> None:
        self.move_cursor(self.document.end)
