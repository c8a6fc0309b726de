"""Where a training step's images come from: the whole uint8 set resident on the device (the usual case), or, for
an image set read from a memory-mapped file (:mod:`aelab.data.mapped`), rows read ahead by a background thread.

Both give the same batches for the same permutation (a mapped batch is read in file order and put back in
the permutation's order), so a run trains to the same weights either way.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import torch

from aelab.data.dataset import ImageSplit
from aelab.training import distributed

AHEAD = 4
"""Batches a mapped feed reads ahead of the step that uses them."""


class DeviceFeed:
    """Batches indexed from uint8 images ``(N, C, H, W)`` already on the device."""

    def __init__(self, split: ImageSplit, device: torch.device) -> None:
        self.x = split.images.to(device)
        self.device = device

    def head(self, n: int) -> torch.Tensor:
        """The first ``n`` images (uint8, on the device)."""
        return self.x[:n]

    def batches(self, perm: torch.Tensor, batch: int) -> Iterator[tuple[torch.Tensor, float, torch.Tensor]]:
        """``(indices on the device, loss weight, uint8 images on the device)`` for each batch of ``perm``
        (this process's share of it, see :func:`aelab.training.distributed.share`)."""
        perm = perm.to(self.device, non_blocking=True)
        for start in range(0, perm.shape[0], batch):
            idx, weight = distributed.share(perm[start : start + batch])
            yield idx, weight, self.x.index_select(0, idx)


class MappedFeed:
    """Batches read from a memory-mapped split by one background thread, :data:`AHEAD` steps ahead (into pinned
    memory when the device is a GPU, then copied without blocking)."""

    def __init__(self, split: ImageSplit, device: torch.device) -> None:
        self.split = split
        self.device = device

    def head(self, n: int) -> torch.Tensor:
        return self.split.head(n).images.to(self.device)

    def _read(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.split.read(idx)
        return x.pin_memory() if self.device.type == "cuda" else x

    def batches(self, perm: torch.Tensor, batch: int) -> Iterator[tuple[torch.Tensor, float, torch.Tensor]]:
        from concurrent.futures import ThreadPoolExecutor

        shares = [distributed.share(perm[start : start + batch]) for start in range(0, perm.shape[0], batch)]
        with ThreadPoolExecutor(1, thread_name_prefix="aelab-feed") as pool:
            pending = deque(pool.submit(self._read, idx) for idx, _ in shares[:AHEAD])
            for i, (idx, weight) in enumerate(shares):
                x = pending.popleft().result()
                if i + AHEAD < len(shares):
                    pending.append(pool.submit(self._read, shares[i + AHEAD][0]))
                yield idx.to(self.device, non_blocking=True), weight, x.to(self.device, non_blocking=True)


def feed_for(split: ImageSplit, device: torch.device) -> DeviceFeed | MappedFeed:
    """The feed of a training split: mapped when its images are, else on the device."""
    return MappedFeed(split, device) if split.mapped else DeviceFeed(split, device)
