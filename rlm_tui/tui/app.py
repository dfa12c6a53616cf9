"""The app: one run folded from a tail or a replay, rendered by whichever screen is on top."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import ModalScreen, Screen

from rlm_tui import events as ev
from rlm_tui.store import get_run, open_db
from rlm_tui.text import printable
from rlm_tui.tui.sources import CommandSender, Feed, Replay, TailSource, load_events

REFRESH_HZ = 15
DEFAULT_CONTEXT_LIMIT = 128_000
ERROR_PREFIX = "rlm-tui: error: "


class EventsArrived(Message):
    """One poll's worth of a tailed run's events."""

    def __init__(self, source: TailSource, events: list[ev.Event], over: bool) -> None:
        super().__init__()
        self.source, self.events, self.over = source, events, over


class RunLoaded(Message):
    """A chunk of a replay's stored events; the last one has `done` set."""

    def __init__(self, token: object, events: list[ev.Event], done: bool, error: str | None = None) -> None:
        super().__init__()
        self.token, self.events, self.done, self.error = token, events, done, error


def last_line(path: Path | None) -> str:
    """The last non-empty line of a log file without its "rlm-tui: error: " prefix, for a one-line error."""
    if path is None or not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(max(0, f.seek(0, 2) - 4096))
        lines = [line.strip() for line in f.read().decode(errors="replace").splitlines() if line.strip()]
    return lines[-1].removeprefix(ERROR_PREFIX) if lines else ""


class RlmApp(App):
    """Runs, a run, a rollout: live (its own engine), attached (another process's) or replayed."""

    CSS_PATH = Path(__file__).parent / "app.tcss"  # absolute, so that subclasses elsewhere find it
    TITLE = "rlm-tui"
    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Help", id="app.help"),
    ]

    def __init__(self, db_path: str | Path, *, run_id: str | None = None, rollout_id: str | None = None,
                 follow: bool | None = None, engine: subprocess.Popen | None = None, engine_log: Path | None = None,
                 context_limit: int = DEFAULT_CONTEXT_LIMIT, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.db_path = Path(db_path)
        self.start = (run_id, rollout_id, follow)
        self.engine, self.engine_log, self.engine_rc = engine, engine_log, None
        self.engine_run_id = run_id if engine is not None else None
        self.context_limit, self.clock = context_limit, clock
        self.feed: Feed | None = None
        self.replay: Replay | None = None
        self.tail: TailSource | None = None
        self.mode = "runs"  # live | attach | replay, for the open run
        self.scope: str | None = None  # the one rollout a replay was loaded for, or None for the whole run
        self.loading = False
        self.run_over = False
        self.pausing: set[str | None] = set()  # pause sent, not yet in effect (None: the whole run)
        self.frame = 0
        self._last_tick = clock()
        self.stopping = False

    # --- set-up -----------------------------------------------------------------------------

    def on_mount(self) -> None:
        from rlm_tui.tui.screens.rollout import RolloutScreen
        from rlm_tui.tui.screens.run import RunScreen
        from rlm_tui.tui.screens.runs import RunsScreen

        self.db = open_db(self.db_path, create=False)
        self.commands = CommandSender(self.db_path, self._command_failed)
        self.push_screen(RunsScreen())
        run_id, rollout_id, follow = self.start
        if run_id is not None:
            self.open_run(run_id, rollout_id=rollout_id, follow=follow)
            self.push_screen(RunScreen(run_id))
            if rollout_id is not None:
                self.push_screen(RolloutScreen(rollout_id))
        self.set_interval(1 / REFRESH_HZ, self._tick)

    def notify(self, message: str, *, title: str = "", **options: Any) -> None:
        """Every toast: its text may come from an engine log, a database or an exception, so shown as characters."""
        super().notify(printable(str(message)), title=printable(str(title)), **options)

    def on_unmount(self) -> None:
        if self.tail:
            self.tail.stop()
        if hasattr(self, "commands"):
            self.commands.close()

    def open_run(self, run_id: str, *, rollout_id: str | None = None, follow: bool | None = None) -> None:
        """Fold `run_id` from a tail when it is running (or `follow`), else from a replay of its stored events."""
        if self.tail:
            self.tail.stop()
        self.tail, self.replay, self.scope = None, None, None
        self.feed = Feed(run_id)
        self.pausing.clear()
        row = get_run(self.db, run_id)
        if follow is None:
            follow = row is None or row["status"] == "running"
        if follow:
            self.mode = "live" if run_id == self.engine_run_id else "attach"
            self.run_over, self.loading = False, False
            self.tail = TailSource(self.db_path, run_id, self._deliver)
            self.tail.start()
        else:
            self.mode, self.scope, self.run_over, self.loading = "replay", rollout_id, True, True
            self._loaded: list[ev.Event] = []
            self._load_token = object()
            self._load(self._load_token, run_id, rollout_id)
        self.refresh_bindings()

    def _deliver(self, source: TailSource, events: list[ev.Event], over: bool) -> None:
        self.post_message(EventsArrived(source, events, over))

    @work(thread=True, group="load")
    def _load(self, token: object, run_id: str, rollout_id: str | None) -> None:
        try:
            for chunk in load_events(self.db_path, run_id, rollout_id):
                if token is not self._load_token:
                    return  # another run was opened meanwhile
                self.post_message(RunLoaded(token, chunk, False))
            self.post_message(RunLoaded(token, [], True))
        except Exception as exc:  # shown, not raised: the runs view stays usable
            self.post_message(RunLoaded(token, [], True, f"cannot load run {run_id}: {exc}"))

    def on_run_loaded(self, message: RunLoaded) -> None:
        """Fold each chunk as it comes, so the view fills in; the replay starts at the end once all are in."""
        if message.token is not getattr(self, "_load_token", None) or self.feed is None:
            return
        first = not self._loaded
        self._loaded += message.events
        self.feed.apply(message.events)
        if first:
            self.refresh_view()
        if message.error:
            self.notify(message.error, severity="error", markup=False)
        if message.done:
            self.loading = False
            self.replay = Replay(self._loaded, self.feed, position=len(self._loaded))
            self.refresh_bindings()
            self.refresh_view()

    def on_events_arrived(self, message: EventsArrived) -> None:
        if message.source is not self.tail or self.feed is None:
            return  # from a tail that was replaced
        self.feed.apply(message.events)
        for e in message.events:
            if isinstance(e, ev.RolloutPaused) and e.paused:
                self.pausing.discard(e.rollout_id)
            elif isinstance(e, ev.OperatorAction) and e.rollout_id is None and e.action in ("pause", "resume"):
                self.pausing.discard(None)
        if message.over:
            self.run_over = True
            self.tail = None
            self.refresh_bindings()

    # --- the refresh loop -------------------------------------------------------------------

    def _tick(self) -> None:
        now = self.clock()  # injected, so a test decides how far a replay plays
        dt, self._last_tick = now - self._last_tick, now
        self.frame += 1
        if self.replay is not None and self.replay.playing:
            self.replay.tick(dt)
            if not self.replay.playing:
                self.refresh_bindings()
        if self.engine is not None and self.engine_rc is None and self.frame % REFRESH_HZ == 0:
            self._check_engine()
        if not self.loading or self.frame % 4 == 0:  # a loading replay redraws less, to load sooner
            self.refresh_view()

    def refresh_view(self) -> None:
        """Let the screen on top redraw whatever its fingerprints say changed."""
        if self._exit or self._closing:
            return  # screens are being taken apart
        for screen in reversed(self.screen_stack):
            if getattr(screen, "ready", False) and not screen._closing:  # composed, mounted, not going away
                screen.refresh_view()
            if not isinstance(screen, ModalScreen):
                break  # screens under this one are hidden

    def now(self) -> float:
        """The time the views show: the replay's clock, the last event of a run that is over, or now."""
        if self.replay is not None:
            return self.replay.clock
        if self.run_over and self.feed is not None and self.feed.last_ts is not None:
            return self.feed.last_ts
        return self.clock()

    @property
    def interrupted(self) -> bool:
        """Followed until its engine went away without finishing it."""
        return self.mode in ("live", "attach") and self.run_over and self.feed is not None \
            and self.feed.state.status == "running"

    @property
    def controls_enabled(self) -> bool:
        return (self.mode in ("live", "attach") and not self.run_over and self.feed is not None
                and self.feed.state.status == "running")

    @property
    def holds_paused(self) -> bool:
        """The followed run, or one of its rollouts, is paused or about to be."""
        if not self.controls_enabled:
            return False
        state = self.feed.state
        return bool(state.paused or self.pausing
                    or any(r.paused and r.status == "running" for r in state.rollouts.values()))

    @property
    def context_limit_for_run(self) -> int:
        config = self.feed.state.config if self.feed else {}
        return int(config.get("context_limit") or config.get("rollout", {}).get("context_limit") or self.context_limit)

    # --- commands ---------------------------------------------------------------------------

    def send(self, action: str, rollout_id: str | None = None, text: str = "", note: str | None = None) -> None:
        if self.feed is None:
            return
        if action == "pause":
            self.pausing.add(rollout_id)
        elif action == "resume":
            self.pausing.discard(rollout_id)
        self.commands.send(self.feed.run_id, action, rollout_id, text)
        if note:
            self.notify(note, timeout=3, markup=False)

    def _command_failed(self, message: str) -> None:
        self.call_from_thread(self.notify, message, severity="error", markup=False)

    # --- the engine this app started --------------------------------------------------------

    def _check_engine(self) -> None:
        rc = self.engine.poll()
        if rc is None:
            return
        self.engine_rc = rc
        if rc != 0 and not self.stopping:
            self.notify(last_line(self.engine_log) or f"the engine exited with status {rc}",
                        title="the run stopped", severity="error", timeout=30, markup=False)
        self.refresh_bindings()

    @property
    def engine_running(self) -> bool:
        return self.engine is not None and self.engine.poll() is None

    async def action_quit(self) -> None:
        from rlm_tui.tui.screens.modals import QuitScreen

        if self.engine_running and not self.stopping:
            self.push_screen(QuitScreen(), self._quit_answer)
        else:
            self._leave()

    def _quit_answer(self, answer: str | None) -> None:
        if answer == "stop":
            self.stopping = True
            self.notify("stopping the run…", timeout=10)
            self._stop_engine()
        elif answer == "leave":
            self._leave()

    def _leave(self) -> None:
        """Exit, leaving the run going; a paused run would wait for nobody, so ask about that first."""
        from rlm_tui.tui.screens.modals import LeavePausedScreen

        if self.stopping or not self.holds_paused:
            self.exit()
            return

        def answer(choice: str | None) -> None:
            if choice == "resume":
                self.send("resume")
            if choice is not None:
                self.exit()

        self.push_screen(LeavePausedScreen(), answer)

    @work(thread=True, exclusive=True, group="engine")
    def _stop_engine(self) -> None:
        engine = self.engine
        engine.send_signal(signal.SIGTERM)  # recorded as killed; unlike SIGINT, never inherited as ignored
        try:
            engine.wait(20)
        except subprocess.TimeoutExpired:
            engine.kill()
            engine.wait()
        self.call_from_thread(self.exit)

    def action_help(self) -> None:
        from rlm_tui.tui.screens.modals import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    # --- the command palette ----------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every binding with an id, named 'group: action'."""
        seen = set()
        for active in screen.active_bindings.values():
            binding = active.binding
            if not binding.id or "." not in binding.id or binding.id in seen or not active.enabled:
                continue
            seen.add(binding.id)
            group = binding.id.split(".")[0]
            name = binding.description.lower().removesuffix(f" {group}")  # "run: pause", not "run: pause run"
            yield SystemCommand(f"{group}: {name}", binding.tooltip or binding.description,
                                partial(self._run_bound, binding.action, active.node))
        yield SystemCommand("app: theme", "Change the colours", self.action_change_theme)
        yield SystemCommand("app: screenshot", "Save an SVG screenshot", lambda: self.set_timer(0.1, self.deliver_screenshot))

    async def _run_bound(self, action: str, node: Any) -> None:
        await self.run_action(action, node)
