"""A virtualised view of blocks of lines: only the visible lines are ever turned into strips."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Hashable
from itertools import accumulate

from rich.cells import cell_len, chop_cells
from rich.console import Console, RenderableType
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.reactive import var
from textual.screen import ModalScreen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.timer import Timer

# Control characters would drive the terminal; show them as their Unicode pictures instead.
_VISIBLE = {c: 0x2400 + c for c in range(32) if c not in (9, 10)} | {127: 0x2421}


RESIZE_SETTLE = 0.15  # seconds without a new size before the lines are wrapped again
FOUND = Style(color="black", bgcolor="yellow", bold=True)


class Block:
    """A piece of the view; `key` names it and `fp` changes whenever its content does."""

    def __init__(self, key: Hashable, fp: Hashable) -> None:
        self.key, self.fp = key, fp

    def height(self, width: int, console: Console) -> int:
        raise NotImplementedError

    def line(self, y: int, width: int, console: Console) -> Strip:
        raise NotImplementedError


class RichBlock(Block):
    """A small rich renderable (a header, model text, code), rendered whole once per width."""

    def __init__(self, key: Hashable, fp: Hashable, renderable: RenderableType, gutter: Segment | None = None) -> None:
        super().__init__(key, fp)
        self.renderable, self.gutter = renderable, gutter
        self._width = -1
        self._strips: list[Strip] = []

    def _render(self, width: int, console: Console) -> list[Strip]:
        if width != self._width:
            room = max(1, width - (self.gutter.cell_length if self.gutter else 0))
            lines = console.render_lines(self.renderable, console.options.update(width=room, height=None), pad=False)
            head = [self.gutter] if self.gutter else []
            self._strips, self._width = [Strip([*head, *line]) for line in lines], width
        return self._strips

    def height(self, width: int, console: Console) -> int:
        return len(self._render(width, console))

    def line(self, y: int, width: int, console: Console) -> Strip:
        return self._render(width, console)[y]


class TextBlock(Block):
    """Plain text of any size, folded at the width; rows are computed by arithmetic, strips on demand."""

    def __init__(self, key: Hashable, fp: Hashable, text: str, style: Style | str = "", indent: int = 0) -> None:
        super().__init__(key, fp)
        self.lines = text.expandtabs(4).translate(_VISIBLE).split("\n") if text else [""]
        if len(self.lines) > 1 and self.lines[-1] == "":
            self.lines.pop()
        self.style = Style.parse(style) if isinstance(style, str) else style
        self.indent = indent
        self._width = -1
        self._starts: list[int] = []  # first row of each line
        self._chops: dict[int, list[str]] = {}  # chunks of the lines that are not plain ASCII

    def _layout(self, width: int) -> None:
        if width == self._width:
            return
        room = max(1, width - self.indent)
        self._chops = {}
        counts = []
        for i, text in enumerate(self.lines):
            if text.isascii():
                counts.append(max(1, -(-len(text) // room)))
            else:
                chunks = chop_cells(text, room) if cell_len(text) > room else [text]
                self._chops[i] = chunks
                counts.append(max(1, len(chunks)))
        self._starts = [0, *accumulate(counts)]
        self._width = width

    def height(self, width: int, console: Console) -> int:
        self._layout(width)
        return self._starts[-1]

    def line(self, y: int, width: int, console: Console) -> Strip:
        self._layout(width)
        i = bisect_right(self._starts, y) - 1
        part = y - self._starts[i]
        room = max(1, width - self.indent)
        chunks = self._chops.get(i)
        text = chunks[part] if chunks is not None else self.lines[i][part * room : (part + 1) * room]
        segments = [Segment(" " * self.indent)] if self.indent else []
        return Strip([*segments, Segment(text, self.style)])


class LineView(ScrollView, can_focus=True):
    """Shows a list of blocks; follows the bottom unless the user scrolled up, and counts what is new."""

    BINDINGS = [
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k", "scroll_up", "Up", show=False),
        Binding("end", "follow", "Follow", id="timeline.follow", tooltip="Jump to the bottom and follow what comes"),
    ]
    DEFAULT_CSS = """
    LineView { overflow-x: hidden; overflow-y: scroll; }
    """
    following: var[bool] = var(True)
    unseen: var[int] = var(0)  # lines added below while the user was scrolled up

    def __init__(self, *, follow: bool = True, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.follow = follow
        self.following = follow
        self.blocks: list[Block] = []
        self._starts: list[int] = [0]
        self._width = 0
        self._cache: LRUCache[tuple, Strip] = LRUCache(2000)
        self._resize_timer: Timer | None = None
        self.found: tuple[int, str] | None = None  # (row, query) of the search match shown highlighted

    @property
    def total(self) -> int:
        return self._starts[-1]

    def set_blocks(self, blocks: list[Block]) -> None:
        """Replace the content; blocks that are the same objects as before keep their layout."""
        old = self.blocks
        same = 0
        for a, b in zip(old, blocks):
            if a is not b:
                break
            same += 1
        self.blocks = blocks
        self._relayout(same)

    def _relayout(self, keep: int = 0) -> None:
        width = self._width
        if width <= 0:
            return
        before = self.total
        console = self.app.console
        starts = self._starts[: keep + 1] if keep < len(self._starts) else self._starts[:1]
        for block in self.blocks[len(starts) - 1 :]:
            starts.append(starts[-1] + block.height(width, console))
        self._starts = starts
        self.virtual_size = Size(width, self.total)
        if self.following:
            self.scroll_to(y=max(0, self.total - self.scrollable_content_region.height), animate=False)
        elif self.total > before:
            self.unseen += self.total - before
        self.refresh()

    def on_resize(self) -> None:
        width = self.scrollable_content_region.width
        if width != self._width and self._width > 0:
            # a dragged terminal sends many sizes and each re-wraps every block: lay out once, at the last;
            # until then the old layout shows, cut or padded to the new width
            if self._resize_timer is not None:
                self._resize_timer.stop()
            self._resize_timer = self.set_timer(RESIZE_SETTLE, self._take_width)
        elif width != self._width:
            self._take_width()
        elif self.following:
            self.scroll_end(animate=False, immediate=True)

    def _take_width(self) -> None:
        self._resize_timer = None
        width = self.scrollable_content_region.width
        if width != self._width:
            self._width = width
            self._cache.clear()
            self._relayout(0)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        at_bottom = round(new) >= self.max_scroll_y
        if at_bottom and not self.following and self.follow:
            self.following, self.unseen = True, 0
        elif not at_bottom and self.following and round(new) < round(old):
            self.following = False

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action != "follow" or not isinstance(self.screen, ModalScreen)  # a pop-up's footer keeps to its own keys

    def action_follow(self) -> None:
        self.following, self.unseen = True, 0
        self.scroll_end(animate=False, immediate=True)

    def find(self, query: str) -> list[int]:
        """The rows whose text holds `query`, ignoring case; a match folded across two rows is not found."""
        needle, console, rows = query.casefold(), self.app.console, []
        for block, start, end in zip(self.blocks, self._starts, self._starts[1:]):
            rows.extend(
                start + y for y in range(end - start) if needle in block.line(y, self._width, console).text.casefold()
            )
        return rows

    def show_found(self, row: int, query: str) -> None:
        """Highlight `query` on `row` and scroll it to the middle of the view."""
        self.found = (row, query)
        self.following = False
        self.scroll_to(y=max(0, row - self.scrollable_content_region.height // 2), animate=False, immediate=True)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        row = round(self.scroll_offset.y) + y
        width = self.scrollable_content_region.width
        style = self.rich_style
        if row >= self.total or not self.blocks:
            return Strip.blank(width, style)
        index = bisect_right(self._starts, row) - 1
        block = self.blocks[index]
        key = (block.key, block.fp, width, row - self._starts[index], style)
        strip = self._cache.get(key)
        if strip is None:
            strip = block.line(row - self._starts[index], self._width, self.app.console)
            strip = self._cache[key] = strip.crop_extend(0, width, style).apply_style(style)
        if self.found is not None and self.found[0] == row:  # the search match, never cached
            at = strip.text.casefold().find(self.found[1].casefold())
            if at >= 0:
                before, match, after = strip.divide([at, at + len(self.found[1]), width])
                lit = Strip(Segment.apply_style(list(match), post_style=FOUND), match.cell_length)  # over the row's own
                strip = Strip.join([before, lit, after])
        return strip
