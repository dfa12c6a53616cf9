"""Two runs' rollouts of the same example side by side, turn by turn, with what differs marked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from rlm_tui.compare import PARTS, Comparison, clipped, compare, paired_rollouts, value
from rlm_tui.state import RolloutState, RunState, fold
from rlm_tui.store import open_db, read_events
from rlm_tui.text import printable
from rlm_tui.tui import fmt

LINES = 20  # of each value shown per turn
WIDTH = 400  # characters of a line, before the table wraps it
MARK = "reverse"


@dataclass
class ComparisonRead(Message):
    """The two runs, folded, and their rollouts paired by example."""

    runs: tuple[RunState, RunState] | None
    pairs: list[tuple[RolloutState, RolloutState]]
    error: str | None = None


@dataclass
class ComparisonShown(Message):
    """One pair's comparison, drawn off the event loop: long outputs take a while to cut and diff."""

    comparison: Comparison
    title: Text
    summary: Table
    turns: Table


def _marked(text: str, other: str) -> Text:
    shown, spans, hidden = clipped(text, other, lines=LINES, width=WIDTH)
    out = Text(shown)
    for start, end in spans:
        out.stylize(MARK, start, end)
    if hidden:
        out.append(f"\n… {hidden} more lines", style="dim")
    return out


def summary_table(c: Comparison) -> Table:
    table = Table(title="summary", title_justify="left", expand=False)
    for column in ("", "A", "B"):
        table.add_column(column, justify="right" if column else "left")
    for (label, a), (_, b) in zip(c.a.cells(), c.b.cells()):
        table.add_row(label, Text(a), Text(b))
    return table


def turns_table(c: Comparison) -> Table:
    table = Table(expand=True, show_lines=True)
    table.add_column("turn", no_wrap=True, width=8)
    table.add_column("A", ratio=1)
    table.add_column("B", ratio=1)
    for pair in c.pairs:
        what = Text(f"{pair.index}", style="bold")
        what.append(
            "\n" + ("same" if not pair.differs else "\n".join(f"≠ {part}" for part in pair.differs)), style="yellow"
        )
        cells: list[Text] = []
        for mine, theirs in ((pair.a, pair.b), (pair.b, pair.a)):
            if mine is None:
                cells.append(Text("(no such turn)", style="dim"))
                continue
            out = Text()
            for part in PARTS:
                text = value(mine, part)
                if not text:
                    continue
                other = value(theirs, part) if theirs is not None else ""
                if out:
                    out.append("\n")
                mark = "≠" if part in pair.differs else "="
                out.append(f"{mark} {part}\n", style="bold yellow" if mark == "≠" else "dim")
                out.append_text(_marked(text, other) if mark == "≠" else _marked(text, text))
            cells.append(out or Text("(nothing)", style="dim"))
        table.add_row(what, *cells)
    return table


def _heading(name: str, run: RunState, r: RolloutState) -> str:
    return f"{name}  {r.id} · {run.env} [{run.mode}] · {run.model} · example {r.example_id}"


class CompareScreen(Screen):
    """The rollouts of two runs on the same examples, one pair at a time."""

    CSS_PATH = "compare.tcss"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="compare.back"),
        Binding("l", "pair(1)", "Next pair", id="compare.next", tooltip="The next example both runs have"),
        Binding("h", "pair(-1)", "Previous pair", id="compare.previous", tooltip="The previous example"),
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k", "scroll_up", "Up", show=False),
    ]

    def __init__(self, db_path: Path, run_ids: tuple[str, str]) -> None:
        super().__init__()
        self.db_path, self.run_ids = db_path, run_ids
        self.runs: tuple[RunState, RunState] | None = None
        self.pairs: list[tuple[RolloutState, RolloutState]] = []
        self.at = 0
        self.comparison: Comparison | None = None

    def compose(self) -> ComposeResult:
        yield Static(Content.assemble(("compare", "bold"), " ", ("· reading…", "dim")), id="compare-title")
        with VerticalScroll(id="compare-body"):
            yield Static(id="compare-summary")
            yield Static(id="compare-turns")
        yield Footer()

    def on_mount(self) -> None:
        self._read()

    def action_scroll_down(self) -> None:
        self.query_one("#compare-body", VerticalScroll).scroll_down()

    def action_scroll_up(self) -> None:
        self.query_one("#compare-body", VerticalScroll).scroll_up()

    def action_pair(self, step: int) -> None:
        if self.pairs:
            self.at = (self.at + step) % len(self.pairs)
            self._show()

    @work(thread=True, exclusive=True, group="compare")
    def _read(self) -> None:
        try:
            db = open_db(self.db_path, create=False)
            try:
                a, b = (fold([e for _, e in read_events(db, run_id=i)], i) for i in self.run_ids)
            finally:
                db.close()
            self.post_message(ComparisonRead((a, b), paired_rollouts(a, b)))
        except Exception as exc:  # a locked or damaged database: one line in the view
            self.post_message(ComparisonRead(None, [], fmt.one_line(f"cannot read the runs: {exc}", 500)))

    def on_comparison_read(self, message: ComparisonRead) -> None:
        self.runs, self.pairs, self.at = message.runs, message.pairs, 0
        if message.error or not self.pairs:
            reason = message.error or "the runs have no rollouts to compare"
            self.query_one("#compare-title", Static).update(Content.styled(reason, "red"))
            return
        self._show()

    def _show(self) -> None:
        assert self.runs is not None
        self._build(self.runs, self.pairs[self.at], f"pair {self.at + 1} of {len(self.pairs)}")

    @work(thread=True, exclusive=True, group="compare-render")
    def _build(self, runs: tuple[RunState, RunState], pair: tuple[RolloutState, RolloutState], where: str) -> None:
        c = compare(*pair)
        title = Text("compare", style="bold")
        title.append(f" · {where} · {c.same_turns} of {len(c.pairs)} turns the same")
        for name, run, r in zip("AB", runs, pair):
            title.append("\n" + printable(_heading(name, run, r)), style="dim")
        self.post_message(ComparisonShown(c, title, summary_table(c), turns_table(c)))

    def on_comparison_shown(self, message: ComparisonShown) -> None:
        self.comparison = message.comparison
        self.query_one("#compare-title", Static).update(message.title)
        self.query_one("#compare-summary", Static).update(message.summary)
        self.query_one("#compare-turns", Static).update(message.turns)
