"""`--executor ray` on a real Ray cluster of several nodes on this machine, sharing one store."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the ray extra (pip install .[ray]) is part of .[test]")
from ray.cluster_utils import Cluster  # noqa: E402

from rlm_tui.engine.rollout import RolloutSettings  # noqa: E402
from rlm_tui.engine.run import Run, RunConfig  # noqa: E402
from rlm_tui.engine.scripted import ScriptedClient  # noqa: E402
from rlm_tui.engine.simulated import Simulation  # noqa: E402
from rlm_tui.env import load_environment  # noqa: E402
from rlm_tui.state import fold  # noqa: E402
from rlm_tui.store import EventWriter, open_db, read_events  # noqa: E402

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


def run_stored(tmp_path: Path, executor: str, n: int, delay: float = 0.0):
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
    run = Run(config, env, client, [writer.append])
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
