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

    def set_column_width(self, key: str, width: int) -> None:
        """A fixed column's new width; DataTable has no public way, so its own re-measure is asked for."""
        column = self.columns[key]  # type: ignore[index]
        if column.width == width:
            return
        column.width = width
        self._require_update_dimensions = True
        self._clear_caches()
        self.refresh()

    def width_left_for(self, key: str) -> int:
        """The width column `key` can have for the row to fill the table, the other columns as they are."""
        others = sum(c.get_render_width(self) for k, c in self.columns.items() if k != key)
        return self.scrollable_content_region.width - others - 2 * self.cell_padding
