"""RaPP's anomaly scores: reconstruction along the encoder's projection pathway (Kim et al., "RaPP: Novelty
Detection with Reconstruction along Projection Pathway", ICLR 2020).

An image ``x`` and its reconstruction ``x_hat`` are both passed through the encoder; their hidden activations
``h_i(x)`` and ``h_i(x_hat)`` (the input itself, every hidden layer, the code:
:meth:`aelab.models.autoencoder.AutoEncoder.hidden_activations`) are compared layer by layer. With
``d(x) = [h_i(x) - h_i(x_hat)]_i`` concatenated:

* SAP (simple aggregation along pathway): ``||d(x)||^2``;
* NAP (normalized aggregation along pathway): ``||(d(x) - mu) V S^-1||^2``, where ``mu`` is the mean of ``d`` over
  training images (normal ones: the data the model was trained on) and ``D - mu = U S V^T`` is the SVD of their
  differences: each direction of ``d`` is measured in units of how much it varies on normal data.

aelab's NAP shrinks the smallest directions: it divides by ``sqrt(s_i^2 + (lambda s_1)^2)`` rather than by ``s_i``
(:data:`NAP_SHRINKAGE`, ``lambda`` = 1e-3), a Tikhonov regularization of the whitening. With as many pathway
values as fitting images (conv-64: 5,552 values, 5,700 images of a class), the directions of the smallest singular
values are fitted to a handful of images each, and dividing by them weighs noise most. The value was chosen on the
validation split of Fashion-MNIST (see the anomaly guide), not on test images.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from aelab.data.dataset import ImageSplit
from aelab.errors import ConfigError
from aelab.evaluation.batches import batches
from aelab.models.autoencoder import AutoEncoder

NAP_FIT_IMAGES = 10_000
"""Training images (the first ones) whose pathway differences fit NAP's mean and SVD."""
_LAST_FIT: dict = {}
"""The last fit of :meth:`NAP.fitted` and its key (model fingerprint, images)."""
NAP_RELATIVE_TOLERANCE = 1e-6
"""Singular values below this share of the largest are dropped (directions with no variance on normal data)."""
NAP_SHRINKAGE = 1e-3
"""``lambda``: NAP divides direction i by ``sqrt(s_i^2 + (lambda s_1)^2)``, ``s_1`` the largest singular value
(0 = RaPP's plain ``1 / s_i``)."""


@torch.no_grad()
def pathway_differences(
    model: AutoEncoder, images: torch.Tensor | ImageSplit, batch_size: int = 500
) -> Iterator[torch.Tensor]:
    """``d(x)`` per batch of uint8 ``images`` ``(N, C, H, W)`` (float vector rows as they are): float32
    ``(n, F)`` on the CPU, ``F`` the sum of the pathway's widths, in eval mode."""
    model.eval()
    for _, x, _ in batches(model, images, None, batch_size):
        ours, theirs = model.hidden_activations(x), model.hidden_activations(model.reconstruct(x))
        yield torch.cat([a - b for a, b in zip(ours, theirs)], 1).cpu()


def sap_scores(model: AutoEncoder, images: torch.Tensor | ImageSplit) -> torch.Tensor:
    """RaPP's SAP score of each image: float64 ``(N,)``, ``||d(x)||^2`` (larger = more anomalous)."""
    out = [d.double().pow(2).sum(1) for d in pathway_differences(model, images)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


@dataclass
class NAP:
    """RaPP's NAP normalization, fitted on normal images.

    Attributes:
        mean: float64 ``(F,)``: the mean pathway difference of the fitting images.
        projection: float64 ``(F, r)``: ``V (S^2 + (lambda s_1)^2)^-1/2`` of their centred differences (the r
            singular values above :data:`NAP_RELATIVE_TOLERANCE` of the largest kept; ``lambda`` =
            :data:`NAP_SHRINKAGE`).
    """

    mean: torch.Tensor
    projection: torch.Tensor

    @classmethod
    def fit(cls, model: AutoEncoder, normal: torch.Tensor | ImageSplit) -> NAP:
        """Fit on the first :data:`NAP_FIT_IMAGES` of ``normal`` images (the model's training images).

        Raises:
            ConfigError: fewer than 2 images to fit on.
        """
        if len(normal) < 2:
            raise ConfigError(f"NAP needs at least 2 training images to normalize by; got {len(normal)}")
        d = torch.cat(list(pathway_differences(model, normal[:NAP_FIT_IMAGES]))).double()
        mean = d.mean(0)
        # The SVD itself, not an eigendecomposition of D^T D (a third faster on CPU): squaring the matrix puts the
        # smallest kept directions, the ones NAP weighs most, at the level of float64's rounding errors.
        _, values, vh = torch.linalg.svd(d - mean, full_matrices=False)
        top = float(values[0]) if len(values) else 0.0
        keep = values > top * NAP_RELATIVE_TOLERANCE if top > 0 else torch.zeros_like(values, dtype=torch.bool)
        return cls(mean, vh[keep].T / torch.sqrt(values[keep] ** 2 + (NAP_SHRINKAGE * top) ** 2))

    @classmethod
    def fitted(cls, model: AutoEncoder, normal: torch.Tensor | ImageSplit) -> NAP:
        """:meth:`fit`, or the same fit again when the last call in this process had this model (its weights) and
        these images: a one-class run's metrics and its anomaly analysis share one SVD (tens of seconds)."""
        import hashlib

        head = normal[: min(len(normal), NAP_FIT_IMAGES)]
        digest = hashlib.sha256(head.contiguous().numpy().tobytes()).hexdigest() if len(head) else ""
        key = (model.fingerprint(), len(normal), digest)
        if _LAST_FIT.get("key") != key:
            _LAST_FIT.clear()
            _LAST_FIT.update(key=key, nap=cls.fit(model, normal))
        return _LAST_FIT["nap"]

    def scores(self, model: AutoEncoder, images: torch.Tensor | ImageSplit) -> torch.Tensor:
        """NAP score of each image: float64 ``(N,)``, ``||(d(x) - mean) @ projection||^2``."""
        return self.scores_and_sap(model, images)[0]

    def scores_and_sap(
        self, model: AutoEncoder, images: torch.Tensor | ImageSplit
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """NAP and SAP scores of each image from one pass along the pathway: two float64 ``(N,)``."""
        nap, sap = [], []
        for d in pathway_differences(model, images):
            d = d.double()
            nap.append(((d - self.mean) @ self.projection).pow(2).sum(1))
            sap.append(d.pow(2).sum(1))
        empty = torch.zeros(0, dtype=torch.float64)
        return (torch.cat(nap), torch.cat(sap)) if nap else (empty, empty)

    def nap_sap_scores(self, model: AutoEncoder, images: torch.Tensor | ImageSplit) -> torch.Tensor:
        """aelab's default anomaly score: NAP x SAP of each image, float64 ``(N,)``. It ranks images as the sum of
        the two scores' logarithms would, so a factor on either counts alike: NAP weighs a difference by how
        unusual its direction is on normal images, SAP by its size. Chosen on the validation split (the anomaly
        guide)."""
        nap, sap = self.scores_and_sap(model, images)
        return nap * sap
