"""`--executor ray` on a real Ray cluster of several nodes on this machine, sharing one store."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import ray  # the ray extra is part of .[test]: without it these tests fail, they do not skip
from ray.cluster_utils import Cluster

from rlm_tui import events as ev
from rlm_tui.engine.control import queued_commands
from rlm_tui.engine.prices import Price
from rlm_tui.engine.rollout import RolloutSettings
from rlm_tui.engine.run import Run, RunConfig
from rlm_tui.engine.scripted import ScriptedClient
from rlm_tui.engine.simulated import Simulation
from rlm_tui.env import load_environment
from rlm_tui.state import fold
from rlm_tui.store import EventWriter, open_db, read_events
from rlm_tui.store.commands import send_command

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


def run_stored(
    tmp_path: Path,
    executor: str,
    n: int,
    delay: float = 0.0,
    watch=None,
    commands: bool = False,
    retries: int = 0,
    **settings,
):
    env = load_environment("verbatim-copy")
    client = ScriptedClient(env, delay=delay, simulation=Simulation(errors=0))
    writer = EventWriter(tmp_path / f"{executor}.db")
    writer.start()
    rollout = {"mode": "rlm", "model": "scripted", "sub_model": "scripted", "timeout": 60, **settings}
    config = RunConfig(
        env=env.name, num_examples=n, executor=executor, retries=retries, rollout=RolloutSettings(**rollout)
    )
    db = open_db(tmp_path / f"{executor}.db")
    source = (lambda rid: queued_commands(db, rid)) if commands else None
    run = Run(config, env, client, [writer.append] + ([lambda e: watch(run, e)] if watch else []), commands=source)
    state = asyncio.run(run.execute())
    writer.close()
    stored = fold([e for _, e in read_events(open_db(tmp_path / f"{executor}.db"), run_id=run.id)], run.id)
    return run, state, stored


def stored_events(tmp_path: Path, run_id: str, executor: str = "ray") -> list[ev.Event]:
    return [e for _, e in read_events(open_db(tmp_path / f"{executor}.db"), run_id=run_id)]


def cli(*args: str) -> subprocess.CompletedProcess:
    """The real command line in a process of its own, offline."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RLM_TUI_", "RAY_ADDRESS"))}
    return subprocess.run(
        [sys.executable, "-m", "rlm_tui.cli", *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=300
    )


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


def test_child_rlms_and_prices_carry_to_the_nodes_a_ray_run_costs_what_a_local_run_does(cluster, tmp_path):
    price = Price(input=1.0, output=2.0)
    knobs = {"max_depth": 2, "price": price, "sub_price": price}
    run, ray_state, _ = run_stored(tmp_path, "ray", 3, **knobs)
    local, local_state, _ = run_stored(tmp_path, "local", 3, **knobs)

    def costs(state):
        return sorted((r.example_id, r.cost_usd) for r in state.rollouts.values())

    def children(run_id, executor):
        calls = [e for e in stored_events(tmp_path, run_id, executor) if isinstance(e, ev.ModelCallStarted)]
        return sum(e.role == "child" for e in calls)

    assert results(ray_state) == results(local_state)
    ray_costs, local_costs = costs(ray_state), costs(local_state)  # summed in the order the sub-LLM calls ended
    assert [i for i, _ in ray_costs] == [i for i, _ in local_costs] and all(c and c > 0 for _, c in ray_costs)
    assert [c for _, c in ray_costs] == pytest.approx([c for _, c in local_costs], rel=1e-9)
    assert children(run.id, "ray") == children(local.id, "local") > 0  # rlm_batch started child RLMs on the nodes


def test_approve_mode_holds_each_cell_on_its_remote_node_until_the_store_approves_it(cluster, tmp_path):
    app, approved = open_db(tmp_path / "ray.db"), []

    def watch(run, e):
        if isinstance(e, ev.CellProposed):
            approved.append(send_command(app, run.id, "approve", e.rollout_id))

    run, state, _ = run_stored(tmp_path, "ray", 2, watch=watch, commands=True, approve=True)
    events = stored_events(tmp_path, run.id)
    assert approved and sorted(e.command_id for e in events if isinstance(e, ev.OperatorAction)) == sorted(approved)
    for rid in state.rollouts:
        steps = [type(e) for e in events if e.rollout_id == rid and type(e) in STEPS]
        assert steps and steps == [ev.CellProposed, ev.OperatorAction, ev.CellStarted] * (len(steps) // 3)
    assert all(r.status == "done" for r in state.rollouts.values())


STEPS = (ev.CellProposed, ev.OperatorAction, ev.CellStarted)


def run_args(db: Path | str, *extra: str) -> list[str]:
    """`rlm-tui run` of two verbatim-copy rollouts on the scripted model into `db`."""
    return ["run", "verbatim-copy", "--headless", "-n", "2", "--model", "scripted", "--db", str(db), *extra]


def test_the_command_line_refuses_what_a_ray_run_cannot_keep_yet_in_one_line(tmp_path):
    budget = cli(*run_args(tmp_path / "cli.db", "--executor", "ray", "--run-max-tokens-total", "1000"))
    assert budget.returncode == 2 and len(budget.stderr.splitlines()) == 1
    assert budget.stderr.startswith("rlm-tui: error: the run-wide budgets (--run-max-*) are not kept across the nodes")
    local = cli(*run_args(tmp_path / "cli.db", "--retries", "1"))
    assert (local.returncode, local.stderr) == (2, "rlm-tui: error: --retries needs --executor ray\n")
    address = cli(*run_args(tmp_path / "cli.db", "--executor", "ray", "--ray-address", "head"))
    assert address.returncode == 2 and "a Ray address is HOST:PORT, ray://HOST:PORT or auto" in address.stderr
    assert not (tmp_path / "cli.db").exists()


def test_an_unreachable_cluster_ends_the_run_with_one_line_and_exit_2(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: a connection is refused
        address = f"127.0.0.1:{s.getsockname()[1]}"
        done = cli(*run_args(tmp_path / "cli.db", "--executor", "ray", "--ray-address", address))
    assert done.returncode == 2
    assert done.stderr == f"rlm-tui: error: cannot reach the Ray cluster at {address}: Connection refused\n"
    assert list(read_events(open_db(tmp_path / "cli.db"))) == []  # the run never started


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


def test_ablate_runs_its_cells_one_after_another_on_the_cluster_with_its_retries(cluster, tmp_path):
    """A cell's workers free their nodes' nsjail slots when it ends: the next cell's workers need them."""
    c, _ = cluster
    db = tmp_path / "grid.db"
    grid = ["ablate", "verbatim-copy", "--modes", "llm,rlm", "-n", "2", "--model", "scripted", "--db", str(db)]
    done = cli(*grid, "--executor", "ray", "--ray-address", c.address, "--retries", "2")
    assert done.returncode == 0, done.stderr
    configs = [json.loads(row[0]) for row in open_db(db).execute("SELECT config FROM runs ORDER BY started")]
    assert [(x["rollout"]["mode"], x["executor"], x["retries"]) for x in configs] == [
        ("llm", "ray", 2),
        ("rlm", "ray", 2),
    ]
    statuses = [row[0] for row in open_db(db).execute("SELECT status FROM rollouts")]
    assert statuses == ["done"] * 4


def test_resume_goes_on_from_a_budget_stop_on_the_nodes_as_it_does_locally(cluster, tmp_path):
    """Each node folds its rollouts' stored events first: the raised budget counts what was spent before."""
    c, _ = cluster
    outcomes = {}
    for executor in ("local", "ray"):
        db = str(tmp_path / f"{executor}.db")
        where = ["--executor", "ray", "--ray-address", c.address] if executor == "ray" else []
        first = cli(*run_args(db, "--scripted-errors", "0", "--max-tokens-total", "1500", *where))
        assert first.returncode == 0, first.stderr
        (run_id,) = [row[0] for row in open_db(db).execute("SELECT id FROM runs")]
        stopped = fold([e for _, e in read_events(open_db(db), run_id=run_id)], run_id)
        assert {r.stop_reason for r in stopped.rollouts.values()} == {"budget_tokens"}
        again = cli("resume", run_id, "--max-tokens-total", "4000", "--db", db)
        assert again.returncode == 0, again.stderr
        events = [e for _, e in read_events(open_db(db), run_id=run_id)]
        state = fold(events, run_id)
        outcomes[executor] = (
            sorted(
                (r.example_id, r.stop_reason, r.reward, len(r.turns), r.main_tokens) for r in state.rollouts.values()
            ),
            sum(isinstance(e, ev.RolloutResumed) for e in events),
        )
    assert outcomes["ray"] == outcomes["local"] and outcomes["ray"][1] == 2
    assert all(turns > 2 for _, _, _, turns, _ in outcomes["ray"][0])  # it went on past where the budget stopped it


def test_a_fork_of_a_ray_rollout_starts_at_its_turn_on_a_node_as_a_local_fork_does(cluster, tmp_path):
    c, _ = cluster
    outcomes = {}
    for executor in ("local", "ray"):
        db = str(tmp_path / f"{executor}.db")
        where = ["--executor", "ray", "--ray-address", c.address] if executor == "ray" else []
        parent = cli("run", "verbatim-copy", "--headless", "-n", "1", "--model", "scripted", "--db", db, *where)
        assert parent.returncode == 0, parent.stderr
        (rollout_id,) = [row[0] for row in open_db(db).execute("SELECT id FROM rollouts")]
        fork = cli("fork", rollout_id, "--at-turn", "2", "--message", "check it twice", "--headless", "--db", db)
        assert fork.returncode == 0, fork.stderr
        (forked,) = [
            row[0]
            for row in open_db(db).execute(
                "SELECT id FROM runs WHERE id != (SELECT run_id FROM rollouts WHERE id = ?)", [rollout_id]
            )
        ]
        (config,) = [
            json.loads(row[0]) for row in open_db(db).execute("SELECT config FROM runs WHERE id = ?", [forked])
        ]
        assert config["executor"] == executor  # the fork runs where its parent ran
        events = [e for _, e in read_events(open_db(db), run_id=forked)]
        (r,) = fold(events, forked).rollouts.values()
        outcomes[executor] = (
            r.status,
            r.reward,
            len(r.turns),
            [type(e).__name__ for e in events if isinstance(e, ev.RolloutForked)],
        )
    assert outcomes["ray"] == outcomes["local"] and outcomes["ray"][3] == ["RolloutForked"]


def test_with_retries_a_lost_nodes_rollouts_start_again_on_a_live_one_and_end_once(cluster, tmp_path):
    c, _ = cluster
    lost: dict = {}

    def watch(run, e):
        if isinstance(e, ev.CellFinished) and not lost:  # its node's rollouts are under way, their events stored
            lost["node"], lost["rollout"] = run.remote.node_of(e.rollout_id), e.rollout_id
            lost["theirs"] = {rid for rid, node in run.remote.owner.items() if node == lost["node"]}
            c.remove_node(next(n for n in c.worker_nodes if n.node_id == lost["node"]))

    run, state, stored = run_stored(tmp_path, "ray", 6, delay=0.2, watch=watch, retries=1)
    c.add_node(num_cpus=1, object_store_memory=80 * 1024 * 1024, resources={"nsjail": 1})
    _, _, local = run_stored(tmp_path, "local", 6)
    assert 0 < len(lost["theirs"]) < 6 and all(run.remote.node_of(rid) != lost["node"] for rid in state.rollouts)
    events = stored_events(tmp_path, run.id)
    finished = Counter(e.rollout_id for e in events if isinstance(e, ev.RolloutFinished))
    assert finished == Counter(set(state.rollouts))  # one finished record per rollout, none from a lost attempt
    started = Counter(e.rollout_id for e in events if isinstance(e, ev.RolloutStarted))
    assert lost["rollout"] in {rid for rid, k in started.items() if k == 2} <= lost["theirs"]
    rows = open_db(tmp_path / "ray.db").execute("SELECT status FROM rollouts WHERE run_id = ?", [run.id]).fetchall()
    assert [r[0] for r in rows] == ["done"] * 6 and stored.status == "done"

    def spent(state):  # the lost attempts' turns and tokens are not counted again
        return sorted((r.example_id, len(r.turns), r.main_tokens, r.sub_tokens) for r in state.rollouts.values())

    assert results(stored) == results(local) and spent(stored) == spent(local)


def test_a_node_lost_mid_run_fails_exactly_its_rollouts_naming_it(cluster, tmp_path):
    """Last in the file: it removes a node, then adds one back for the cluster's later users."""
    c, nodes = cluster
    lost: dict[str, str] = {}

    def watch(run, e):
        if isinstance(e, ev.RolloutStarted) and not lost:
            lost["node"] = run.remote.node_of(e.rollout_id)
            c.remove_node(next(n for n in c.worker_nodes if n.node_id == lost["node"]))

    run, state, stored = run_stored(tmp_path, "ray", 6, delay=0.2, watch=watch)
    c.add_node(num_cpus=1, object_store_memory=80 * 1024 * 1024, resources={"nsjail": 1})
    theirs = {rid for rid in state.rollouts if run.remote.node_of(rid) == lost["node"]}
    assert theirs and len(theirs) < len(state.rollouts)
    for rid, r in stored.rollouts.items():
        if rid in theirs:
            assert r.status == "failed" and f"node {lost['node']} was lost" in (r.error or "")
        else:
            assert r.status == "done", r.error


def test_a_cluster_with_no_jailing_node_ends_the_run_with_one_line_and_exit_2(cluster, tmp_path):
    """Last in the file: it removes every node that can jail."""
    c, _ = cluster
    for node in list(c.worker_nodes):
        c.remove_node(node)
    done = cli(*run_args(tmp_path / "cli.db", "--executor", "ray", "--ray-address", c.address))
    assert done.returncode == 2
    assert done.stderr == "rlm-tui: error: no live node of the Ray cluster offers the resource 'nsjail'\n"
