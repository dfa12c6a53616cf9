"""What the run and rollout views share: the operator's controls and the replay keys."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.screen import Screen

from rlm_tui.state import RolloutState
from rlm_tui.tui import fmt

REPLAY_ACTIONS = {"replay_play", "replay_pause", "replay_step", "replay_back", "replay_next_turn",
                  "replay_prev_turn", "replay_faster", "replay_slower", "replay_start", "replay_end"}
ROLLOUT_ACTIONS = {"pause", "resume", "step", "inspect", "inject", "edit", "finish", "kill"}
RUN_ACTIONS = {"run_pause", "run_resume"}

# space is a priority key, so that the sub-LLM tree's own space (expand) does not swallow it when focused
CONTROL_BINDINGS = [
    Binding("space", "pause", "Pause", id="rollout.pause", tooltip="Pause the rollout before its next model call",
            priority=True),
    Binding("space", "resume", "Resume", id="rollout.resume", tooltip="Let the paused rollout go on", priority=True),
    Binding("s", "step", "Step", id="rollout.step", tooltip="Run one more turn, then pause"),
    Binding("i", "inspect", "Inspect", id="rollout.inspect", tooltip="A console on the paused rollout's REPL"),
    Binding("m", "inject", "Message", id="rollout.inject", tooltip="Send the model a message before its next turn"),
    Binding("e", "edit", "Edit answer", id="rollout.edit_answer", tooltip="Replace the answer's content"),
    Binding("f", "finish", "Finish", id="rollout.finish", tooltip="Stop the rollout now and score its answer"),
    Binding("K", "kill", "Kill", id="rollout.kill", tooltip="Stop the rollout without a score"),
    Binding("P", "run_pause", "Pause run", id="run.pause", tooltip="Pause every rollout of the run"),
    Binding("P", "run_resume", "Resume run", id="run.resume", tooltip="Let every rollout of the run go on"),
]
REPLAY_BINDINGS = [
    Binding("space", "replay_play", "Play", id="replay.play", tooltip="Play the recorded events at their pace",
            priority=True),
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


class RunBase(Screen):
    """A view of the open run; subclasses say which rollout the controls act on."""

    BINDINGS = [Binding("escape", "back", "Back", id="view.back"), *CONTROL_BINDINGS, *REPLAY_BINDINGS]

    def target(self) -> RolloutState | None:
        return None

    ready = False  # set once composed and mounted; the app's refresh waits for it
    _keys_fp: Any = None

    def on_screen_resume(self) -> None:
        if self.ready:
            self.refresh_view()

    def refresh_view(self) -> None:
        pass

    def sync_keys(self) -> None:
        """Redraw the footer when what its keys act on changed: a pause took effect, a rollout or the run ended."""
        app: Any = self.app
        r = self.target()
        fp = (app.controls_enabled, app.feed is not None and app.feed.state.paused, frozenset(app.pausing),
              r and (r.id, r.status, r.paused))
        if fp != self._keys_fp:
            self._keys_fp = fp
            app.refresh_bindings()

    def show_replay_bar(self) -> None:
        """The replay position, redrawn only when its text changes (an update costs a layout)."""
        app: Any = self.app
        text = replay_line(app) if app.mode == "replay" else ""
        if text != getattr(self, "_replay_text", None):
            self._replay_text = text
            bar = self.query_one("#replay-bar")
            bar.update(text)
            bar.display = bool(text)

    def action_back(self) -> None:
        self.app.pop_screen()

    # --- which keys apply now ---------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        app: Any = self.app
        if action in REPLAY_ACTIONS:
            if app.mode != "replay" or app.replay is None:
                return False
            playing = app.replay.playing
            return not (action == "replay_play" and playing or action == "replay_pause" and not playing)
        if action in RUN_ACTIONS:
            if not app.controls_enabled:
                return False
            paused = app.feed.state.paused or None in app.pausing
            return paused == (action == "run_resume")
        if action in ROLLOUT_ACTIONS:
            r = self.target()
            if not app.controls_enabled or r is None or r.status not in ("queued", "running"):
                return False
            if action in ("pause", "resume"):
                paused = r.paused or r.id in app.pausing
                return paused == (action == "resume")
        return True

    # --- controls -----------------------------------------------------------------------------

    def _label(self, r: RolloutState) -> str:
        return f"rollout #{r.index}"

    def action_pause(self) -> None:
        if r := self.target():
            self.app.send("pause", r.id, note=f"{self._label(r)}: pausing before its next model call")
            self.app.refresh_bindings()

    def action_resume(self) -> None:
        if r := self.target():
            self.app.send("resume", r.id, note=f"{self._label(r)}: resumed")
            self.app.refresh_bindings()

    def action_step(self) -> None:
        if r := self.target():
            self.app.send("step", r.id, note=f"{self._label(r)}: one more turn, then paused")

    def action_inspect(self) -> None:
        from rlm_tui.tui.screens.modals import InspectScreen

        r = self.target()
        if r is None:
            return
        if not r.paused:
            self.app.notify("inspect works on a paused rollout: press space to pause it first", severity="warning")
            return
        self.app.push_screen(InspectScreen(r.id))

    def action_inject(self) -> None:
        from rlm_tui.tui.screens.modals import TextScreen

        if r := self.target():
            def send(text: str | None) -> None:
                if text:
                    self.app.send("inject", r.id, text, note=f"{self._label(r)}: the model gets your message next turn")

            self.app.push_screen(TextScreen(f"Message to the model of {self._label(r)}", "", "Send"), send)

    def action_edit(self) -> None:
        from rlm_tui.tui.screens.modals import TextScreen

        if r := self.target():
            def send(text: str | None) -> None:
                if text is not None:
                    self.app.send("edit_answer", r.id, text, note=f"{self._label(r)}: answer edited")

            content = str(r.answer.get("content", ""))
            self.app.push_screen(TextScreen(f"Answer of {self._label(r)}", content, "Save"), send)

    def action_finish(self) -> None:
        if r := self.target():
            self.app.send("finish", r.id, note=f"{self._label(r)}: finishing and scoring")

    def action_kill(self) -> None:
        from rlm_tui.tui.screens.modals import ConfirmScreen

        if r := self.target():
            def kill(yes: bool | None) -> None:
                if yes:
                    self.app.send("kill", r.id, note=f"{self._label(r)}: killed")

            self.app.push_screen(ConfirmScreen(f"Kill {self._label(r)}? It ends with no reward.", "Kill"), kill)

    def action_run_pause(self) -> None:
        self.app.send("pause", note="run: pausing every rollout")
        self.app.refresh_bindings()

    def action_run_resume(self) -> None:
        self.app.send("resume", note="run: resumed")
        self.app.refresh_bindings()

    # --- replay -------------------------------------------------------------------------------

    def _replay(self, move: Any) -> None:
        replay = self.app.replay
        if replay is not None:
            move(replay)
            self.app.refresh_bindings()
            self.app.refresh_view()

    def action_replay_play(self) -> None:
        self._replay(lambda r: r.toggle())

    def action_replay_pause(self) -> None:
        self._replay(lambda r: r.toggle())

    def action_replay_step(self) -> None:
        self._replay(lambda r: r.seek(r.position + 1))

    def action_replay_back(self) -> None:
        self._replay(lambda r: r.seek(r.position - 1))

    def action_replay_next_turn(self) -> None:
        rid = getattr(self.target(), "id", None) if self.turns_of_target else None
        self._replay(lambda r: r.step_turn(True, rid))

    def action_replay_prev_turn(self) -> None:
        rid = getattr(self.target(), "id", None) if self.turns_of_target else None
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


def replay_line(app: Any) -> str:
    """▶ ×2 · event 1,234/5,678 · 0:12/1:30, as rich markup."""
    replay = app.replay
    if replay is None:
        return f"[dim]loading… {app.feed.count:,} events[/]" if app.loading and app.feed else ""
    played, total = replay.elapsed
    state = "[bold green]▶ playing[/]" if replay.playing else "[bold]⏸ stopped[/]"
    width = 30
    filled = round(width * replay.position / max(1, len(replay.events)))
    bar = f"[green]{'━' * filled}[/][dim]{'━' * (width - filled)}[/]"
    return (f"{state} ×{replay.speed:g} · event {replay.position:,}/{len(replay.events):,} {bar} "
            f"{fmt.seconds(played)} / {fmt.seconds(total)}")
