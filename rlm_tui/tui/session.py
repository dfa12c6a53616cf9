"""What the app shows and tracks about the open run, in plain Python: tested without a screen, clock injected."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from rlm_tui import events as ev
from rlm_tui.state import RolloutState
from rlm_tui.tui import fmt
from rlm_tui.tui.sources import Feed, Replay

REFRESH_HZ = 15
DEFAULT_CONTEXT_LIMIT = 128_000

REPLAY_ACTIONS = {
    "replay_play",
    "replay_pause",
    "replay_step",
    "replay_back",
    "replay_next_turn",
    "replay_prev_turn",
    "replay_faster",
    "replay_slower",
    "replay_start",
    "replay_end",
}
ROLLOUT_ACTIONS = {
    "pause",
    "resume",
    "step",
    "inspect",
    "inject",
    "edit",
    "finish",
    "kill",
    "approval_on",
    "approval_off",
    "decide",
}
RUN_ACTIONS = {"run_pause", "run_resume"}

SendCommand = Callable[[str, str, "str | None", str], None]  # run id, action, rollout id, text


class Tick(NamedTuple):
    """What one frame of the clock asks of the app."""

    keys_changed: bool  # a replay stopped playing: the footer offers play again
    check_engine: bool  # once a second: has the engine this app started exited?
    redraw: bool  # a loading replay redraws less often, so that it loads sooner


class Loaded(NamedTuple):
    first: bool  # the first chunk of this load: the view can fill in
    done: bool  # the last one: the replay is ready


class Session:
    """The open run (followed or replayed), the operator's pending pauses, and the view's clock."""

    def __init__(
        self,
        db_path: str | Path,
        *,
        engine_run_id: str | None = None,
        context_limit: int = DEFAULT_CONTEXT_LIMIT,
        clock: Callable[[], float] = time.time,
        commands: SendCommand | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self.engine_run_id = engine_run_id  # the run of the engine this app started, if any
        self.context_limit, self.clock, self.commands = context_limit, clock, commands
        self.feed: Feed | None = None
        self.replay: Replay | None = None
        self.mode = "runs"  # live | attach | replay, for the open run
        self.scope: str | None = None  # the one rollout a replay was loaded for, or None for the whole run
        self.loading = False
        self.run_over = False
        self.pausing: set[str | None] = set()  # pause sent, not yet in effect (None: the whole run)
        self.frame = 0
        self.closed = False
        self._last_tick = clock()
        self._loaded: list[ev.Event] = []
        self._load_token: object | None = None
        self._watchers: list[Callable[[], None]] = []

    # --- opening a run ----------------------------------------------------------------------

    def open(self, run_id: str, *, follow: bool, rollout_id: str | None = None) -> object | None:
        """Fold `run_id` afresh: followed from a tail, or replayed (the token of the load to come is returned)."""
        self.feed, self.replay, self.scope = Feed(run_id), None, None
        self.pausing.clear()
        self._loaded, self._load_token = [], None
        if follow:
            self.mode = "live" if run_id == self.engine_run_id else "attach"
            self.run_over, self.loading = False, False
            return None
        self.mode, self.scope, self.run_over, self.loading = "replay", rollout_id, True, True
        self._load_token = object()
        return self._load_token

    def is_loading(self, token: object) -> bool:
        """Whether the load `token` is still wanted (another run opened meanwhile ends it)."""
        return token is self._load_token

    def take_chunk(self, token: object, events: list[ev.Event], done: bool) -> Loaded | None:
        """Fold one chunk of a replay's stored events as it comes; None when it is from a load since replaced."""
        if token is not self._load_token or self.feed is None:
            return None
        first = not self._loaded
        self._loaded += events
        self.feed.apply(events)
        if done:
            self.loading = False
            self.replay = Replay(self._loaded, self.feed, position=len(self._loaded))
        return Loaded(first, done)

    def arrived(self, events: list[ev.Event], over: bool) -> None:
        """Fold one poll of a followed run; a pause in effect is no longer pending."""
        if self.feed is None:
            return
        self.feed.apply(events)
        for e in events:
            if isinstance(e, ev.RolloutPaused) and e.paused:
                self.pausing.discard(e.rollout_id)
            elif isinstance(e, ev.OperatorAction) and e.rollout_id is None and e.action in ("pause", "resume"):
                self.pausing.discard(None)
        if over:
            self.run_over = True

    # --- the clock --------------------------------------------------------------------------

    def tick(self) -> Tick:
        """One frame: a playing replay moves on by the injected clock's time since the last frame."""
        now = self.clock()
        dt, self._last_tick = now - self._last_tick, now
        self.frame += 1
        stopped = False
        if self.replay is not None and self.replay.playing:
            self.replay.tick(dt)
            stopped = not self.replay.playing
        return Tick(stopped, self.frame % REFRESH_HZ == 0, not self.loading or self.frame % 4 == 0)

    def now(self) -> float:
        """The time the views show: the replay's clock, the last event of a run that is over, or now."""
        if self.replay is not None:
            return self.replay.clock
        if self.run_over and self.feed is not None and self.feed.last_ts is not None:
            return self.feed.last_ts
        return self.clock()

    def watch(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` after each frame the app has drawn, and once when it closes; returns the unwatch."""
        self._watchers.append(callback)
        return lambda: self._watchers.remove(callback) if callback in self._watchers else None

    def drawn(self) -> None:
        """The app drew a frame."""
        for callback in list(self._watchers):
            callback()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.drawn()

    # --- what the run is now ----------------------------------------------------------------

    @property
    def interrupted(self) -> bool:
        """Followed until its engine went away without finishing it."""
        return (
            self.mode in ("live", "attach")
            and self.run_over
            and self.feed is not None
            and self.feed.state.status == "running"
        )

    @property
    def controls_enabled(self) -> bool:
        return (
            self.mode in ("live", "attach")
            and not self.run_over
            and self.feed is not None
            and self.feed.state.status == "running"
        )

    @property
    def holds_paused(self) -> bool:
        """The followed run, or one of its rollouts, is paused or about to be, or waits for cell approvals."""
        if not self.controls_enabled or self.feed is None:
            return False
        state = self.feed.state
        return bool(
            state.paused
            or self.pausing
            or any((r.paused or r.approving) and r.status == "running" for r in state.rollouts.values())
        )

    @property
    def context_limit_for_run(self) -> int:
        config = self.feed.state.config if self.feed else {}
        return int(config.get("context_limit") or config.get("rollout", {}).get("context_limit") or self.context_limit)

    def rollout(self, rollout_id: str) -> RolloutState | None:
        return self.feed.state.rollouts.get(rollout_id) if self.feed else None

    # --- the operator's commands ------------------------------------------------------------

    def send(self, action: str, rollout_id: str | None = None, text: str = "") -> bool:
        """Send a command to the open run; a pause counts as pending until it takes effect. False: no run open."""
        if self.feed is None or self.commands is None:
            return False
        if action == "pause":
            self.pausing.add(rollout_id)
        elif action == "resume":
            self.pausing.discard(rollout_id)
        self.commands(self.feed.run_id, action, rollout_id, text)
        return True

    def allows(self, action: str, target: RolloutState | None) -> bool:
        """Whether a view's key applies now, to the run or to the rollout `target`."""
        if action in REPLAY_ACTIONS:
            if self.mode != "replay" or self.replay is None:
                return False
            playing = self.replay.playing
            return not (action == "replay_play" and playing or action == "replay_pause" and not playing)
        if action in RUN_ACTIONS:
            if not self.controls_enabled or self.feed is None:
                return False
            return (self.feed.state.paused or None in self.pausing) == (action == "run_resume")
        if action in ROLLOUT_ACTIONS:
            if not self.controls_enabled or target is None or target.status not in ("queued", "running"):
                return False
            if action in ("pause", "resume"):
                return (target.paused or target.id in self.pausing) == (action == "resume")
            if action in ("approval_on", "approval_off"):
                return target.approving == (action == "approval_off")
            if action == "decide":
                return target.waiting is not None
        return True

    def keys_fingerprint(self, target: RolloutState | None) -> tuple:
        """Changes whenever what the keys act on changes: a pause took effect, a rollout or the run ended."""
        return (
            self.controls_enabled,
            self.feed is not None and self.feed.state.paused,
            frozenset(self.pausing),
            target and (target.id, target.status, target.paused, target.approving, target.waiting is not None),
        )

    def banner(self) -> str:
        """What to do about a followed run whose engine went away, as rich markup; empty otherwise."""
        if not self.interrupted or self.feed is None:
            return ""
        run_id = self.feed.run_id
        return (
            f"[bold red]the engine is gone: run {run_id} was interrupted[/] · "
            f"[b]rlm-tui resume {run_id}[/b] runs its unfinished rollouts again, in this run"
        )

    def replay_line(self) -> str:
        """▶ ×2 · event 1,234/5,678 · 0:12/1:30, as rich markup; empty unless replaying."""
        if self.mode != "replay":
            return ""
        replay = self.replay
        if replay is None:
            return f"[dim]loading… {self.feed.count:,} events[/]" if self.loading and self.feed else ""
        played, total = replay.elapsed
        state = "[bold green]▶ playing[/]" if replay.playing else "[bold]⏸ stopped[/]"
        width = 30
        filled = round(width * replay.position / max(1, len(replay.events)))
        bar = f"[green]{'━' * filled}[/][dim]{'━' * (width - filled)}[/]"
        return (
            f"{state} ×{replay.speed:g} · event {replay.position:,}/{len(replay.events):,} {bar} "
            f"{fmt.seconds(played)} / {fmt.seconds(total)}"
        )
