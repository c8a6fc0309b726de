"""One run on several processes: PyTorch's DistributedDataParallel over a process group started by ``torchrun``.

``torchrun --nproc-per-node N -m aelab train ...`` starts N copies of the command with ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` set; :func:`join_from_environment` joins them into one
process group (NCCL on GPUs, gloo on the CPU). Every process draws the same permutation each epoch and takes its
contiguous share of every global batch (``training.batch_size`` images in all, so the global batch is what the
config says); the model is wrapped in ``DistributedDataParallel``, which averages the gradients over the
processes, and each process's loss is weighted by its share of the batch, so a step equals the step of one
process on the whole batch up to floating-point summation order. Only rank 0 writes checkpoints, metrics, the
model and the run store.

Methods whose result depends on the whole batch see only their process's share: BatchNorm statistics,
lifetime top-k, a VQ-VAE's codebook usage; random corruption, dropout and VAE samples are drawn per process.
"""

from __future__ import annotations

import atexit
import os
from datetime import timedelta

import torch
import torch.distributed as dist

from aelab.errors import ConfigError


def world() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def launched_size() -> int:
    """The world size ``torchrun`` set for this process (1 when not launched by it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def check_batch_size(batch_size: int, size: int, key: str = "training.batch_size") -> None:
    """Refuse a global batch the processes cannot share equally.

    Raises:
        ConfigError: ``batch_size`` is not a multiple of ``size``.
    """
    if size > 1 and batch_size % size:
        raise ConfigError(
            f"{key}: got {batch_size}, which {size} processes (--nproc-per-node) cannot share equally; "
            f"allowed: a multiple of {size}"
        )


def join_from_environment() -> tuple[int, int]:
    """Join the process group ``torchrun`` describes (once; NCCL when CUDA is there, else gloo) and return
    (rank, world size); (0, 1) when the process was not launched by ``torchrun``."""
    size = launched_size()
    if size <= 1 or (dist.is_available() and dist.is_initialized()):
        return world()
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    global _exit_group
    group = dist.new_group(backend="gloo", timeout=EXIT_WAIT)  # every rank creates it, in the same order
    _exit_group = group if isinstance(group, dist.ProcessGroup) else None
    atexit.register(_leave)  # a group left to the interpreter's teardown can abort the process (gloo's threads)
    return world()


EXIT_WAIT = timedelta(hours=24)
"""How long a process that finished waits in :func:`finish` for the others (rank 0 evaluates and writes after the
others are done; torchrun stops every process as soon as one fails, so this bounds nothing in practice)."""

_exit_group: dist.ProcessGroup | None = None


def finish() -> None:
    """Leave the process group together, at the end of a command that succeeded (a no-op without one).

    Every process waits until all of them got here, then destroys the group, so a follower (rank > 0) leaves
    only after rank 0 has evaluated and written every run. Without the wait a follower tore its connections
    down while rank 0 was still at work; once in CI that follower aborted in gloo's teardown (SIGABRT) and
    ``torchrun`` then stopped rank 0 before it wrote the results. The wait uses a gloo group of its own with a
    long timeout (:data:`EXIT_WAIT`), so it is the same on NCCL, whose watchdog would abort a barrier left
    waiting on rank 0's analyses. PyTorch's documentation asks for ``destroy_process_group`` where
    communication is no longer needed, near the end of the program.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    if _exit_group is not None:
        try:
            dist.barrier(group=_exit_group)
        except RuntimeError:  # a process that already ended (torchrun stops the rest): leave anyway
            pass
    _leave()


def _leave() -> None:
    """Destroy this process's groups, once (at the end of :func:`finish`, or at exit after an error)."""
    global _exit_group
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _exit_group = None


def device_of(device: torch.device) -> torch.device:
    """This process's device: its own GPU (``LOCAL_RANK``) in a process group on CUDA, else ``device``."""
    if device.type == "cuda" and world()[1] > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def share(indices: torch.Tensor) -> tuple[torch.Tensor, float]:
    """This process's share of a global batch ``indices`` and the weight of its loss: ``n_share * size / n``
    (1 for equal shares), so that averaging the processes' gradients gives the gradient of the whole batch."""
    rank, size = world()
    if size == 1:
        return indices, 1.0
    part = indices.tensor_split(size)[rank]
    return part, part.shape[0] * size / max(indices.shape[0], 1)


def sum_over_processes(values: torch.Tensor) -> torch.Tensor:
    """``values`` summed over the processes (itself outside a process group)."""
    if world()[1] > 1:
        dist.all_reduce(values)
    return values


def broadcast(obj: object) -> object:
    """Rank 0's ``obj`` in every process (itself outside a process group)."""
    if world()[1] == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
