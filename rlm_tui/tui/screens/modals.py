"""Modal screens: the inspect console, text entry, questions with a few answers, help, and one sub-LLM call."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Static, TextArea
from textual.widgets.button import ButtonVariant

from rlm_tui.state import Cell, RolloutState, SubCall
from rlm_tui.text import printable
from rlm_tui.tui import fmt
from rlm_tui.tui.screens.view import SessionView
from rlm_tui.tui.session import Session
from rlm_tui.tui.widgets.lines import RichBlock, TextBlock
from rlm_tui.tui.widgets.subtree import tool_label
from rlm_tui.tui.widgets.timeline import Timeline

SHARE_LIMIT = 8192  # characters of an inspect output shared with the model


def share_message(cell: Cell) -> str:
    output = cell.shown if cell.shown is not None else cell.output or ""
    if len(output) > SHARE_LIMIT:
        output = output[:SHARE_LIMIT] + f"\n[... {len(output) - SHARE_LIMIT:,} more characters not shown]"
    return (
        f"The operator ran this code in your REPL:\n```python\n{cell.code}\n```\n"
        f"Output:\n```\n{output or '(no output)'}\n```"
    )


class Console(Timeline):
    """The inspect console's history: the operator's cells of this session, oldest first."""

    def show_cells(self, cells: list[Cell]) -> None:
        blocks = []
        for cell in cells:
            blocks += self._cell(cell, {}, {}, 0)
        if not blocks:
            blocks = [
                self._line(
                    "hint",
                    "Type Python below and press ctrl+r. The namespace is the rollout's own: "
                    "`answer`, `context` and whatever the model defined. The model never sees this.",
                    "dim",
                )
            ]
        self.set_blocks(blocks)


class InspectScreen(SessionView, ModalScreen):
    """A console over a paused rollout's live REPL, through the exec command."""

    CSS_PATH = "modals.tcss"
    BINDINGS = [
        Binding("ctrl+r", "run", "Run", id="inspect.run", tooltip="Run the code in the rollout's REPL"),
        Binding(
            "ctrl+s",
            "share",
            "Share with model",
            id="inspect.share",
            tooltip="Send the last cell and its output to the model as a message",
        ),
        Binding("escape", "close", "Close", id="inspect.close", priority=True),
    ]

    def __init__(self, session: Session, rollout_id: str) -> None:
        super().__init__()
        self.session, self.rollout_id = session, rollout_id
        self.sent: list[tuple[str, int]] = []  # (code, operator cells before it was sent)
        self._fp: tuple | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("", id="inspect-title")
            yield Console(id="console")
            yield TextArea(id="code", soft_wrap=True, tab_behavior="indent", show_line_numbers=False)
            yield Footer()

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()
        self.ready = True
        self.refresh_view()

    def _rollout(self) -> RolloutState | None:
        return self.session.rollout(self.rollout_id)

    def cells(self) -> list[Cell]:
        """The cells this console sent, matched by code in the order they ran."""
        r = self._rollout()
        if r is None:
            return []
        out: list[Cell] = []
        taken: set[int] = set()
        for code, before in self.sent:
            match = next(
                (
                    c
                    for i, c in enumerate(r.operator_cells)
                    if i >= before and i not in taken and c.code == printable(code)
                ),
                None,
            )
            if match is None:
                out.append(Cell(id=f"pending-{len(out)}", turn=0, code=printable(code), source="operator"))
            else:
                taken.add(r.operator_cells.index(match))
                out.append(match)
        return out

    def refresh_view(self) -> None:
        r = self._rollout()
        if r is None:
            return
        cells = self.cells()
        fp = tuple((c.id, c.output is not None) for c in cells) + (r.paused, r.status)
        if fp == self._fp:
            return
        self._fp = fp
        state = "paused" if r.paused else r.status
        note = () if r.paused else (" · ", ("not paused: code runs at its next safe point", "yellow"))
        self.query_one("#inspect-title", Static).update(
            Content.assemble(
                ("inspect", "bold"),
                f" rollout #{r.index} · ",
                (state, "yellow"),
                *note,
                " · ",
                ("ctrl+r run · ctrl+s share the last cell with the model · escape close", "dim"),
            )
        )
        self.query_one(Console).show_cells(cells)

    def action_run(self) -> None:
        area = self.query_one(TextArea)
        code = area.text.strip("\n")
        r = self._rollout()
        if not code.strip() or r is None:
            return
        self.sent.append((code, len(r.operator_cells)))
        self.session.send("exec", self.rollout_id, code)
        area.clear()
        self._fp = None
        self.refresh_view()

    def action_share(self) -> None:
        done = [c for c in self.cells() if c.output is not None]
        if not done:
            self.notify("run a cell first: its code and output are what the model gets", severity="warning")
            return
        if self.session.send("inject", self.rollout_id, share_message(done[-1])):
            self.notify("the model gets the last cell and its output before its next turn", timeout=3, markup=False)

    def action_close(self) -> None:
        self.dismiss()


class TextScreen(ModalScreen[str | None]):
    """Text from the operator: a message or a new answer (several lines), or a turn number or query (`one_line`)."""

    CSS_PATH = "modals.tcss"
    BINDINGS = [
        Binding("ctrl+s", "submit", "Send", id="text.submit"),
        Binding("escape", "cancel", "Cancel", id="text.cancel", priority=True),
    ]

    def __init__(self, title: str, text: str, verb: str, one_line: bool = False) -> None:
        super().__init__()
        self.title_text, self.text, self.verb, self.one_line = title, text, verb, one_line

    def compose(self) -> ComposeResult:
        keys = f"· {'enter' if self.one_line else 'ctrl+s'} {self.verb.lower()} · escape cancel"
        with Vertical(id="dialog", classes="-tiny" if self.one_line else "-small"):
            yield Static(Content.assemble((self.title_text, "bold"), " ", (keys, "dim")))
            yield Input(self.text, id="text") if self.one_line else TextArea(self.text, id="text", soft_wrap=True)
            with Horizontal(classes="buttons"):
                yield Button(self.verb, variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        field = self.query_one("#text")
        field.focus()
        if isinstance(field, TextArea):
            field.move_cursor(field.document.end)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_submit() if event.button.id == "ok" else self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def action_submit(self) -> None:
        field = self.query_one("#text")
        self.dismiss(field.value if isinstance(field, Input) else field.text if isinstance(field, TextArea) else "")

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class Choice:
    """One answer to a question: the keys that give it, its button, and what the question is dismissed with."""

    keys: tuple[str, ...]
    label: str
    result: object
    variant: ButtonVariant = "default"


class ChoiceScreen(ModalScreen[object]):
    """A question answered by a key or a button; `name` says which question, for the code that asked it."""

    CSS_PATH = "modals.tcss"

    def __init__(self, name: str, question: Content, choices: list[Choice]) -> None:
        super().__init__(name=name)
        self.question, self.choices = question, choices

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="-tiny"):
            yield Static(self.question)
            with Horizontal(classes="buttons"):
                for i, choice in enumerate(self.choices):
                    yield Button(choice.label, variant=choice.variant, id=f"choice-{i}")

    def on_key(self, event: events.Key) -> None:
        for choice in self.choices:
            if event.key in choice.keys:
                event.stop()
                self.dismiss(choice.result)
                return

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(self.choices[int(str(event.button.id).removeprefix("choice-"))].result)


def confirm_kill(label: str) -> ChoiceScreen:
    """Killing a rollout: True to kill it."""
    return ChoiceScreen(
        "kill",
        Content(f"Kill {label}? It ends with no reward."),
        [Choice(("y",), "Kill (y)", True, "error"), Choice(("n", "escape"), "Cancel (n)", False)],
    )


def quit_engine() -> ChoiceScreen:
    """Quitting while the run this app started is still going: 'stop', 'leave', or None to stay."""
    return ChoiceScreen(
        "quit",
        Content.from_markup(
            "The run this app started is still going. Stop it (it is recorded as killed), "
            "or leave it running and follow it later with [b]rlm-tui attach[/b]?"
        ),
        [
            Choice(("s",), "Stop and quit (s)", "stop", "error"),
            Choice(("l",), "Leave running (l)", "leave"),
            Choice(("escape", "n"), "Cancel", None),
        ],
    )


def leave_paused() -> ChoiceScreen:
    """Leaving a run that is paused, when nobody would be left to resume it: 'resume', 'paused', or None to stay."""
    return ChoiceScreen(
        "leave",
        Content.from_markup(
            "The run, or some of its rollouts, is paused or waits for you to approve its cells: with nobody here "
            "it waits until someone resumes it. Resume it now (cells then run without approval), or leave it "
            "waiting (go on later with [b]rlm-tui attach[/b])?"
        ),
        [
            Choice(("r",), "Resume and quit (r)", "resume", "primary"),
            Choice(("p",), "Leave it waiting (p)", "paused"),
            Choice(("escape", "n"), "Cancel", None),
        ],
    )


class HelpScreen(ModalScreen):
    """The keys of the view below, grouped as in the command palette."""

    CSS_PATH = "modals.tcss"
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close", id="help.close")]

    def __init__(self, under: Screen) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        groups: dict[str, list[tuple[str, str]]] = {}
        seen = set()
        for active in self.under.active_bindings.values():
            b = active.binding
            if not b.id or "." not in b.id or b.action in seen:
                continue  # the widgets' own scrolling keys are not ours to explain
            seen.add(b.action)
            groups.setdefault(b.id.split(".")[0], []).append((self.app.get_key_display(b), b.tooltip or b.description))
        groups.setdefault("app", []).extend(
            [
                ("ctrl+p", "Every action, by name"),
                ("j / k", "Down / up"),
                ("tab", "Next pane"),
                ("enter", "Open the highlighted row or node"),
            ]
        )
        text = Text()
        for group, rows in groups.items():
            text.append(f"{group}\n", style="bold cyan")
            for key, what in rows:
                text.append(f"  {key:>10}  ", style="bold")
                text.append(f"{what}\n")
        with Vertical(id="dialog", classes="-small"):
            yield Static("[b]keys[/b] [dim]· escape closes[/]")
            with VerticalScroll(id="help-scroll"):
                yield Static(text, id="help-text")

    def action_close(self) -> None:
        self.dismiss()


class CallScreen(ModalScreen):
    """One sub-LLM call in full: prompt, tool calls, response."""

    CSS_PATH = "modals.tcss"
    BINDINGS = [
        Binding("escape,q", "close", "Close", id="call.close"),
        Binding("y", "copy", "Copy", id="call.copy", tooltip="Copy the whole call"),
    ]

    def __init__(self, call: SubCall) -> None:
        super().__init__()
        self.call = call

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Console(id="console", follow=False)
            yield Footer()

    def on_mount(self) -> None:
        c = self.call
        head = Text(f"sub-LLM call #{c.index} of batch #{c.batch}", style="bold")
        head.append(
            f" · {c.turns} turns · {c.prompt_tokens:,}+{c.completion_tokens:,} tok · {fmt.seconds(c.latency_s)}",
            style="dim",
        )
        blocks = [
            RichBlock("head", 0, head),
            RichBlock("p", 0, Text("prompt", style="bold cyan")),
            TextBlock("prompt", 0, c.prompt, indent=2),
        ]
        for i, tool in enumerate(c.tools):  # the tree cuts a tool call to a line; here it is whole, wrapped
            blocks.append(RichBlock(("tool", i), 0, tool_label(tool)))
            for name, value in tool.arguments.items():
                blocks.append(TextBlock(("arg", i, name), 0, f"{name} = {value!r}", style="yellow", indent=2))
            blocks.append(TextBlock(("result", i), 0, tool.error or tool.result, indent=4))
        blocks.append(
            RichBlock("r", 0, Text("error" if c.error else "response", style="bold red" if c.error else "bold green"))
        )
        blocks.append(TextBlock("response", 0, c.error or c.response or "(still running)", indent=2))
        view = self.query_one(Console)
        view.set_blocks(blocks)
        view.focus()

    def action_copy(self) -> None:
        from rlm_tui.tui import copy

        copy.copy(self.app, copy.call_text(self.call), f"sub-LLM call #{self.call.index}")

    def action_close(self) -> None:
        self.dismiss()
