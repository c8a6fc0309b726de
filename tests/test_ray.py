"""Every test that imports Ray, in one module (README's test command gives a module's tests one pytest-xdist
worker, so one Ray exists at a time on the machine: a local ``ray.init()`` joins a cluster it finds, and ``ray stop
--force`` ends them all).

The local Ray executor, bad Ray addresses and nodes, then a real Ray cluster on this machine's loopback: a head
node and one more worker node (``ray start``, each with its own temp dir and one CPU), an experiment run on it with
``--executor ray --address``, a worker killed mid-run. The lost task is retried from the run's last checkpoint, and
every run ends with the metrics of an uncut run. (Ray's client turns a loopback ``--address`` into this machine's own
address: the traffic stays on this machine.)"""

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
from typer.testing import CliRunner

from aelab.cli import app
from aelab.experiments.jobs import run_experiment

pytestmark = pytest.mark.requires("ray")
runner = CliRunner()
SMALL = {"spec": {"type": "mlp", "hidden": [16], "code_size": 4}}
QUIET = {"log": lambda m: None, "analyses": False}


@pytest.fixture(scope="module", autouse=True)
def ray_imported_outside_the_cli_runner():
    """Ray's logger keeps the ``sys.stderr`` of its first import: imported inside click's test runner, it would
    write into that test's closed stream ever after (and spill a logging error into a later test's stderr)."""
    pytest.importorskip("ray")


def write_exp(tmp_path, data: dict, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


EXPERIMENT = {
    "name": "cluster",
    "data": {"name": "digits"},
    "training": {"epochs": 60, "batch_size": 16},
    "model": {"spec": {"type": "mlp", "hidden": [256, 256], "code_size": 8}},
    "runs": [{}, {"seed": 1}],
}


@pytest.mark.slow
def test_local_processes_and_ray_match_inline(tmp_path):
    data = {"name": "viaray", "data": {"name": "digits"}, "training": {"epochs": 2, "batch_size": 64}, "model": SMALL}
    path = write_exp(tmp_path, {**data, "runs": [{}, {"seed": 1}]}, "viaray.yaml")
    inline = run_experiment(path, runs_dir=tmp_path / "inline", **QUIET).records
    local = run_experiment(path, runs_dir=tmp_path / "local", executor="local", **QUIET).records
    remote = run_experiment(path, runs_dir=tmp_path / "ray", executor="ray", workers=2, **QUIET).records
    assert [r["status"] for r in remote] == ["done", "done"]
    assert [r["id"] for r in remote] == [r["id"] for r in local] == [r["id"] for r in inline]
    for a, b, c in zip(inline, local, remote):
        assert a["metrics"]["test_mse"] == b["metrics"]["test_mse"] == c["metrics"]["test_mse"]


def test_an_unanswered_address_is_refused_in_one_line_and_nothing_is_written(tmp_path):
    path = write_exp(tmp_path, {"name": "x", "data": {"name": "digits"}, "model": SMALL})
    result = runner.invoke(
        app, ["run", str(path), "--runs-dir", str(tmp_path / "r"), "--executor", "ray", "--address", "127.0.0.1:1"]
    )
    assert result.exit_code == 2
    text = result.stderr.strip()
    assert text.startswith("error:") and len(text.splitlines()) == 1 and "does not answer" in text, text
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_a_node_that_cannot_see_the_runs_folder_is_named_and_nothing_is_recorded(tmp_path, monkeypatch):
    import aelab.experiments.executors as executors

    monkeypatch.setattr(executors, "_can_see", lambda path: (False, "node-b"))  # as a node without the folder
    path = write_exp(tmp_path, {"name": "x", "data": {"name": "digits"}, "model": SMALL})
    runs = tmp_path / "r"
    result = runner.invoke(app, ["run", str(path), "--runs-dir", str(runs), "--executor", "ray", "--workers", "1"])
    assert result.exit_code == 2, result.output
    text = result.stderr.strip()
    assert len(text.splitlines()) == 1 and text.startswith("error: node 'node-b' (")
    assert f"cannot see the runs folder {str(runs.resolve())!r}; every node needs it at the same path" in text
    assert not runs.exists()  # the probe and the folder it made are gone; nothing recorded


def test_an_address_that_answers_but_is_not_ray_is_refused_in_one_line(tmp_path):
    """Ray itself retries such an address for minutes; aelab's gRPC greeting finds out at once."""
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def serve():  # a web server, as a dashboard's port is
        for _ in range(4):
            try:
                conn, _ = server.accept()
            except OSError:  # the test closed the server: done
                return
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nnot ray\n")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    address = f"127.0.0.1:{server.getsockname()[1]}"
    path = write_exp(tmp_path, {"name": "x", "data": {"name": "digits"}, "model": SMALL})
    result = runner.invoke(
        app, ["run", str(path), "--runs-dir", str(tmp_path / "r"), "--executor", "ray"] + ["--address", address]
    )
    server.close()
    assert result.exit_code == 2
    text = result.stderr.strip()
    assert len(text.splitlines()) == 1 and f"--address: '{address}' answers but is not a Ray cluster" in text
    assert not (tmp_path / "r").exists()


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


@pytest.mark.slow
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
