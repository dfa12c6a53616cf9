"""The app: one run folded from a tail or a replay, rendered by whichever screen is on top."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import ModalScreen, Screen

from rlm_tui import events as ev
from rlm_tui.store import get_run, open_db
from rlm_tui.text import printable
from rlm_tui.tui.engines import last_line
from rlm_tui.tui.messages import EventsArrived, OpenRun, RunLoaded
from rlm_tui.tui.screens.view import SessionView
from rlm_tui.tui.session import DEFAULT_CONTEXT_LIMIT, REFRESH_HZ, Session
from rlm_tui.tui.sources import CommandSender, TailSource, load_events

IN_FLIGHT = 2  # replay chunks read but not yet folded: the reader waits, so frames and keys come between chunks


class RlmApp(App):
    """Runs, a run, a rollout: live (its own engine), attached (another process's) or replayed."""

    CSS_PATH = Path(__file__).parent / "app.tcss"  # absolute, so that subclasses elsewhere find it
    TITLE = "rlm-tui"
    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("ctrl+c", "quit", "Quit", id="app.interrupt", show=False, priority=True),  # the same choice as q
        Binding("question_mark", "help", "Help", id="app.help"),
    ]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]  # narrow screens stack the rollout view's panes

    def __init__(
        self,
        db_path: str | Path,
        *,
        run_id: str | None = None,
        rollout_id: str | None = None,
        follow: bool | None = None,
        engine: subprocess.Popen | None = None,
        engine_log: Path | None = None,
        context_limit: int = DEFAULT_CONTEXT_LIMIT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.session = Session(
            db_path, engine_run_id=run_id if engine is not None else None, context_limit=context_limit, clock=clock
        )
        self.start = (run_id, rollout_id, follow)
        self.engine, self.engine_log = engine, engine_log
        self.engine_rc: int | None = None
        self.tail: TailSource | None = None
        self.stopping = False

    # --- set-up -----------------------------------------------------------------------------

    def on_mount(self) -> None:
        from rlm_tui.tui.screens.run import RunScreen
        from rlm_tui.tui.screens.runs import RunsScreen

        self.db = open_db(self.session.db_path, create=False)
        self.commands = CommandSender(self.session.db_path, self._command_failed)
        self.session.commands = self.commands.send
        self.push_screen(RunsScreen(self.session))
        run_id, rollout_id, follow = self.start
        if run_id is not None:
            self.open_run(run_id, rollout_id=rollout_id, follow=follow)
            self.push_screen(RunScreen(self.session, run_id))
            if rollout_id is not None:
                from rlm_tui.tui.screens.rollout import RolloutScreen  # its syntax highlighting is slow to import

                self.push_screen(RolloutScreen(self.session, rollout_id))
        self.set_interval(1 / REFRESH_HZ, self._tick)

    def notify(self, message: str, *, title: str = "", **options: Any) -> None:
        """Every toast: its text may come from an engine log, a database or an exception, so shown as characters."""
        super().notify(printable(str(message)), title=printable(str(title)), **options)

    def exit(self, result: Any = None, return_code: int = 0, message: Any = None) -> None:
        super().exit(result, return_code, message)
        self.session.close()  # no frame follows: whoever waits for one hears of it now

    def on_unmount(self) -> None:
        if self.tail:
            self.tail.stop()
        if hasattr(self, "commands"):
            self.commands.close()
        self.session.close()

    def on_open_run(self, message: OpenRun) -> None:
        if message.show:  # the views on top give way to the run's, as if it were picked in the runs view
            from rlm_tui.tui.screens.run import RunScreen
            from rlm_tui.tui.screens.runs import RunsScreen

            if not any(isinstance(s, RunsScreen) for s in self.screen_stack):
                return
            while not isinstance(self.screen, RunsScreen):
                self.pop_screen()
            self.open_run(message.run_id)
            self.push_screen(RunScreen(self.session, message.run_id))
            return
        self.open_run(message.run_id, rollout_id=message.rollout_id)

    def open_run(self, run_id: str, *, rollout_id: str | None = None, follow: bool | None = None) -> None:
        """Fold `run_id` from a tail when it is running (or `follow`), else from a replay of its stored events."""
        if self.tail:
            self.tail.stop()
        self.tail = None
        if follow is None:
            row = get_run(self.db, run_id)
            follow = row is None or row["status"] == "running"
        token = self.session.open(run_id, follow=follow, rollout_id=rollout_id)
        if token is None:
            self.tail = TailSource(self.session.db_path, run_id, self._deliver)
            self.tail.start()
        else:
            self._load(token, run_id, rollout_id)
        self.refresh_bindings()

    def _deliver(self, source: TailSource, events: list[ev.Event], over: bool) -> None:
        self.post_message(EventsArrived(source, events, over))

    @work(thread=True, group="load")
    def _load(self, token: object, run_id: str, rollout_id: str | None) -> None:
        folded = threading.Semaphore(IN_FLIGHT)
        try:
            for chunk in load_events(self.session.db_path, run_id, rollout_id):
                while not folded.acquire(timeout=0.1):
                    if not self.session.is_loading(token) or not self.is_running:
                        return
                if not self.session.is_loading(token):
                    return  # another run was opened meanwhile
                self.post_message(RunLoaded(token, chunk, False, folded=folded.release))
            self.post_message(RunLoaded(token, [], True))
        except Exception as exc:  # shown, not raised: the runs view stays usable
            self.post_message(RunLoaded(token, [], True, f"cannot load run {run_id}: {exc}"))

    def on_run_loaded(self, message: RunLoaded) -> None:
        """Fold each chunk as it comes, so the view fills in; the replay starts at the end once all are in."""
        try:
            loaded = self.session.take_chunk(message.token, message.events, message.done)
        finally:
            if message.folded is not None:
                message.folded()  # the reader may send the next chunk
        if loaded is None:
            return
        if loaded.first:
            self.refresh_view()
        if message.error:
            self.notify(message.error, severity="error", markup=False)
        if loaded.done:
            self.refresh_bindings()
            self.refresh_view()

    def on_events_arrived(self, message: EventsArrived) -> None:
        if message.source is not self.tail:
            return  # from a tail that was replaced
        self.session.arrived(message.events, message.over)
        if message.over:
            self.tail = None
            self.refresh_bindings()

    # --- the refresh loop -------------------------------------------------------------------

    def _tick(self) -> None:
        tick = self.session.tick()
        if tick.keys_changed:
            self.refresh_bindings()
        if tick.check_engine and self.engine is not None and self.engine_rc is None:
            self._check_engine(self.engine)
        if tick.redraw:
            self.refresh_view()
        self.session.drawn()

    def refresh_view(self) -> None:
        """Let the screen on top redraw whatever its fingerprints say changed."""
        if self.return_code is not None or not self.is_running:
            return  # exiting: screens are being taken apart
        for screen in reversed(self.screen_stack):
            if isinstance(screen, SessionView) and screen.ready:  # composed and mounted
                screen.refresh_view()
            if not isinstance(screen, ModalScreen):
                break  # screens under this one are hidden

    # --- commands ---------------------------------------------------------------------------

    def _command_failed(self, message: str) -> None:
        self.call_from_thread(self.notify, message, severity="error", markup=False)

    # --- the engine this app started --------------------------------------------------------

    def _check_engine(self, engine: subprocess.Popen) -> None:
        rc = engine.poll()
        if rc is None:
            return
        self.engine_rc = rc
        if rc != 0 and not self.stopping:
            self.notify(
                last_line(self.engine_log) or f"the engine exited with status {rc}",
                title="the run stopped",
                severity="error",
                timeout=30,
                markup=False,
            )
        self.refresh_bindings()

    @property
    def engine_running(self) -> bool:
        return self.engine is not None and self.engine.poll() is None

    async def action_quit(self) -> None:
        from rlm_tui.tui.screens.modals import quit_engine

        if self.engine_running and not self.stopping:
            self.push_screen(quit_engine(), self._quit_answer)
        else:
            self._leave()

    def _quit_answer(self, answer: object) -> None:
        if answer == "stop":
            self.stopping = True
            self.notify("stopping the run…", timeout=10)
            if self.engine is not None:
                self._stop_engine(self.engine)
        elif answer == "leave":
            self._leave()

    def _leave(self) -> None:
        """Exit, leaving the run going; a paused run would wait for nobody, so ask about that first."""
        from rlm_tui.tui.screens.modals import leave_paused

        if self.stopping or not self.session.holds_paused:
            self.exit()
            return

        def answer(choice: object) -> None:
            if choice == "resume":
                self.session.send("resume")
                self.session.send("approval", text="off")
            if choice is not None:
                self.exit()

        self.push_screen(leave_paused(), answer)

    @work(thread=True, exclusive=True, group="engine")
    def _stop_engine(self, engine: subprocess.Popen) -> None:
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
            yield SystemCommand(
                f"{group}: {name}",
                binding.tooltip or binding.description,
                partial(self._run_bound, binding.action, active.node),
            )
        yield SystemCommand("app: theme", "Change the colours", self.action_change_theme)
        yield SystemCommand(
            "app: screenshot", "Save an SVG screenshot", lambda: self.set_timer(0.1, self.save_screenshot_here)
        )

    def save_screenshot_here(self) -> None:
        """Beside the database, a folder that exists (~/Downloads may not), and the toast says where."""
        folder = self.session.db_path.resolve().parent
        try:
            saved = self.save_screenshot(path=str(folder))
        except OSError as exc:
            self.notify(f"could not save a screenshot in {folder}: {exc}", severity="error", markup=False)
            return
        self.notify(f"screenshot saved to {saved}", title="screenshot", markup=False)

    async def _run_bound(self, action: str, node: Any) -> None:
        await self.run_action(action, node)
