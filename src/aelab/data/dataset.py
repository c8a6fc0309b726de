"""The in-memory dataset: uint8 images and int64 labels, split into train / validation / test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch


def to_unit_float(images: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 images ``(N, C, H, W)`` (0..255) -> float32 in [0, 1] on ``device`` (a new tensor). Float data
    (standardized vector features) is copied as it is."""
    if images.dtype != torch.uint8:
        return images.to(device=device, dtype=torch.float32, copy=True)
    return images.to(device).float().div_(255.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] (any shape, any device) -> uint8 0..255 on the CPU (clamped, rounded)."""
    return images.float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu()


@dataclass
class ImageSplit:
    """One split.

    Attributes:
        images: uint8 tensor ``(N, C, H, W)``, values 0..255; or, for vector data, float32 ``(N, 1, 1, D)``
            standardized features.
        labels: int64 tensor ``(N,)``; class indices (0 when the data has no classes).
    """

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype not in (torch.uint8, torch.float32) or self.images.dim() != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W) or float32 (N, 1, 1, D), got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels must be ({self.images.shape[0]},), got {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return self.images.shape[0]

    def floats(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """All images as float32 in [0, 1], ``(N, C, H, W)`` on ``device``."""
        return to_unit_float(self.images, device)

    def batches(self, batch_size: int, device: torch.device | str = "cpu") -> Iterator[tuple[slice, torch.Tensor]]:
        """Consecutive batches in order: ``(slice into the split, float32 images in [0, 1] on device)``."""
        for start in range(0, len(self), batch_size):
            where = slice(start, start + batch_size)
            yield where, to_unit_float(self.images[where], device)


@dataclass
class ImageDataset:
    """A dataset with its three splits and class names."""

    name: str
    train: ImageSplit
    val: ImageSplit
    test: ImageSplit
    class_names: list[str] = field(default_factory=list)
    source: str = ""
    normal_classes: list[int] | None = None
    """One-class training: the classes train and validation were restricted to (the test split has all)."""
    standardization: tuple[torch.Tensor, torch.Tensor] | None = None
    """Vector data: the per-feature (mean, std) ``(D,)`` of the raw training features, already applied."""
    notes: list[str] = field(default_factory=list)
    """What reading the data skipped or changed, one line each (unreadable files, squashed images)."""

    @property
    def is_vectors(self) -> bool:
        """True for vector data (float32 rows ``(N, 1, 1, D)``), False for uint8 images."""
        return self.train.images.dtype != torch.uint8

    @property
    def labelled(self) -> bool:
        """True when the training split has two or more classes (an image folder without sub-folders has one)."""
        return int(self.train.labels.unique().numel()) > 1

    @property
    def shape(self) -> tuple[int, int, int]:
        """Image shape ``(C, H, W)``."""
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]

    def summary(self) -> str:
        c, h, w = self.shape
        what = f"rows of {w} features" if self.is_vectors else f"images of {c}x{h}x{w}"
        return (
            f"{self.name}: {len(self.train)} train / {len(self.val)} val / {len(self.test)} test {what} ({self.source})"
        )


def split_by_seed(split: ImageSplit, fraction: float, seed: int) -> tuple[ImageSplit, ImageSplit]:
    """Split off ``fraction`` of ``split`` (chosen by ``seed``). Returns (rest, held_out)."""
    n = len(split)
    n_out = int(round(n * fraction))
    if fraction > 0 and n_out == 0 and n > 1:
        n_out = 1
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    out, rest = perm[:n_out].sort().values, perm[n_out:].sort().values
    return (ImageSplit(split.images[rest], split.labels[rest]), ImageSplit(split.images[out], split.labels[out]))
