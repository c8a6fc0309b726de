"""The driver: it claims an experiment's runs in the run store (with leases its heartbeat renews), hands each
run's config and folder to a worker, and records what comes back. Workers run the one run engine
(:func:`.engine.work`) and never open the store; they run in this process one after another (``inline``), in local
worker processes (``local``), or as Ray tasks on any node of a cluster (``ray``, retried from their last checkpoint
when a worker or node is lost)."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from aelab.errors import AelabError, ConfigError
from aelab.experiments.engine import work
from aelab.experiments.folders import store_path
from aelab.experiments.resolve import ResolvedRun
from aelab.experiments.store import RunStore

EXECUTORS = ("inline", "local", "ray")
RAY_RETRIES = 3
"""Times Ray runs a task again when its worker process or node is lost (the run resumes from its checkpoint)."""


def lease_seconds() -> float:
    """How long a claim lasts without a heartbeat (``$AELAB_LEASE_SECONDS``, default 120 s); renewed every third."""
    return float(os.environ.get("AELAB_LEASE_SECONDS", "120"))


class Driver:
    """The one owner of the store while an experiment runs: claims, a heartbeat thread that renews the leases
    of the runs in flight, and the records of their results."""

    def __init__(self, root: Path, retry_failed: bool, log: Callable[[str], None]) -> None:
        self.root, self.retry_failed, self.log = root, retry_failed, log
        self.owner = uuid.uuid4().hex
        self.ttl = lease_seconds()
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True)

    def __enter__(self) -> Driver:
        self._beat.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._beat.join()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            with RunStore(store_path(self.root)) as store:
                store.renew(self.owner, self.ttl)

    def claim(self, runs: list[ResolvedRun]) -> list[tuple[ResolvedRun, str]]:
        """The runs this driver got, each with its folder (relative to the root); the others are said."""
        got = []
        with RunStore(store_path(self.root)) as store:
            for r in runs:
                if store.claim(r.id, self.owner, self.ttl, self.retry_failed):
                    got.append((r, store.get(r.id)["folder"]))  # type: ignore[index]
                else:
                    self.log(f"  {r.id} {r.name}: skipped (another process has it, or it is finished)")
        return got

    def record(self, run: ResolvedRun, result: dict) -> None:
        """Record a worker's result (or the error that lost it) and say it."""
        with RunStore(store_path(self.root)) as store:
            if result["status"] == "done":
                store.finish(run.id, result["metrics"], result["seconds"])
            else:
                store.fail(run.id, result["error"], result.get("seconds") or 0.0)
        self.log(f"  {run.id} {run.name}: {result['status']}")


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
    progress: bool = False,
    on_epoch=None,
    before_training: Callable[[], object] | None = None,
) -> None:
    """Claim ``todo``, run what was claimed with ``executor`` and record the results (``options``: retry_failed,
    and the engine's tensorboard, analyses, samples); ``before_training`` is called once before the first run
    trains in this process (inline)."""
    options = dict(options)
    with Driver(root, options.pop("retry_failed", False), log) as driver:
        claimed = driver.claim(todo)
        if executor == "inline":
            _share_with_followers(claimed)
            if claimed and before_training is not None:
                before_training()
            for r, folder in claimed:
                driver.record(
                    r,
                    work(
                        str(root),
                        folder,
                        r.config.model_dump(mode="json"),
                        progress=progress,
                        on_epoch=on_epoch,
                        log=log,
                        **options,
                    ),
                )
        elif executor == "local" and claimed:
            run_local(driver, claimed, workers, options)
        elif claimed:
            run_ray(driver, claimed, workers, options)


def _share_with_followers(claimed: list[tuple[ResolvedRun, str]]) -> None:
    """In a process group started by ``torchrun``: tell the other processes which runs to train with this one."""
    import sys

    if "torch.distributed" not in sys.modules:  # no process group without it; spares the torch import
        return
    from aelab.training.distributed import broadcast, world

    if world()[1] > 1:
        broadcast([(r.config.model_dump(mode="json"), folder) for r, folder in claimed])


def run_local(driver: Driver, claimed: list[tuple[ResolvedRun, str]], workers: int | None, options: dict) -> None:
    """One process per run, ``workers`` at a time, the CPU threads divided among them."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    cores = os.cpu_count() or 1
    n = max(1, min(workers or cores, len(claimed)))
    threads = max(1, cores // n)
    with ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {
            pool.submit(work, str(driver.root), folder, r.config.model_dump(mode="json"), threads=threads, **options): r
            for r, folder in claimed
        }
        for fut in as_completed(futures):
            driver.record(futures[fut], _result(fut.result))


def _result(get: Callable[[], dict]) -> dict:
    """A worker's result, or the error that lost it (a worker that raised, a process or node that died)."""
    try:
        return get()
    except Exception as exc:  # whatever lost the worker is the run's failure, recorded with its message
        from aelab.experiments.engine import failure_message

        return {"status": "failed", "error": failure_message(exc), "seconds": 0.0}


# ------------------------------------------------------------------------------------------------------- Ray
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
"""What a gRPC client sends first: the HTTP/2 connection preface and an empty SETTINGS frame."""


def check_ray_address(address: str) -> None:
    """Refuse a Ray address that does not answer, or answers without speaking gRPC as Ray's GCS (and its client
    server) do, before anything is written: Ray itself would retry such an address for minutes.

    Raises:
        AelabError: nothing listens at the address, or what listens does not answer an HTTP/2 (gRPC) greeting
            with its SETTINGS frame within 5 s.
    """
    import socket

    if address in ("auto", "local"):
        return
    host, _, port = address.replace("ray://", "").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=3) as conn:
            conn.settimeout(5)
            conn.sendall(HTTP2_PREFACE)
            reply = conn.recv(9)
    except (OSError, ValueError) as exc:
        if isinstance(exc, TimeoutError) or "timed out" in str(exc):
            reply = b""
        else:
            raise AelabError(
                f"--address: the Ray cluster at {address!r} does not answer ({exc}); start it with "
                "'ray start --head' or leave --address out for a local Ray"
            ) from None
    if len(reply) < 4 or reply[3] != 4:  # an HTTP/2 frame header whose type is SETTINGS
        raise AelabError(
            f"--address: {address!r} answers but is not a Ray cluster to join (no gRPC answer); give the "
            "address 'ray start --head' printed (its GCS port, 6379 by default), not the dashboard's"
        )


def _can_see(path: str) -> tuple[bool, str]:
    import socket

    return Path(path).is_file(), socket.gethostname()


@contextmanager
def ray_session(address: str | None, workers: int | None, root: Path) -> Iterator[None]:
    """Connect to Ray (a local one, or the cluster at ``address``) and check that every node sees the runs folder,
    before anything is recorded; disconnect at the end (a Ray this process started is shut down).

    Raises:
        AelabError: Ray is not installed, the address cannot be joined, or a node cannot see the runs folder
            (the path and the node named).
    """
    try:
        import ray
    except ImportError:
        raise AelabError("the Ray executor needs Ray: pip install 'aelab[ray]'") from None
    if address:
        check_ray_address(address)
    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict[str, Any] = {"address": address} if address else {"num_cpus": workers or os.cpu_count() or 1}
        try:
            ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise AelabError(
                f"--address: cannot join the Ray cluster at {address!r} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''})"
            ) from None
    try:
        _check_nodes_see(root)
        yield
    finally:
        if started_here:
            ray.shutdown()


def _check_nodes_see(root: Path) -> None:
    """Run a probe on every alive node: it looks for a file the driver wrote into the runs folder."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    probe = root / f".aelab-probe-{uuid.uuid4().hex}"
    probe.write_text("the driver wrote this; every node must see it\n")
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        task = ray.remote(num_cpus=0)(_can_see)
        refs = [
            task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
                str(probe.resolve())
            )
            for n in nodes
        ]
        for (seen, host), node in zip(ray.get(refs, timeout=120), nodes):
            if not seen:
                raise AelabError(
                    f"node {host!r} ({node.get('NodeManagerAddress')}) cannot see the runs folder "
                    f"{str(root.resolve())!r}; every node needs it at the same path (a shared file "
                    "system, as Ray Train's storage_path)"
                )
    finally:
        probe.unlink(missing_ok=True)
        if created and not any(root.iterdir()):
            root.rmdir()


def run_ray(driver: Driver, claimed: list[tuple[ResolvedRun, str]], workers: int | None, options: dict) -> None:
    """Each run a Ray task, retried from its checkpoint when its worker or node is lost."""
    import ray
    import torch

    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)) // max(1, min(len(claimed), workers or len(claimed))))
    gpus = (1.0 / len(claimed)) if torch.cuda.is_available() else 0
    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=RAY_RETRIES)(work)
    refs = {
        task.remote(str(driver.root.resolve()), folder, r.config.model_dump(mode="json"), threads=cpus, **options): r
        for r, folder in claimed
    }
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        driver.record(refs[done[0]], _result(partial(ray.get, done[0])))  # type: ignore[arg-type]
