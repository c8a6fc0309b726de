"""Where a model fails: the test error per class and the worst-reconstructed test images."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aelab.data.dataset import ImageDataset, to_uint8, to_unit_float
from aelab.errors import AelabError
from aelab.evaluation.batches import per_image_mse
from aelab.models.autoencoder import AutoEncoder


@dataclass
class Failures:
    """``per_class`` list of (class name, images, MSE); ``worst`` test indices, their per-image MSE,
    originals and reconstructions (uint8 ``(k, C, H, W)``)."""

    per_class: list[tuple[str, int, float]]
    worst: list[int]
    worst_mse: list[float]
    originals: torch.Tensor
    reconstructions: torch.Tensor


@torch.no_grad()
def failures(model: AutoEncoder, dataset: ImageDataset, k: int = 8, batch_size: int = 1000) -> Failures:
    """Per-class test MSE and the ``k`` worst-reconstructed test images.

    Raises:
        AelabError: ``k`` outside 1..the test images.
    """
    split = dataset.test
    if not 1 <= k <= len(split):
        raise AelabError(f"k: got {k}; allowed: 1..{len(split)}")
    err = per_image_mse(model, split.images, split.labels, batch_size).float()
    per_class = []
    for c in sorted(set(split.labels.tolist())):
        mask = split.labels == c
        name = dataset.class_names[c] if c < len(dataset.class_names) else str(c)
        per_class.append((name, int(mask.sum()), float(err[mask].mean())))
    worst = err.topk(k).indices
    x = to_unit_float(split.images[worst], model.device)
    recon = to_uint8(model.reconstruct(x, split.labels[worst].to(model.device)))
    return Failures(per_class, worst.tolist(), err[worst].tolist(), split.images[worst], recon)
