"""Images named on the command line (files, folders, or a split of a run's dataset) for the apply commands
(``aelab encode``, ``score``), read to the shape a model takes.

An argument is an image file (PNG/JPEG), a folder (every image under it, sorted), or ``split:NAME`` with NAME
one of train, val, test: that split of the dataset the run was trained on. For a model of vector data, an
argument is a feature file (``.npy``/``.npz``/``.csv``, see :mod:`aelab.data.array`), standardized with the
training statistics the model keeps, or a split.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aelab.data.images import GREY_MODES, IMAGE_SUFFIXES, open_image, to_array
from aelab.errors import DataError

SPLITS = ("train", "val", "test")


@dataclass
class NamedImages:
    """Images and where each came from."""

    images: torch.Tensor
    """uint8 ``(N, C, H, W)``, values 0..255."""
    names: list[str]
    """One per image: the file path, or ``<split>:<index>``."""
    labels: torch.Tensor | None = None
    """int64 ``(N,)`` for images from a dataset split, else None."""


def _shape(shape) -> str:
    return "x".join(map(str, shape))


def _files(arg: str) -> list[Path]:
    path = Path(arg).expanduser()
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix.lower() in IMAGE_SUFFIXES
            and not any(s.startswith(".") for s in p.relative_to(path).parts)
        )
        if not files:
            raise DataError(f"folder {arg!r} has no PNG/JPEG images")
        return files
    if not path.is_file():
        raise DataError(f"{arg!r} is not a file, a folder or split:train|val|test")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise DataError(
            f"{arg!r} is not an image; allowed: {', '.join(IMAGE_SUFFIXES)} files, folders of them, or "
            "split:train|val|test"
        )
    return [path]


def read_file(path: Path, shape: tuple[int, int, int], resize: bool, background: str | None = None) -> np.ndarray:
    """One image file as uint8 ``(C, H, W)`` of ``shape``, read as training read its images
    (:mod:`aelab.data.images`: transparency onto ``background``); converted (channels) and resized (bilinear) only
    with ``resize``.

    Raises:
        DataError: unreadable, or of another shape without ``resize`` (both shapes named).
    """
    c, h, w = shape
    image = open_image(path)
    channels = 1 if image.mode in GREY_MODES else 3
    if (channels, image.height, image.width) != (c, h, w) and not resize:
        raise DataError(
            f"image {str(path)!r} is {_shape((channels, image.height, image.width))} (CxHxW) but the "
            f"model takes {_shape(shape)}; give --resize to convert and resize it"
        )
    return to_array(image, "L" if c == 1 else "RGB", (h, w), background)


def read_images(
    args: list[str],
    shape: tuple[int, int, int],
    resize: bool = False,
    dataset: Callable[[], Any] | None = None,
    limit: int | None = None,
    standardization: tuple[torch.Tensor, torch.Tensor] | None = None,
    background: str | None = None,
) -> NamedImages:
    """Read the images the arguments name (see the module doc), in order.

    Args:
        args: image files, folders, or ``split:NAME``.
        shape: ``(C, H, W)`` the model takes.
        resize: convert and resize images of another shape instead of refusing them.
        dataset: a callable returning the run's :class:`~aelab.data.ImageDataset` (loaded only for ``split:``).
        limit: keep only the first N images.
        standardization: (mean, std) of a model of vector data: arguments are then feature files.
        background: the colour transparent pixels are composited onto (the model's; None: white).

    Raises:
        DataError: no argument, a missing or non-image file, an unknown split, or an image of another shape.
    """
    if not args:
        raise DataError("give images: files, folders, or split:train|val|test")
    chunks, names, labels, from_split = [], [], [], False
    for arg in args:
        if arg.startswith("split:"):
            which = arg.split(":", 1)[1]
            if which not in SPLITS:
                raise DataError(f"{arg!r}: no such split; allowed: {', '.join('split:' + s for s in SPLITS)}")
            if dataset is None:
                raise DataError(f"{arg!r}: a split needs the run's dataset; give image files or folders here")
            split = getattr(dataset(), which)
            if tuple(split.images.shape[1:]) != tuple(shape):
                raise DataError(
                    f"{arg!r} holds {_shape(split.images.shape[1:])} images but the model takes {_shape(shape)}"
                )
            chunks.append(split.images)
            names += [f"{which}:{i}" for i in range(len(split))]
            labels.append(split.labels)
            from_split = True
        elif standardization is not None:
            from aelab.data.array import load_array, standardize

            rows, row_labels, _ = load_array(arg)
            if tuple(rows.shape[1:]) != tuple(shape):
                raise DataError(f"{arg!r} has {rows.shape[-1]} features per row but the model takes {shape[-1]}")
            chunks.append(standardize(rows, *standardization))
            names += [f"{arg}:{i}" for i in range(len(rows))]
            labels.append(row_labels)
        else:
            files = _files(arg)
            chunks.append(torch.from_numpy(np.stack([read_file(p, shape, resize, background) for p in files])))
            names += [str(p) for p in files]
            labels.append(torch.full((len(files),), -1, dtype=torch.long))
    images = torch.cat(chunks)[:limit]
    return NamedImages(images.contiguous(), names[:limit], torch.cat(labels)[:limit] if from_split else None)
