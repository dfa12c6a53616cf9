"""`--executor ray` on a real Ray cluster of several nodes on this machine, sharing one store."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the ray extra (pip install .[ray]) is part of .[test]")
from ray.cluster_utils import Cluster  # noqa: E402

from rlm_tui import events as ev  # noqa: E402
from rlm_tui.engine.control import queued_commands  # noqa: E402
from rlm_tui.engine.rollout import RolloutSettings  # noqa: E402
from rlm_tui.engine.run import Run, RunConfig  # noqa: E402
from rlm_tui.engine.scripted import ScriptedClient  # noqa: E402
from rlm_tui.engine.simulated import Simulation  # noqa: E402
from rlm_tui.env import load_environment  # noqa: E402
from rlm_tui.state import fold  # noqa: E402
from rlm_tui.store import EventWriter, open_db, read_events  # noqa: E402
from rlm_tui.store.commands import send_command  # noqa: E402

ROOT = str(Path(__file__).resolve().parent.parent)


@pytest.fixture(scope="module")
def cluster():
    """A head that cannot jail and two nodes that can: rollouts must go to the two."""
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    small = {"num_cpus": 1, "object_store_memory": 80 * 1024 * 1024}
    c = Cluster(initialize_head=True, head_node_args=small)
    nodes = [c.add_node(**small, resources={"nsjail": 1}) for _ in range(2)]
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    yield c, nodes
    ray.shutdown()
    c.shutdown()


def run_stored(tmp_path: Path, executor: str, n: int, delay: float = 0.0, watch=None, commands: bool = False):
    env = load_environment("verbatim-copy")
    client = ScriptedClient(env, delay=delay, simulation=Simulation(errors=0))
    writer = EventWriter(tmp_path / f"{executor}.db")
    writer.start()
    config = RunConfig(
        env=env.name,
        num_examples=n,
        executor=executor,
        rollout=RolloutSettings(mode="rlm", model="scripted", sub_model="scripted", timeout=60),
    )
    db = open_db(tmp_path / f"{executor}.db")
    source = (lambda rid: queued_commands(db, rid)) if commands else None
    run = Run(config, env, client, [writer.append] + ([lambda e: watch(run, e)] if watch else []), commands=source)
    state = asyncio.run(run.execute())
    writer.close()
    stored = fold([e for _, e in read_events(open_db(tmp_path / f"{executor}.db"), run_id=run.id)], run.id)
    return run, state, stored


def results(state):
    return sorted((r.example_id, r.status, r.reward, dict(r.answer)) for r in state.rollouts.values())


def test_rollouts_run_on_several_nodes_and_every_event_reaches_the_one_store(cluster, tmp_path):
    _, nodes = cluster
    run, state, stored = run_stored(tmp_path, "ray", 6)
    used = {run.remote.node_of(rid) for rid in state.rollouts}
    assert used == {n.node_id for n in nodes}  # both jailing nodes, never the head
    assert state.status == "done" and all(r.status == "done" for r in state.rollouts.values())
    assert results(stored) == results(state)
    assert [len(r.turns) for r in stored.rollouts.values()] == [len(r.turns) for r in state.rollouts.values()]


def test_a_ray_run_gives_the_results_of_a_local_run_of_the_same_examples(cluster, tmp_path):
    _, _, ray_state = run_stored(tmp_path, "ray", 4)
    _, _, local_state = run_stored(tmp_path, "local", 4)
    assert results(ray_state) == results(local_state)
    assert all(r.reward is not None for r in ray_state.rollouts.values())


def test_a_config_names_its_executor_and_reads_it_back():
    config = RunConfig(env="oolong", executor="ray", ray_address="10.0.0.1:6379")
    assert RunConfig.from_dict(config.describe()) == config
    assert replace(config, executor="local").executor == "local"


def test_a_pause_sent_through_the_store_stops_a_rollout_on_its_remote_node(cluster, tmp_path):
    """As the app does: the command goes into the store's queue; the driver forwards it to the rollout's worker."""
    sent: dict[str, str] = {}
    app = open_db(tmp_path / "ray.db")

    def watch(run, e):
        if isinstance(e, ev.RolloutStarted) and "pause" not in sent:
            sent["rollout"], sent["pause"] = e.rollout_id, send_command(app, run.id, "pause", e.rollout_id)
        elif isinstance(e, ev.RolloutPaused) and e.paused and e.rollout_id == sent["rollout"]:
            sent["resume"] = send_command(app, run.id, "resume", e.rollout_id)

    run, state, stored = run_stored(tmp_path, "ray", 2, delay=0.05, watch=watch, commands=True)
    events = [e for _, e in read_events(open_db(tmp_path / "ray.db"), run_id=run.id) if e.rollout_id == sent["rollout"]]
    kinds = [type(e).__name__ for e in events]
    paused = next(i for i, e in enumerate(events) if isinstance(e, ev.RolloutPaused) and e.paused)
    resumed = next(i for i, e in enumerate(events) if isinstance(e, ev.RolloutPaused) and not e.paused)
    assert "ModelCallStarted" not in kinds[paused:resumed]  # no model call while it was paused
    acted = [e.command_id for e in events if isinstance(e, ev.OperatorAction)]
    assert acted == [sent["pause"], sent["resume"]]  # the store's commands, by id, acted on the remote node
    assert run.remote.node_of(sent["rollout"]) in {n.node_id for n in cluster[1]}
    assert all(r.status == "done" for r in stored.rollouts.values())


def test_a_node_lost_mid_run_fails_exactly_its_rollouts_naming_it(cluster, tmp_path):
    """Last in the file: it removes a node, then adds one back for the cluster's later users."""
    c, nodes = cluster
    lost: dict[str, str] = {}

    def watch(run, e):
        if isinstance(e, ev.RolloutStarted) and not lost:
            lost["node"] = run.remote.node_of(e.rollout_id)
            c.remove_node(next(n for n in nodes if n.node_id == lost["node"]))

    run, state, stored = run_stored(tmp_path, "ray", 6, delay=0.2, watch=watch)
    c.add_node(num_cpus=1, object_store_memory=80 * 1024 * 1024, resources={"nsjail": 1})
    theirs = {rid for rid in state.rollouts if run.remote.node_of(rid) == lost["node"]}
    assert theirs and len(theirs) < len(state.rollouts)
    for rid, r in stored.rollouts.items():
        if rid in theirs:
            assert r.status == "failed" and f"node {lost['node']} was lost" in (r.error or "")
        else:
            assert r.status == "done", r.error
