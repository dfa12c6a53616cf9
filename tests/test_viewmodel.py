"""The app's session view-model without a screen: real events folded, a fake clock as a plain callable."""

from __future__ import annotations

from rlm_tui import events as ev
from rlm_tui.tui.session import REFRESH_HZ, Session
from synthetic import T0, run_events

RUN = "vm-run"


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def replayed(events: list[ev.Event], clock: Clock | None = None) -> Session:
    """A session that has loaded `events` for a replay, in two chunks."""
    session = Session("unused.db", clock=clock or Clock())
    token = session.open(RUN, follow=False)
    assert session.take_chunk(token, events[:5], False) == (True, False)
    assert session.take_chunk(token, events[5:], False) == (False, False)
    assert session.take_chunk(token, [], True) == (False, True)
    return session


def followed(events: list[ev.Event], sent: list | None = None, engine_run_id: str | None = None) -> Session:
    session = Session(
        "unused.db",
        clock=Clock(),
        engine_run_id=engine_run_id,
        commands=lambda *command: sent.append(command) if sent is not None else None,
    )
    assert session.open(RUN, follow=True) is None
    session.arrived(events, over=False)
    return session


def test_a_replay_loads_in_chunks_and_starts_at_the_end():
    events = run_events(RUN, rollouts=2, turns=2, batch=2)
    session = replayed(events)
    assert (session.mode, session.loading, session.run_over) == ("replay", False, True)
    assert session.replay.position == len(events) and session.feed.state.status == "done"
    assert session.now() == events[-1].ts  # the replay's clock, not the wall's


def test_a_chunk_of_a_replaced_load_is_dropped():
    events = run_events(RUN, rollouts=1, turns=1, batch=0)
    session = Session("unused.db")
    old = session.open(RUN, follow=False)
    assert session.is_loading(old)
    new = session.open(RUN, follow=False, rollout_id=f"{RUN}-r000")
    assert not session.is_loading(old) and session.scope == f"{RUN}-r000"
    assert session.take_chunk(old, events, True) is None
    assert session.feed.count == 0 and session.replay is None and session.loading
    assert session.take_chunk(new, events, True) == (True, True)
    assert session.feed.count == len(events)


def test_the_injected_clock_paces_a_replay_and_its_end_changes_the_keys():
    events = run_events(RUN, rollouts=1, turns=2, batch=1)
    clock = Clock()
    session = replayed(events, clock)
    replay = session.replay
    replay.seek(0)
    replay.toggle()
    assert session.allows("replay_pause", None) and not session.allows("replay_play", None)
    assert session.tick().keys_changed is False
    assert replay.position == 2  # no time passed: only the two events at the first instant
    clock.now += 0.025  # recorded events are 10 ms apart
    session.tick()
    assert replay.position == 4 and replay.playing
    clock.now += 3600
    assert session.tick().keys_changed is True  # the end: play is offered again
    assert replay.at_end and session.allows("replay_play", None)


def test_a_loading_replay_redraws_every_fourth_frame_and_the_engine_is_checked_once_a_second():
    session = Session("unused.db", clock=Clock())
    session.open(RUN, follow=False)
    ticks = [session.tick() for _ in range(2 * REFRESH_HZ)]
    assert [i + 1 for i, t in enumerate(ticks) if t.redraw] == [4, 8, 12, 16, 20, 24, 28]
    assert [i + 1 for i, t in enumerate(ticks) if t.check_engine] == [REFRESH_HZ, 2 * REFRESH_HZ]


def test_the_time_shown_is_the_clock_while_followed_and_the_last_event_once_over():
    events = run_events(RUN, rollouts=1, turns=1, batch=0, finish=False)
    session = followed(events)
    session.clock.now = T0 + 99
    assert session.now() == T0 + 99
    session.arrived([], over=True)
    assert session.now() == events[-1].ts
    assert session.interrupted and not session.controls_enabled  # its engine went away mid-run


def test_a_pause_is_pending_until_the_engine_says_it_took_effect():
    events = run_events(RUN, rollouts=2, turns=1, batch=0, finish=False)
    sent: list = []
    session = followed(events, sent)
    r0 = f"{RUN}-r000"
    target = session.rollout(r0)
    assert session.mode == "attach" and session.controls_enabled and not session.holds_paused
    assert session.allows("pause", target) and not session.allows("resume", target)
    assert session.send("pause", r0)
    assert sent == [(RUN, "pause", r0, "")]
    assert session.pausing == {r0} and session.holds_paused
    assert session.allows("resume", target) and not session.allows("pause", target)
    before = session.keys_fingerprint(target)
    session.arrived([ev.RolloutPaused(run_id=RUN, rollout_id=r0, paused=True)], over=False)
    assert session.pausing == set() and target.paused and session.allows("resume", target)
    assert session.keys_fingerprint(target) != before
    session.send("pause")
    assert session.allows("run_resume", None) and not session.allows("run_pause", None)
    session.arrived([ev.OperatorAction(run_id=RUN, action="pause")], over=False)
    assert session.pausing == set()


def test_a_replay_takes_no_commands_and_a_run_of_this_apps_engine_is_live():
    events = run_events(RUN, rollouts=1, turns=1, batch=0, finish=False)
    replay = replayed(run_events(RUN, rollouts=1, turns=1, batch=0))
    r = replay.rollout(f"{RUN}-r000")
    assert not any(replay.allows(a, r) for a in ("pause", "kill", "inspect", "run_pause"))
    assert not replay.send("pause", r.id)  # nowhere to send it
    assert followed(events, engine_run_id=RUN).mode == "live"
    assert not followed(events).allows("replay_play", None)


def test_the_context_limit_is_the_runs_own_when_it_recorded_one():
    events = run_events(RUN, rollouts=1, turns=1, batch=0)
    assert followed(events).context_limit_for_run == 128_000
    started = ev.RunStarted(
        run_id=RUN,
        env="e",
        mode="rlm",
        model="m",
        sub_model="s",
        num_rollouts=1,
        config={"rollout": {"context_limit": 32_000}},
    )
    assert followed([started]).context_limit_for_run == 32_000


def test_the_replay_line_says_where_the_replay_is():
    events = run_events(RUN, rollouts=1, turns=1, batch=0)
    session = Session("unused.db")
    token = session.open(RUN, follow=False)
    session.take_chunk(token, events[:3], False)
    assert session.replay_line() == "[dim]loading… 3 events[/]"
    session.take_chunk(token, events[3:], True)
    n = len(events)
    assert session.replay_line().startswith(f"[bold]⏸ stopped[/] ×1 · event {n}/{n} [green]{'━' * 30}[/][dim][/]")
    assert followed(events).replay_line() == ""


def test_watchers_hear_of_each_drawn_frame_and_of_the_close():
    session = Session("unused.db")
    heard: list[bool] = []
    unwatch = session.watch(lambda: heard.append(session.closed))
    session.drawn()
    session.drawn()
    unwatch()
    session.drawn()
    session.watch(lambda: heard.append(session.closed))
    session.close()
    session.close()  # the app exits, then unmounts
    assert heard == [False, False, True]


def test_a_replay_folded_in_chunks_is_the_run_folded_at_once():
    from rlm_tui.state import fold

    events = run_events(RUN, rollouts=3, turns=3, batch=7, tools=2)
    whole = fold(events, RUN)
    for size in (1, 2, 5, 64, len(events)):
        session = Session("unused.db", clock=Clock())
        token = session.open(RUN, follow=False)
        for i in range(0, len(events), size):
            session.take_chunk(token, events[i : i + size], False)
        session.take_chunk(token, [], True)
        assert session.feed is not None and session.feed.state == whole
        assert session.replay is not None and session.replay.events == events
        assert session.feed.versions == {r: sum(e.rollout_id == r for e in events) for r in session.feed.versions}
