"""A data table with vim's j/k and enter to open the highlighted row."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable


class VimTable(DataTable):
    BINDINGS = [
        Binding("enter", "select_cursor", "Open", id="view.open", tooltip="Open the highlighted row"),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]
