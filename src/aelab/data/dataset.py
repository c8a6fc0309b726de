"""The dataset: uint8 images (in memory or memory-mapped) and int64 labels, split into train / validation / test."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from aelab.data.mapped import MappedImages


def to_unit_float(images: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 images ``(N, C, H, W)`` (0..255) -> float32 in [0, 1] on ``device`` (a new tensor). Float data
    (standardized vector features) is copied as it is."""
    if images.dtype != torch.uint8:
        return images.to(device=device, dtype=torch.float32, copy=True)
    return images.to(device).float().div_(255.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] (any shape, any device) -> uint8 0..255 on the CPU (clamped, rounded)."""
    return images.float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu()


class ImageSplit:
    """One split: its images and their labels.

    The images are held in memory, or, for image sets above ``data.memory_map_above_gb``, they are rows of a
    memory-mapped uint8 array on disk (:class:`aelab.data.mapped.MappedImages`): then a batch reads only its
    rows, and :attr:`images` (every image of the split, in memory) is for splits known to be small.

    Args:
        images: uint8 tensor ``(N, C, H, W)``, values 0..255; or, for vector data, float32 ``(N, 1, 1, D)``
            standardized features; or a :class:`~aelab.data.mapped.MappedImages` of which ``rows`` are this
            split.
        labels: int64 tensor ``(N,)``; class indices (0 when the data has no classes).
        rows: mapped images only: int64 ``(N,)`` rows of ``images`` in this split, ascending (None: all rows).

    Raises:
        ValueError: images that are not uint8 ``(N, C, H, W)`` or float32 ``(N, 1, 1, D)``, or labels of
            another length.
    """

    def __init__(self, images: torch.Tensor | MappedImages, labels: torch.Tensor, rows: torch.Tensor | None = None):
        self.source = images
        self.labels = labels
        if isinstance(images, MappedImages):
            rows = torch.arange(len(images)) if rows is None else rows
        elif rows is not None:
            raise ValueError("rows are for memory-mapped images only")
        self.rows = rows
        if images.dtype not in (torch.uint8, torch.float32) or images.dim() != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W) or float32 (N, 1, 1, D), got {images.dtype} {tuple(images.shape)}"
            )
        if labels.shape != (len(self),):
            raise ValueError(f"labels must be ({len(self)},), got {tuple(labels.shape)}")

    def __len__(self) -> int:
        return self.source.shape[0] if self.rows is None else self.rows.shape[0]

    @property
    def mapped(self) -> bool:
        """True when the images are read from a memory-mapped file, a batch at a time."""
        return self.rows is not None

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(N, C, H, W)`` of the split (without reading it)."""
        return (len(self), *self.source.shape[1:])  # type: ignore[return-value]

    @property
    def dtype(self) -> torch.dtype:
        """torch.uint8 for images, torch.float32 for vector rows."""
        return self.source.dtype

    @property
    def pixels(self) -> int:
        """Values per image: C * H * W."""
        return math.prod(self.source.shape[1:])

    @property
    def images(self) -> torch.Tensor:
        """Every image of the split as one tensor (for a mapped split: read into memory, a copy)."""
        if isinstance(self.source, torch.Tensor):
            return self.source
        return self.read(torch.arange(len(self)))

    def read(self, positions: torch.Tensor) -> torch.Tensor:
        """The images at ``positions`` (int64, any order) of this split, in that order: a new tensor."""
        if self.rows is None:
            return self.source.index_select(0, positions)  # type: ignore[union-attr]
        rows = self.rows[positions]
        ordered, order = rows.sort()  # the file is read front to back; the batch keeps its order
        out = self.source.read(ordered)  # type: ignore[union-attr]
        return out if bool((order[1:] > order[:-1]).all()) else out[order.argsort()]

    def __getitem__(self, where: slice) -> torch.Tensor:
        """The images of the consecutive ``where`` (a view in memory; read from a mapped file)."""
        if self.rows is None:
            return self.source[where]  # type: ignore[index]
        return self.source.read(self.rows[where])  # type: ignore[union-attr]

    def take(self, positions: torch.Tensor) -> ImageSplit:
        """The split of the images at ``positions`` (int64): copied in memory, rows of the same file when mapped."""
        if self.rows is None:
            return ImageSplit(self.source[positions], self.labels[positions])  # type: ignore[index]
        return ImageSplit(self.source, self.labels[positions], self.rows[positions])

    def head(self, n: int) -> ImageSplit:
        """The first ``n`` images (a view in memory)."""
        if self.rows is None:
            return ImageSplit(self.source[:n], self.labels[:n])  # type: ignore[index]
        return ImageSplit(self.source, self.labels[:n], self.rows[:n])

    def floats(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """All images as float32 in [0, 1], ``(N, C, H, W)`` on ``device``."""
        return to_unit_float(self.images, device)

    def batches(self, batch_size: int, device: torch.device | str = "cpu") -> Iterator[tuple[slice, torch.Tensor]]:
        """Consecutive batches in order: ``(slice into the split, float32 images in [0, 1] on device)``."""
        for start in range(0, len(self), batch_size):
            where = slice(start, start + batch_size)
            yield where, to_unit_float(self[where], device)


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
    binarize: str | None = None
    """``dynamic``: validation and test hold fixed 0/255 samples; the trainer samples the training images anew
    each epoch (:func:`binarized`)."""

    @property
    def is_vectors(self) -> bool:
        """True for vector data (float32 rows ``(N, 1, 1, D)``), False for uint8 images."""
        return self.train.dtype != torch.uint8

    @property
    def labelled(self) -> bool:
        """True when the training split has two or more classes (an image folder without sub-folders has one)."""
        return int(self.train.labels.unique().numel()) > 1

    @property
    def shape(self) -> tuple[int, int, int]:
        """Image shape ``(C, H, W)``."""
        return self.train.shape[1:]

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
    return split.take(rest), split.take(out)


TEST_BINARIZATION_SEED = 0
"""The fixed seed of the test split's binarization (the validation split's is this + 1)."""


def binarized(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A Bernoulli sample of float images ``x`` in [0, 1] (each pixel 1 with probability its value), same shape and
    dtype, drawn with ``generator`` (on ``x``'s device)."""
    return torch.bernoulli(x, generator=generator)


def binarized_split(split: ImageSplit, seed: int) -> ImageSplit:
    """``split`` with its uint8 images replaced by one 0/255 sample each (probability = grey level / 255), drawn with
    a CPU generator seeded with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    parts = [binarized(split[i : i + 10_000].float() / 255, g) for i in range(0, len(split), 10_000)]
    images = (torch.cat(parts) * 255).to(torch.uint8) if parts else split.images
    return ImageSplit(images, split.labels)
