"""A real Ray cluster on this machine's loopback: a head node and one more worker node (``ray start``, each with
its own temp dir and one CPU), an experiment run on it with ``--executor ray --address``, a worker killed mid-run.
The lost task is retried from the run's last checkpoint, and every run ends with the metrics of an uncut run.
(Ray's client turns a loopback ``--address`` into this machine's own address: the traffic stays on this machine.)"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.requires("ray")]

EXPERIMENT = {
    "name": "cluster",
    "data": {"name": "digits"},
    "training": {"epochs": 60, "batch_size": 16},
    "model": {"spec": {"type": "mlp", "hidden": [256, 256], "code_size": 8}},
    "runs": [{}, {"seed": 1}],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_cli(*args: str, env: dict) -> None:
    ray = str(Path(sys.executable).parent / "ray")
    out = subprocess.run([ray, *args], capture_output=True, text=True, env=env, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]


def training_workers() -> list[int]:
    """Pids of the Ray worker processes running aelab's ``work`` task (Ray titles them ``ray::work``)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if cmdline.startswith("ray::work"):
                pids.append(int(proc.name))
    return pids


@pytest.fixture
def cluster():
    pytest.importorskip("ray")
    port = free_port()
    # Ray >= 2.59 turns token authentication on for a head started where a token file exists (an earlier ray.init
    # writes one), and a joining node does not send it: this loopback-only test cluster runs without it
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    # short temp dirs: Ray's unix sockets live under them and their paths are limited to ~107 characters
    head, worker = tempfile.mkdtemp(prefix="rh", dir="/tmp"), tempfile.mkdtemp(prefix="rw", dir="/tmp")
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"]
    ray_cli(
        "start", "--head", "--port", str(port), "--temp-dir", head, "--include-dashboard", "false", *common, env=env
    )
    try:
        ray_cli("start", "--address", f"127.0.0.1:{port}", "--temp-dir", worker, *common, env=env)
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], capture_output=True, env=env)


def test_a_lost_worker_costs_at_most_its_epoch_and_every_run_ends_done(cluster, tmp_path, monkeypatch):
    from aelab.experiments.jobs import run_experiment

    address, env = cluster
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(EXPERIMENT))
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "aelab", "run", str(path), "--executor", "ray", "--address", address]
    proc = subprocess.Popen(
        [*cmd, "--runs-dir", str(runs), "--no-analysis", "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "AELAB_LEASE_SECONDS": "30"},
    )
    try:
        deadline = time.time() + 240
        while len(list(runs.glob("cluster/*/checkpoint.pt"))) < 2:  # both runs on their nodes, past epoch 1
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.time() < deadline, "the runs never started on the cluster"
            time.sleep(0.2)
        victims = training_workers()
        assert victims, "no ray::work process found"
        os.kill(victims[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "cluster: 2 runs" in out or "2 runs" in out

    from aelab.experiments.folders import store_path
    from aelab.experiments.store import RunStore

    with RunStore(store_path(runs)) as store:
        records = store.records("cluster")
    assert [r["status"] for r in records] == ["done", "done"]
    resumed = [r["metrics"]["resumed_from"] for r in records]
    assert max(resumed) > 0 and min(resumed) == 0, resumed  # one run lost its worker and resumed, the other did not
    assert sorted(r["attempts"] for r in records) == [1, 1]  # Ray retried the task; the driver's claim was one

    # the same experiment uncut on the same cluster (one CPU per node: the same torch threads as the cut one)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    uncut = run_experiment(
        path, runs_dir=tmp_path / "uncut", executor="ray", address=address, log=lambda m: None, analyses=False
    ).records
    assert [r["metrics"]["resumed_from"] for r in uncut] == [0, 0]
    for cut, whole in zip(records, uncut):
        assert cut["id"] == whole["id"]
        for key in ("test_mse", "final_train_loss", "final_val_loss"):
            assert cut["metrics"][key] == whole["metrics"][key], key
    # nothing else written: the store, the experiment folder with its two run folders, no probe files
    assert sorted(p.name for p in runs.iterdir() if not p.name.startswith("aelab.sqlite")) == ["cluster"]
    folders = sorted(f"cluster/{p.name}" for p in (runs / "cluster").iterdir() if p.is_dir())
    assert folders == sorted(r["folder"] for r in records)
