"""A generated stand-in says so: in `rlm-tui envs`, in the run's recorded config, the headless summary and the app."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from pilot import until
from rlm_tui import events as ev
from rlm_tui.commands.envs import cmd_envs
from rlm_tui.env import MAX_DATA_NOTE_CHARS, load_environment, recorded_data_note
from rlm_tui.headless import print_summary
from runs import store_events, stored_run
from synthetic import run_events

REAL_NOTE = "offline stand-in for oolong-real: generated game transcripts, not the real data"


@pytest.mark.parametrize(
    "args, note",
    [
        ({}, REAL_NOTE),  # the default subset is real, the default source offline
        ({"subset": "synth"}, "offline stand-in for oolong-synth: generated records, not the real data"),
        (
            {"subset": "synth_with_labels"},
            "offline stand-in for oolong-synth_with_labels: generated records, not the real data",
        ),
        ({"source": "hf"}, ""),
        ({"source": "hf", "subset": "synth"}, ""),
    ],
)
def test_oolong_says_when_its_data_is_generated(args, note):
    assert load_environment("oolong", args).data_note == note


def test_real_data_has_no_note(monkeypatch):
    monkeypatch.setenv("SERPER_API_KEY", "k")
    assert load_environment("verbatim-copy").data_note == ""  # the study's own data is generated too
    assert load_environment("math-python", {"source": "hf"}).data_note == ""
    assert load_environment("deepdive", {"source": "online"}).data_note == ""


def test_the_other_offline_stand_ins_say_so(monkeypatch):
    monkeypatch.delenv("SERPER_API_KEY", raising=False)
    for env in ("math-python", "deepdive"):
        note = load_environment(env).data_note
        assert note.startswith("offline stand-in for ") and "not the real data" in note
        assert len(note) < MAX_DATA_NOTE_CHARS and "\n" not in note


def test_envs_lists_the_note_under_its_environment(capsys):
    assert cmd_envs(argparse.Namespace()) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[lines.index("oolong") + 1] == f"  data: {REAL_NOTE}"
    assert not any(
        line.startswith("  data:") for line in lines[: lines.index("verbatim-copy") + 2]
    )  # generated as in the study
    assert lines[lines.index("math-python") + 1].startswith("  data: offline stand-in for the study's math problems")


@pytest.mark.parametrize(
    "config, note",
    [
        ({"data_note": "generated"}, "generated"),
        ({"data_note": "two\nlines\x1b[2J"}, "two lines\x1b[2J"),  # one line; the readers spell out controls
        ({"data_note": "x" * 1000}, "x" * (MAX_DATA_NOTE_CHARS - 1) + "…"),
        ({"data_note": 7}, ""),
        ({"data_note": None}, ""),
        ({}, ""),
        ("not a dict", ""),
        (None, ""),
    ],
)
def test_a_recorded_note_is_read_as_one_bounded_line(config, note):
    assert recorded_data_note(config) == note


def test_the_run_records_the_note_and_the_summary_shows_it(tmp_path, capsys):
    env = load_environment("oolong", {"context_len": "1024"})
    live, stored = stored_run(tmp_path, env)
    assert stored.config["data_note"] == REAL_NOTE == live.config["data_note"]
    print_summary(stored)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"data: {REAL_NOTE}"
    assert out[1].startswith("oolong [rlm] · scripted (simulated model)")


def test_a_real_data_run_records_an_empty_note(tmp_path, capsys):
    _, stored = stored_run(tmp_path, load_environment("verbatim-copy"))
    assert stored.config["data_note"] == ""
    print_summary(stored)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("verbatim-copy [rlm] · scripted (simulated model)")
    assert not any(line.startswith("data:") for line in out)


async def test_the_app_run_header_names_the_simulated_model_and_the_note(tmp_path):
    from rlm_tui.tui.app import RlmApp
    from rlm_tui.tui.screens.rollout import RolloutScreen
    from rlm_tui.tui.screens.run import RunScreen

    events = run_events("note-run", rollouts=1)
    start = events[0]
    assert isinstance(start, ev.RunStarted)
    events[0] = dataclasses.replace(start, model="scripted", config={**start.config, "data_note": REAL_NOTE})
    app = RlmApp(store_events(tmp_path / "n.db", events))
    async with app.run_test(size=(240, 50)) as pilot:
        await until(pilot, lambda: app.screen._ids)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RolloutScreen) and app.session.replay is not None)
        await pilot.press("escape")  # a run of one rollout opens on it; the title is the run view's
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.session.replay is not None)
        await pilot.pause()
        title = app.screen.query_one("#run-title")
        text = "\n".join(title.render_line(y).text for y in range(title.size.height))
        assert "· scripted (simulated model) · run note-run" in text and REAL_NOTE in text
