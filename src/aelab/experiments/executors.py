"""Where the runs of an experiment execute: this process one after another (``inline``), local worker processes
(``local``), or Ray tasks (``ray``). Every executor calls the one run engine (:func:`.engine.execute_run`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from aelab.errors import AelabError, ConfigError
from aelab.experiments.engine import execute_run
from aelab.experiments.resolve import ResolvedRun

EXECUTORS = ("inline", "local", "ray")


def check_executor(executor: str, workers: int | None) -> None:
    """Refuse an unknown executor or a worker count below 1.

    Raises:
        ConfigError: either.
    """
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor: got {executor!r}; allowed: {', '.join(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers: got {workers}; allowed: 1 or more")


def execute(
    executor: str,
    todo: list[ResolvedRun],
    root: Path,
    options: dict,
    log: Callable[[str], None],
    workers: int | None = None,
    address: str | None = None,
    progress: bool = False,
    on_epoch=None,
) -> None:
    """Run ``todo`` with ``executor`` (``options``: the engine's retry_failed, tensorboard, analyses)."""
    if executor == "inline":
        run_inline(todo, root, options, log, progress, on_epoch)
    elif executor == "local" and todo:
        run_local(todo, root, workers, options, log)
    elif todo:
        run_ray(todo, root, workers, address, options, log)


def run_inline(
    todo: list[ResolvedRun], root: Path, options: dict, log: Callable[[str], None], progress: bool, on_epoch=None
) -> None:
    """One run after another in this process (progress bars and ``on_epoch`` work here)."""
    for r in todo:
        log(
            f"  {r.id} {r.name}: "
            f"{execute_run(str(root), r.id, progress=progress, on_epoch=on_epoch, log=log, **options)}"
        )


def run_local(todo: list[ResolvedRun], root: Path, workers: int | None, options: dict, log) -> None:
    """One process per run, ``workers`` at a time, the CPU threads divided among them."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    cores = os.cpu_count() or 1
    n = max(1, min(workers or cores, len(todo)))
    threads = max(1, cores // n)
    with ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(execute_run, str(root), r.id, threads=threads, **options): r for r in todo}
        for fut, r in futures.items():
            log(f"  {r.id} {r.name}: {fut.result()}")


def check_ray_address(address: str) -> None:
    """Refuse a Ray address that does not answer, before anything is written.

    Raises:
        AelabError: nothing listens at the address.
    """
    import socket

    if address in ("auto", "local"):
        return
    host, _, port = address.replace("ray://", "").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=3):
            return
    except (OSError, ValueError) as exc:
        raise AelabError(
            f"--address: the Ray cluster at {address!r} does not answer ({exc}); start it with "
            "'ray start --head' or leave --address out for a local Ray"
        ) from None


def run_ray(todo: list[ResolvedRun], root: Path, workers: int | None, address: str | None, options: dict, log) -> None:
    """Each run a Ray task (of a local Ray, or the cluster at ``address``)."""
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
        refs = {task.remote(str(root), r.id, threads=cpus, **options): r for r in todo}
        for ref, r in refs.items():
            log(f"  {r.id} {r.name}: {ray.get(ref)}")
    finally:
        if started_here:
            ray.shutdown()
