"""Run an experiment file: resolve its runs, index them in the run store, and execute the ones still to do
with local processes (``spawn``) or Ray tasks. Each run is the same machinery as ``aelab train``: its folder
is ``<runs>/<experiment>/<run id>/`` and a cut run resumes from its last checkpoint.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

from aelab.config import CompareConfig, RunConfig
from aelab.errors import AelabError, ConfigError
from aelab.experiments.spec import ExperimentConfig, load_experiment_file, resolve
from aelab.experiments.store import RunStore

STORE_NAME = "runs.sqlite"


def execute_run(store_path: str, run_id: str, exp_dir: str, retry_failed: bool = False, threads: int = 0,
                tensorboard: bool = False) -> str:
    """Claim and run one run of the store; record done (with metrics) or failed (with the error).

    Returns: 'done', 'failed' or 'skipped' (another process has it, or it is finished).
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    store = RunStore(store_path)
    try:
        if not store.claim(run_id, retry_failed):
            return "skipped"
        config = RunConfig.model_validate(store.get(run_id)["config"])
        t0 = time.time()
        try:
            metrics = _train_one(config, Path(exp_dir) / run_id, tensorboard)
        except Exception as exc:  # a failed run is recorded and does not stop the others
            message = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, AelabError):
                message += " | " + traceback.format_exc(limit=3).strip().splitlines()[-2].strip()
            store.fail(run_id, message, time.time() - t0)
            return "failed"
        store.finish(run_id, metrics, time.time() - t0)
        return "done"
    finally:
        store.close()


def _train_one(config: RunConfig, run_dir: Path, tensorboard: bool) -> dict:
    from aelab.experiments.compare import compare

    on_epoch = _tensorboard_logger(run_dir / "tensorboard", config) if tensorboard else None
    cfg = CompareConfig(name=run_dir.name, seed=config.seed, data=config.data, models=[config.model],
                        training=config.training)
    result = compare(cfg, run_dir=run_dir, resume=True, progress=False, log=lambda m: None, analyses=False,
                     on_epoch=on_epoch)
    row = dict(result.rows[0])
    row["resumed_from"] = result.models[0].result.resumed_from
    row["baseline_mean_image_mse"] = result.baseline_mse
    return row


def _tensorboard_logger(logdir: Path, config: RunConfig):
    import math

    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(logdir))

    def on_epoch(epoch: int, history) -> None:
        writer.add_scalar("loss/train", history.train_loss[-1], epoch)
        if history.val_loss[-1] == history.val_loss[-1]:
            writer.add_scalar("loss/validation", history.val_loss[-1], epoch)
            if config.training.loss == "mse" and history.val_loss[-1] > 0:
                writer.add_scalar("psnr/validation", 10 * math.log10(1 / history.val_loss[-1]), epoch)
        if epoch in history.snapshots:
            both = _pair_as_floats(history.snapshot_originals, history.snapshots[epoch])
            writer.add_images("reconstructions (top: originals)", both, epoch, dataformats="NCHW")
        writer.flush()

    return on_epoch


def _pair_as_floats(originals, reconstructions):
    """uint8 originals and reconstructions ``(S, C, H, W)`` stacked as floats in [0, 1] ``(2S, C, H, W)``."""
    import torch

    from aelab.data import to_unit_float

    return to_unit_float(torch.cat([originals, reconstructions]))


def _check_ray_address(address: str) -> None:
    if address in ("auto", "local"):
        return
    host, _, port = address.replace("ray://", "").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=3):
            return
    except (OSError, ValueError) as exc:
        raise AelabError(f"--address: the Ray cluster at {address!r} does not answer ({exc}); start it with "
                         "'ray start --head' or leave --address out for a local Ray") from None


def run_experiment(experiment: ExperimentConfig | Path | str, runs_root: Path | str = "runs", executor: str = "local",
                   workers: int | None = None, address: str | None = None, retry_failed: bool = False,
                   tensorboard: bool = False, log: Callable[[str], None] = print) -> list[dict]:
    """Run every run of ``experiment`` that is not done yet.

    Args:
        experiment: an :class:`ExperimentConfig` or the path of its YAML file.
        runs_root: parent of the experiment folder ``<runs_root>/<name>/`` (run folders + ``runs.sqlite``).
        executor: ``local`` (separate processes, CPU threads divided among workers) or ``ray``.
        workers: parallel runs (local; default: as many as cores, at most the runs to do).
        address: Ray cluster address (default: start a local Ray).
        retry_failed: run failed runs again.
        tensorboard: write TensorBoard scalars and images into each run folder.

    Returns:
        The store's records of the experiment (see :meth:`RunStore.records`).

    Raises:
        ConfigError / AelabError: bad experiment file, unknown executor, a Ray address that does not answer.
    """
    if executor not in ("local", "ray"):
        raise ConfigError(f"--executor: got {executor!r}; allowed: local, ray")
    if isinstance(experiment, (str, Path)):
        source = str(experiment)
        experiment = load_experiment_file(experiment)
    else:
        source = experiment.name
    runs = resolve(experiment, source)
    if executor == "ray" and address:
        _check_ray_address(address)
    exp_dir = Path(runs_root) / experiment.name
    store = RunStore(exp_dir / STORE_NAME)
    store.add(experiment.name, runs)
    status = {r["id"]: r["status"] for r in store.records(experiment.name)}
    todo = [r for r in runs if status[r.id] != "done" and (status[r.id] != "failed" or retry_failed)]
    log(f"experiment {experiment.name}: {len(runs)} runs, {len(runs) - len(todo)} already done or failed, "
        f"{len(todo)} to run ({executor})")
    if todo:
        cores = os.cpu_count() or 1
        if executor == "local":
            n = max(1, min(workers or cores, len(todo)))
            threads = max(1, cores // n)
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
                futures = {pool.submit(execute_run, str(store.path), r.id, str(exp_dir), retry_failed, threads,
                                       tensorboard): r for r in todo}
                for fut, r in futures.items():
                    log(f"  {r.id} {r.name}: {fut.result()}")
        else:
            _run_ray(todo, store, exp_dir, retry_failed, tensorboard, address, workers, log)
    records = store.records(experiment.name)
    store.close()
    return records


def _run_ray(todo, store, exp_dir, retry_failed, tensorboard, address, workers, log) -> None:
    try:
        import ray
    except ImportError:
        raise AelabError("the Ray executor needs Ray: pip install 'aelab[ray]'") from None
    import torch

    started_here = not ray.is_initialized()
    if started_here:
        kwargs = {"address": address} if address else {"num_cpus": workers or os.cpu_count() or 1}
        ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
    try:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)) // max(1, min(len(todo), workers or len(todo))))
        gpus = (1.0 / len(todo)) if torch.cuda.is_available() else 0
        task = ray.remote(num_cpus=cpus, num_gpus=gpus)(execute_run)
        refs = {task.remote(str(store.path), r.id, str(exp_dir), retry_failed, cpus, tensorboard): r for r in todo}
        for ref, r in refs.items():
            log(f"  {r.id} {r.name}: {ray.get(ref)}")
    finally:
        if started_here:
            ray.shutdown()


def load_experiment(name_or_dir: str | Path, runs_root: Path | str = "runs") -> list[dict]:
    """The run records of an experiment (its folder, or its name under ``runs_root``).

    Raises:
        AelabError: no run store there.
    """
    path = Path(name_or_dir)
    if not (path / STORE_NAME).is_file():
        path = Path(runs_root) / str(name_or_dir)
    if not (path / STORE_NAME).is_file():
        raise AelabError(f"no experiment {str(name_or_dir)!r}: {str(path / STORE_NAME)!r} does not exist")
    store = RunStore(path / STORE_NAME)
    try:
        return store.records()
    finally:
        store.close()
