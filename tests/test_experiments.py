"""Experiments: files -> runs, the run store, local and Ray executors, resume after kill -9."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import yaml
from typer.testing import CliRunner

from aelab.cli import app
from aelab.errors import ConfigError
from aelab.experiments.runner import load_experiment, run_experiment
from aelab.experiments.spec import ExperimentConfig, resolve

runner = CliRunner()
SMALL = {"spec": {"type": "mlp", "hidden": [16], "code_size": 4}}


def write_exp(tmp_path, data: dict, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_grid_crossed_with_runs_and_stable_ids():
    exp = ExperimentConfig(name="e", data={"name": "digits"}, model=SMALL,
                           runs=[{}, {"training": {"optimizer": "sgd"}}],
                           grid={"training.lr": [1e-3, 3e-4], "seed": [0, 1]})
    runs = resolve(exp)
    assert len(runs) == 2 * 2 * 2
    assert len({r.id for r in runs}) == 8
    assert [r.id for r in resolve(exp)] == [r.id for r in runs]  # stable
    assert {(r.config.training.optimizer, r.config.training.lr, r.config.seed) for r in runs} == {
        (o, lr, s) for o in ("adam", "sgd") for lr in (1e-3, 3e-4) for s in (0, 1)}
    assert runs[0].config.data.name == "digits"
    grid_models = resolve(ExperimentConfig(name="m", grid={"model": ["linear-3", "conv-64"]}))
    assert [r.config.model.preset for r in grid_models] == ["linear-3", "conv-64"]


@pytest.mark.parametrize("data, expected", [
    ({"name": "e", "grid": {"training.lr": []}}, "grid key 'training.lr' has an empty list"),
    ({"name": "e", "grid": {"training.lrr": [1]}}, "grid key 'training.lrr' is not a config field; allowed at "
                                                   "training: epochs, batch_size"),
    ({"name": "e", "grid": {"optimizer": ["sgd"]}}, "allowed at the top level: name, seed, data, model, training"),
    ({"name": "e", "runs": [{}, {"training": {"epochs": 0}}]}, "run 2: training.epochs: Input should be greater"),
    ({"name": "e", "runs": [{}, {}]}, "is the same run as"),
    ({"name": "e", "epochs": 3}, "unknown key 'epochs'"),
])
def test_bad_experiments(data, expected):
    with pytest.raises(ConfigError, match=expected.replace("(", "\\(")):
        resolve(ExperimentConfig.model_validate(data) if "epochs" not in data else
                __import__("aelab.config", fromlist=["x"]).parse_config(ExperimentConfig, data))


def tiny_experiment(tmp_path, name="tiny", runs=None, epochs=2, batch_size=64):
    return write_exp(tmp_path, {
        "name": name, "data": {"name": "digits"}, "training": {"epochs": epochs, "batch_size": batch_size},
        "model": SMALL, "runs": runs or [{}, {"seed": 1}, {"model": "linear-3"}]}, f"{name}.yaml")


def test_local_executor_records_failures_and_skips_finished(tmp_path):
    path = tiny_experiment(tmp_path)
    records = run_experiment(path, tmp_path / "runs", workers=2, log=lambda m: None)
    assert [r["status"] for r in records] == ["done", "done", "failed"]
    assert "expects images of 1x28x28 but the data has 1x8x8" in records[2]["error"]
    m = records[0]["metrics"]
    assert m["test_images"] == 359 and m["epochs"] == 2 and 0 < m["test_mse"] < 1 and m["parameters"] == 64 * 16 + 16 + 16 * 4 + 4 + 4 * 16 + 16 + 16 * 64 + 64
    for r in records[:2]:
        assert (tmp_path / "runs" / "tiny" / r["id"] / "metrics.json").is_file()
    again = run_experiment(path, tmp_path / "runs", log=lambda m: None)
    assert [r["attempts"] for r in again] == [1, 1, 1]  # nothing re-run, failed not retried
    assert [r["metrics"] for r in again[:2]] == [r["metrics"] for r in records[:2]]
    retried = run_experiment(path, tmp_path / "runs", retry_failed=True, log=lambda m: None)
    assert [r["attempts"] for r in retried] == [1, 1, 2] and retried[2]["status"] == "failed"
    assert load_experiment("tiny", tmp_path / "runs") == retried


def test_two_runners_on_one_store_never_run_the_same_run_twice(tmp_path):
    path = tiny_experiment(tmp_path, "both", runs=[{"seed": s} for s in range(4)], epochs=3)
    cmd = [sys.executable, "-m", "aelab", "run", str(path), "--runs-dir", str(tmp_path / "runs"), "--workers", "1"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]
    records = load_experiment("both", tmp_path / "runs")
    assert [r["status"] for r in records] == ["done"] * 4
    assert [r["attempts"] for r in records] == [1] * 4


def _checkpoint_epoch(folder):
    import torch

    ckpts = list(folder.glob("*/checkpoint.pt"))
    if not ckpts:
        return 0
    try:
        return int(torch.load(ckpts[0], weights_only=True)["epoch"])
    except Exception:
        return 0


def test_kill_9_then_rerun_resumes_and_matches_an_uncut_run(tmp_path):
    runs_cfg = [{"seed": 0}, {"seed": 1}, {"seed": 2}]
    path = tiny_experiment(tmp_path, "killed", runs=runs_cfg, epochs=10, batch_size=16)
    root = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "aelab", "run", str(path), "--runs-dir", str(root), "--workers",
                             "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    store = root / "killed" / "runs.sqlite"
    deadline = time.time() + 240
    killed_in = None
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
        if not store.is_file():
            continue
        try:
            rows = sqlite3.connect(store).execute("SELECT id, status FROM runs ORDER BY position").fetchall()
        except sqlite3.Error:
            continue
        running = [rid for rid, st in rows if st == "running"]
        done = [rid for rid, st in rows if st == "done"]
        if done and running and 2 <= _checkpoint_epoch(root / "killed" / running[0]) <= 7:
            killed_in = running[0]
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=30)
    assert killed_in is not None, "the runner finished before it could be killed"
    before = {r["id"]: r for r in load_experiment("killed", root)}
    done_files = {rid: (root / "killed" / rid / "metrics.json").read_text() for rid, r in before.items()
                  if r["status"] == "done"}
    assert before[killed_in]["status"] == "running"

    records = run_experiment(path, root, workers=1, log=lambda m: None)
    after = {r["id"]: r for r in records}
    assert all(r["status"] == "done" for r in records)
    for rid, text in done_files.items():  # finished runs untouched
        assert after[rid]["attempts"] == 1 and (root / "killed" / rid / "metrics.json").read_text() == text
    assert after[killed_in]["attempts"] == 2 and after[killed_in]["metrics"]["resumed_from"] >= 2

    uncut_path = tiny_experiment(tmp_path, "uncut", runs=[runs_cfg[[r["id"] for r in records].index(killed_in)]],
                                 epochs=10, batch_size=16)
    uncut = run_experiment(uncut_path, root, log=lambda m: None)[0]
    assert uncut["id"] == killed_in  # same config -> same id
    for key in ("test_mse", "test_psnr", "final_train_loss"):
        assert uncut["metrics"][key] == after[killed_in]["metrics"][key]


def test_ray_executor_matches_local(tmp_path):
    pytest.importorskip("ray")
    path = tiny_experiment(tmp_path, "viaray", runs=[{}, {"seed": 1}])
    local = run_experiment(path, tmp_path / "local", executor="local", log=lambda m: None)
    remote = run_experiment(path, tmp_path / "ray", executor="ray", workers=2, log=lambda m: None)
    assert [r["status"] for r in remote] == ["done", "done"]
    assert [r["id"] for r in remote] == [r["id"] for r in local]
    for a, b in zip(local, remote):
        assert a["metrics"]["test_mse"] == b["metrics"]["test_mse"]


def test_tensorboard_logs(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    path = tiny_experiment(tmp_path, "tb", runs=[{}], epochs=3)
    rec = run_experiment(path, tmp_path / "runs", tensorboard=True, log=lambda m: None)[0]
    acc = EventAccumulator(str(tmp_path / "runs" / "tb" / rec["id"] / "tensorboard"))
    acc.Reload()
    assert {"loss/train", "loss/validation", "psnr/validation"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Scalars("loss/train")] == [1, 2, 3]
    assert acc.Tags()["images"]


def test_cli_run_runs_and_show(tmp_path):
    path = tiny_experiment(tmp_path, "cli", runs=[{}, {"seed": 3}])
    result = runner.invoke(app, ["run", str(path), "--runs-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert result.output.count(" done ") >= 2
    listing = runner.invoke(app, ["runs", "cli", "--runs-dir", str(tmp_path / "r")])
    rid = load_experiment("cli", tmp_path / "r")[0]["id"]
    assert listing.exit_code == 0 and rid in listing.output
    show = runner.invoke(app, ["runs", "show", rid[:6], "--runs-dir", str(tmp_path / "r")])
    assert show.exit_code == 0 and "test_mse" in show.output and "checkpoint.pt" in show.output


@pytest.mark.parametrize("exp, extra, expected", [
    ({"name": "x", "trainng": {}}, [], "unknown key 'trainng'"),
    ({"name": "x", "grid": {"training.lr": []}}, [], "has an empty list"),
    ({"name": "x", "grid": {"data.size": [1]}}, [], "grid key 'data.size' is not a config field"),
    ({"name": "x"}, ["--executor", "dask"], "--executor: got 'dask'; allowed: local, ray"),
    ({"name": "x"}, ["--executor", "ray", "--address", "127.0.0.1:1"], "does not answer"),
])
def test_cli_bad_input(tmp_path, exp, extra, expected):
    path = write_exp(tmp_path, exp)
    result = runner.invoke(app, ["run", str(path), "--runs-dir", str(tmp_path / "r"), *extra])
    assert result.exit_code == 2
    text = result.stderr.strip()
    assert text.startswith("error:") and len(text.splitlines()) == 1 and expected in text, text
    assert not (tmp_path / "r").exists()
