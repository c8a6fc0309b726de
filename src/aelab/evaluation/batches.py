"""A whole set of images through a model, in batches on the model's device: the one way evaluation, analyses
and the apply commands encode, reconstruct and score many images."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Optional

import torch

from aelab.data.dataset import ImageSplit, to_unit_float
from aelab.models.autoencoder import AutoEncoder
from aelab.models.layers import memory_format_of


def batches(
    model: AutoEncoder,
    images: torch.Tensor | ImageSplit,
    labels: Optional[torch.Tensor] = None,
    batch_size: int = 1000,
) -> Iterator[tuple[slice, torch.Tensor, Optional[torch.Tensor]]]:
    """``(where, x, y)`` per batch: the slice of ``images``, the batch as float32 in [0, 1] (vector rows as they
    are) and its labels, both on the model's device (``y`` None without labels); ``x`` is laid out as the model
    runs fastest (:func:`~aelab.models.layers.memory_format_of`: channels-last for a convolutional model).
    ``images`` is a tensor or a split (a memory-mapped split is read a batch at a time)."""
    device, layout = model.device, memory_format_of(model)
    labels = labels.to(device) if labels is not None else None
    for start in range(0, len(images), batch_size):
        where = slice(start, start + batch_size)
        x = to_unit_float(images[where], device)
        yield (
            where,
            x.contiguous(memory_format=layout) if x.dim() == 4 else x,
            labels[where] if labels is not None else None,
        )


@torch.no_grad()
def encode_all(
    model: AutoEncoder, images: torch.Tensor | ImageSplit, labels: Optional[torch.Tensor] = None, batch_size: int = 1000
) -> torch.Tensor:
    """Codes of every image in eval mode, flattened: float32 ``(N, D)`` on the CPU.

    Args:
        images: uint8 ``(N, C, H, W)`` (or float32 vector rows ``(N, 1, 1, D)``).
        labels: int64 ``(N,)``, given to models that need them (None: no labels).
    """
    model.eval()
    codes = [model.encode(x, y).flatten(1).float().cpu() for _, x, y in batches(model, images, labels, batch_size)]
    return torch.cat(codes) if codes else torch.zeros(0, model.code_size)


@torch.no_grad()
def per_image_mse(
    model: AutoEncoder, images: torch.Tensor | ImageSplit, labels: Optional[torch.Tensor] = None, batch_size: int = 1000
) -> torch.Tensor:
    """Each image's reconstruction error: the mean squared error over its pixels (values in [0, 1]; vector rows:
    standardized units), float64 ``(N,)`` on the CPU, in eval mode."""
    model.eval()
    out = [
        squared_error(model.reconstruct(x, y), x).double().cpu()
        for _, x, y in batches(model, images, labels, batch_size)
    ]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def squared_error(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of each image ``(N,)`` of ``(N, ...)`` tensors (float32)."""
    return (reconstruction.float() - target.float()).pow(2).flatten(1).mean(1)
