"""What the run and rollout views share: the operator's controls and the replay keys."""

from __future__ import annotations

from collections.abc import Callable

from textual.binding import ActiveBinding, Binding
from textual.screen import Screen
from textual.widgets import Static

from rlm_tui.state import RolloutState
from rlm_tui.tui.screens.view import SessionView
from rlm_tui.tui.session import Session
from rlm_tui.tui.sources import Replay

# space is a priority key, so that the sub-LLM tree's own space (expand) does not swallow it when focused
CONTROL_BINDINGS = [
    Binding(
        "space",
        "pause",
        "Pause",
        id="rollout.pause",
        tooltip="Pause the rollout before its next model call",
        priority=True,
    ),
    Binding("space", "resume", "Resume", id="rollout.resume", tooltip="Let the paused rollout go on", priority=True),
    Binding("d", "decide", "Decide", id="rollout.decide", tooltip="Run, edit, skip or answer the proposed cell"),
    Binding("a", "approval_on", "Approve", id="rollout.approval_on", tooltip="Each proposed cell waits for you"),
    Binding("a", "approval_off", "Approve off", id="rollout.approval_off", tooltip="Cells run as proposed again"),
    Binding("s", "step", "Step", id="rollout.step", tooltip="Run one more turn, then pause"),
    Binding("i", "inspect", "Inspect", id="rollout.inspect", tooltip="A console on the paused rollout's REPL"),
    Binding("m", "inject", "Message", id="rollout.inject", tooltip="Send the model a message before its next turn"),
    Binding("e", "edit", "Edit answer", id="rollout.edit_answer", tooltip="Replace the answer's content"),
    Binding("f", "finish", "Finish", id="rollout.finish", tooltip="Stop the rollout now and score its answer"),
    Binding("K", "kill", "Kill", id="rollout.kill", tooltip="Stop the rollout without a score"),
    Binding("P", "run_pause", "Pause run", id="run.pause", tooltip="Pause every rollout of the run"),
    Binding("P", "run_resume", "Resume run", id="run.resume", tooltip="Let every rollout of the run go on"),
]
FIRST_KEYS = ("app.quit", "app.help")
REPLAY_BINDINGS = [
    Binding(
        "space",
        "replay_play",
        "Play",
        id="replay.play",
        tooltip="Play the recorded events at their pace",
        priority=True,
    ),
    Binding("space", "replay_pause", "Stop", id="replay.pause", tooltip="Stop playing", priority=True),
    Binding("l", "replay_step", "Event →", id="replay.step_forward", tooltip="One event forward"),
    Binding("h", "replay_back", "← Event", id="replay.step_back", tooltip="One event back"),
    Binding("L", "replay_next_turn", "Turn →", id="replay.next_turn", tooltip="To the next model turn"),
    Binding("H", "replay_prev_turn", "← Turn", id="replay.previous_turn", tooltip="To the previous model turn"),
    Binding("plus", "replay_faster", "Faster", id="replay.faster", tooltip="Double the speed"),
    Binding("minus", "replay_slower", "Slower", id="replay.slower", tooltip="Halve the speed"),
    Binding("g", "replay_start", "Start", id="replay.start", tooltip="Back to the first event"),
    Binding("G", "replay_end", "End", id="replay.end", tooltip="To the last event"),
]


class RunBase(SessionView, Screen):
    """A view of the open run; subclasses say which rollout the controls act on."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="view.back"),
        Binding("w", "widen", "Wide", id="view.widen", tooltip="The transcript at full width, or beside its panes"),
        *CONTROL_BINDINGS,
        *REPLAY_BINDINGS,
    ]

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self._keys_fp: tuple | None = None
        self._replay_text: str | None = None

    def target(self) -> RolloutState | None:
        return None

    def on_screen_resume(self) -> None:
        if self.ready:
            self.refresh_view()

    def sync_keys(self) -> None:
        """Redraw the footer when what its keys act on changed: a pause took effect, a rollout or the run ended."""
        fp = self.session.keys_fingerprint(self.target())
        if fp != self._keys_fp:
            self._keys_fp = fp
            self.app.refresh_bindings()

    def show_replay_bar(self) -> None:
        """The engine's death or the replay position, redrawn only when its text changes (an update costs a layout)."""
        text = self.session.banner() or self.session.replay_line()
        if text != self._replay_text:
            self._replay_text = text
            bar = self.query_one("#replay-bar", Static)
            bar.update(text)
            bar.display = bool(text)

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        """Quit and help first, so that a narrow footer still shows them."""
        bindings = super().active_bindings
        first = {k: b for k, b in bindings.items() if b.binding.id in FIRST_KEYS}
        return first | bindings

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_widen(self) -> None:
        self.toggle_class("-transcript-wide")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "widen":
            return bool(self.query("#ro-side"))  # only the rollout view has panes beside its transcript
        return self.session.allows(action, self.target())

    # --- controls -----------------------------------------------------------------------------

    def _label(self, r: RolloutState) -> str:
        return f"rollout #{r.index}"

    def _send(self, action: str, rollout_id: str | None = None, text: str = "", note: str = "") -> None:
        if self.session.send(action, rollout_id, text) and note:
            self.notify(note, timeout=3, markup=False)

    def action_pause(self) -> None:
        if r := self.target():
            self._send("pause", r.id, note=f"{self._label(r)}: pausing before its next model call")
            self.app.refresh_bindings()

    def action_resume(self) -> None:
        if r := self.target():
            self._send("resume", r.id, note=f"{self._label(r)}: resumed")
            self.app.refresh_bindings()

    def action_step(self) -> None:
        if r := self.target():
            self._send("step", r.id, note=f"{self._label(r)}: one more turn, then paused")

    def action_inspect(self) -> None:
        from rlm_tui.tui.screens.modals import InspectScreen

        r = self.target()
        if r is None:
            return
        if not r.paused:
            self.notify("inspect works on a paused rollout: press space to pause it first", severity="warning")
            return
        self.app.push_screen(InspectScreen(self.session, r.id))

    def action_inject(self) -> None:
        from rlm_tui.tui.screens.modals import TextScreen

        if r := self.target():

            def send(text: str | None) -> None:
                if text:
                    self._send("inject", r.id, text, note=f"{self._label(r)}: the model gets your message next turn")

            self.app.push_screen(TextScreen(f"Message to the model of {self._label(r)}", "", "Send"), send)

    def action_edit(self) -> None:
        from rlm_tui.tui.screens.modals import TextScreen

        if r := self.target():

            def send(text: str | None) -> None:
                if text is not None:
                    self._send("edit_answer", r.id, text, note=f"{self._label(r)}: answer edited")

            content = str(r.answer.get("content", ""))
            self.app.push_screen(TextScreen(f"Answer of {self._label(r)}", content, "Save"), send)

    def action_finish(self) -> None:
        if r := self.target():
            self._send("finish", r.id, note=f"{self._label(r)}: finishing and scoring")

    def action_kill(self) -> None:
        from rlm_tui.tui.screens.modals import confirm_kill

        if r := self.target():

            def kill(yes: object) -> None:
                if yes:
                    self._send("kill", r.id, note=f"{self._label(r)}: killed")

            self.app.push_screen(confirm_kill(self._label(r)), kill)

    def action_approval_on(self) -> None:
        if r := self.target():
            self._send("approval", r.id, "on", note=f"{self._label(r)}: each proposed cell now waits for you (d)")
            self.app.refresh_bindings()

    def action_approval_off(self) -> None:
        if r := self.target():
            self._send("approval", r.id, "off", note=f"{self._label(r)}: cells run as proposed again")
            self.app.refresh_bindings()

    def action_decide(self) -> None:
        from rlm_tui.tui.screens.approve import ApproveScreen, Decision

        r = self.target()
        if r is None or r.waiting is None:
            return
        proposal = r.waiting

        def decide(decision: Decision | None) -> None:
            if decision is None:
                return
            current = self.target()
            if current is None or current.waiting is not proposal:  # decided elsewhere, or the rollout ended
                self.notify("that cell is no longer waiting", severity="warning", timeout=3)
                return
            notes = {"approve": "running the cell", "skip": "cell skipped", "reply": "reply sent instead"}
            self._send(decision.action, r.id, decision.text, note=f"{self._label(r)}: {notes[decision.action]}")

        self.app.push_screen(ApproveScreen(self._label(r), proposal), decide)

    def action_run_pause(self) -> None:
        self._send("pause", note="run: pausing every rollout")
        self.app.refresh_bindings()

    def action_run_resume(self) -> None:
        self._send("resume", note="run: resumed")
        self.app.refresh_bindings()

    # --- replay -------------------------------------------------------------------------------

    def _replay(self, move: Callable[[Replay], None]) -> None:
        replay = self.session.replay
        if replay is not None:
            move(replay)
            self.app.refresh_bindings()
            self.refresh_view()

    def action_replay_play(self) -> None:
        self._replay(lambda r: r.toggle())

    def action_replay_pause(self) -> None:
        self._replay(lambda r: r.toggle())

    def action_replay_step(self) -> None:
        self._replay(lambda r: r.seek(r.position + 1))

    def action_replay_back(self) -> None:
        self._replay(lambda r: r.seek(r.position - 1))

    def _turn_rollout(self) -> str | None:
        target = self.target() if self.turns_of_target else None
        return target.id if target else None

    def action_replay_next_turn(self) -> None:
        rid = self._turn_rollout()
        self._replay(lambda r: r.step_turn(True, rid))

    def action_replay_prev_turn(self) -> None:
        rid = self._turn_rollout()
        self._replay(lambda r: r.step_turn(False, rid))

    def action_replay_faster(self) -> None:
        self._replay(lambda r: r.faster(1))

    def action_replay_slower(self) -> None:
        self._replay(lambda r: r.faster(-1))

    def action_replay_start(self) -> None:
        self._replay(lambda r: r.seek(0))

    def action_replay_end(self) -> None:
        self._replay(lambda r: r.seek(len(r.events)))

    turns_of_target = False  # turn steps follow the focused rollout (rollout view) or any rollout (run view)
