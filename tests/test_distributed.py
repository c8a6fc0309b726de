"""One run on several processes: two gloo processes on the loopback train the weights one process trains with the
same global batch; torchrun runs the CLI with rank 0 the only writer; a batch the processes cannot share is
refused before anything is written."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from aelab.config import DataConfig, ModelConfig, TrainingConfig
from aelab.errors import ConfigError
from aelab.training.distributed import check_batch_size, share

MODELS = {
    "mlp": {"spec": {"type": "mlp", "hidden": [32], "code_size": 4}},
    "conv": {
        "spec": {
            "type": "conv",
            "layers": [{"channels": 4, "stride": 2, "padding": 1}, {"channels": 8, "stride": 2, "padding": 1}],
        }
    },
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fit(model_name: str, run_dir=None):
    from aelab.data import load_dataset
    from aelab.models import build_model
    from aelab.training import train

    ds = load_dataset(DataConfig(name="digits"))
    torch.manual_seed(0)
    model = build_model(ModelConfig.model_validate(MODELS[model_name]), ds.shape)
    # 1,366 training images in batches of 64: the last batch (22) is shared 11 + 11, the others 32 + 32
    cfg = TrainingConfig(epochs=2, batch_size=64)
    result = train(model, ds, cfg, seed=0, run_dir=run_dir, progress=False)
    return model, result


def _rank(rank: int, port: int, model_name: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        model, result = fit(model_name, run_dir=Path(out) / "run")
        torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, Path(out) / f"rank{rank}.pt")
        (Path(out) / f"loss{rank}.json").write_text(json.dumps(result.history.train_loss))
    finally:
        dist.destroy_process_group()


def test_shares_of_a_global_batch():
    idx = torch.arange(22)
    assert share(idx) == (idx, 1.0)  # one process: the whole batch
    with pytest.raises(ConfigError, match=r"training.batch_size: got 63, which 2 processes .* a multiple of 2"):
        check_batch_size(63, 2)
    check_batch_size(64, 2)


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["mlp", "conv"])
def test_two_gloo_processes_train_the_weights_of_one(model_name, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each of the two processes (summation order within a thread count is fixed)
    try:
        single, single_result = fit(model_name)
    finally:
        torch.set_num_threads(threads)  # the tests after this one compare runs made with the default
    mp.spawn(_rank, args=(free_port(), model_name, str(tmp_path)), nprocs=2, join=True)
    weights = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for key, value in single.state_dict().items():
        assert torch.equal(weights[0][key], weights[1][key]), key  # the processes agree exactly
        assert (weights[0][key] - value).abs().max() < 1e-5, key  # and with one process on the whole batch
    losses = [json.loads((tmp_path / f"loss{r}.json").read_text()) for r in (0, 1)]
    assert losses[0] == losses[1]
    assert losses[0] == pytest.approx(single_result.history.train_loss, rel=1e-5)
    assert (tmp_path / "run" / "checkpoint.pt").is_file()  # written by rank 0 alone


def _finishing(rank: int, port: int, out: str) -> None:
    """Rank 0 writes its outputs slowly, then finishes; rank 1 finishes at once and notes what it saw."""
    import time

    from aelab.training import distributed

    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank), "WORLD_SIZE": "2"}
    os.environ.update({**env, "LOCAL_RANK": str(rank)})
    assert distributed.join_from_environment() == (rank, 2)
    if rank == 0:
        time.sleep(1.0)
        (Path(out) / "written").write_text("rank 0's outputs")
    distributed.finish()
    if rank == 1:
        (Path(out) / "seen").write_text(str((Path(out) / "written").exists()))
    assert distributed.world() == (0, 1)  # the group is gone
    distributed.finish()  # a second call (and the exit hook) does nothing


@pytest.mark.slow
def test_a_finished_follower_leaves_the_group_only_after_rank_0_finished(tmp_path):
    mp.spawn(_finishing, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    assert (tmp_path / "seen").read_text() == "True"  # rank 1 waited the second rank 0 took to write


EXPERIMENT = """
name: ddp
data: {name: digits}
model: {spec: {type: mlp, hidden: [32], code_size: 4}}
training: {epochs: 2, batch_size: 64}
"""


def aelab(tmp_path, processes: int, *args: str) -> subprocess.CompletedProcess:
    """``aelab run`` of the experiment, under ``torchrun --nproc-per-node processes`` when more than one."""
    (tmp_path / "exp.yaml").write_text(EXPERIMENT)
    cmd = [sys.executable, "-m", "aelab", "run", "exp.yaml", "--no-analysis", "--no-progress", *args]
    if processes > 1:
        launcher = ["-m", "torch.distributed.run", "--nproc-per-node", str(processes), "--master-addr", "127.0.0.1"]
        cmd = [sys.executable, *launcher, "--master-port", str(free_port()), *cmd[1:]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)


@pytest.mark.slow
def test_torchrun_trains_one_run_on_two_processes_with_rank_0_the_only_writer(tmp_path):
    out = aelab(tmp_path, 2, "--runs-dir", "runs")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count(": test MSE") == 1  # one process reports
    [metrics] = (tmp_path / "runs" / "ddp").glob("*/metrics.json")
    row = json.loads(metrics.read_text())
    assert row["world_size"] == 2 and row["epochs"] == 2
    one = aelab(tmp_path, 1, "--runs-dir", "one")
    assert one.returncode == 0, one.stderr[-2000:]
    [single] = (tmp_path / "one" / "ddp").glob("*/metrics.json")
    one_row = json.loads(single.read_text())
    assert one_row["world_size"] == 1 and metrics.parent.name == single.parent.name  # the same run id
    assert row["test_mse"] == pytest.approx(one_row["test_mse"], rel=1e-4)
    again = aelab(tmp_path, 2, "--runs-dir", "runs")  # finished: found done, nothing trained again
    assert again.returncode == 0 and "1 done or failed before, 0 to run" in again.stdout, again.stderr[-2000:]


@pytest.mark.slow
def test_torchrun_with_a_batch_the_processes_cannot_share_is_refused_and_writes_nothing(tmp_path):
    out = aelab(tmp_path, 2, "--runs-dir", "runs", "--set", "training.batch_size=63")
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    # one line from each process that got as far: torchrun stops the other process once one has failed,
    # so the second line is there only when both finished checking before torchrun's SIGTERM
    assert 1 <= len(errors) <= 2, out.stderr[-3000:]
    assert all("training.batch_size: got 63, which 2 processes" in e for e in errors)
    assert not [line for line in out.stderr.splitlines() if line.startswith("[rank")]  # no process's traceback
    # each process exits 2; torchrun itself reports its failed children and exits 1
    assert "exitcode  : 2" in out.stderr and out.returncode == 1
    assert not (tmp_path / "runs").exists()


def launched(tmp_path, *args: str) -> subprocess.CompletedProcess:
    """``aelab run --nproc-per-node 2`` of the experiment: aelab starts the processes itself."""
    (tmp_path / "exp.yaml").write_text(EXPERIMENT)
    cmd = [sys.executable, "-m", "aelab", "run", "exp.yaml", "--no-analysis", "--no-progress", "--runs-dir", "runs"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd += ["--nproc-per-node", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)


@pytest.mark.slow
def test_nproc_per_node_launches_the_processes_and_prints_the_table_once(tmp_path):
    out = launched(tmp_path, "--set", "training.epochs=1")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count(": test MSE") == 1 and out.stdout.count("ddp: test set") == 1, out.stdout
    [metrics] = (tmp_path / "runs" / "ddp").glob("*/metrics.json")
    row = json.loads(metrics.read_text())
    assert row["world_size"] == 2 and row["epochs"] == 1  # the --set reached the processes


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "training.batch_size=63"], "training.batch_size: got 63, which 2 processes (--nproc-per-node)"),
        (["--executor", "local"], "--executor: got 'local' with 2 processes per run; allowed: inline"),
    ],
)
def test_nproc_per_node_refuses_bad_input_before_starting_processes(tmp_path, args, message):
    out = launched(tmp_path, *args)
    assert out.returncode == 2, out.stderr[-3000:]
    assert out.stderr.strip().startswith(f"error: {message}") and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
