"""Generating images with a trained autoencoder, and how good the samples are.

* Samplers (a model lists the ones it has, :attr:`~aelab.models.AutoEncoder.samplers`, the default first):
  ``prior`` (the model's prior, e.g. a VAE's N(0, I)), ``gmm`` (a Gaussian mixture fitted to training codes,
  scikit-learn; any model with vector codes, and a VAE's aggregate posterior), ``categorical`` (for a code of
  codebook indices: each grid position's index frequencies in the training codes, positions independent),
  ``pixelcnn`` (a VQ-VAE's PixelCNN prior over its index grid, sampled position by position).
* Frechet distance in the feature space of aelab's reference classifier (:mod:`aelab.evaluation.classifier`),
  with torchmetrics' ``FrechetInceptionDistance(feature=...)``: not the Inception FID; compare it only between
  aelab runs on the same dataset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import torch

from aelab.data.dataset import ImageDataset
from aelab.errors import AelabError
from aelab.evaluation.batches import batches, encode_all
from aelab.models.autoencoder import AutoEncoder

SAMPLERS = ("auto", "prior", "gmm", "categorical", "pixelcnn")
PRIOR_SAMPLERS = ("prior", "pixelcnn")
"""Samplers that draw from a model's own prior (:meth:`~aelab.models.AutoEncoder.prior`): nothing to fit."""


@dataclass
class Sampler:
    """Draws codes ``(n, *code_shape)`` (or index grids ``(n, h, w)``) for a model's decoder."""

    kind: str
    model: AutoEncoder
    gmm: Any = None
    frequencies: Optional[torch.Tensor] = None
    """categorical: ``(h * w, K)`` index frequencies per grid position."""

    def codes(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` codes drawn with ``seed``, on the CPU."""
        g = torch.Generator().manual_seed(seed)
        if self.kind in PRIOR_SAMPLERS:
            return self.model.prior(n, g)
        if self.kind == "gmm":
            self.gmm.random_state = seed
            z, _ = self.gmm.sample(n)
            z = torch.from_numpy(z).float()[torch.randperm(n, generator=g)]  # sklearn returns them by component
            return z.view(n, *self.model.code_shape)
        _, h, w = self.model.code_shape
        assert self.frequencies is not None  # a categorical sampler has them
        return torch.multinomial(self.frequencies, n, replacement=True, generator=g).t().reshape(n, h, w)

    @torch.no_grad()
    def images(self, n: int, seed: int = 0, y: torch.Tensor | None = None, batch_size: int = 1000) -> torch.Tensor:
        """``n`` generated images ``(n, C, H, W)`` float32 in [0, 1] (for a model that takes labels, of classes
        ``y``)."""
        model: Any = self.model.eval()
        codes, out = self.codes(n, seed), []
        decode = model.decode_indices if self.kind == "categorical" else model.decode
        for i in range(0, n, batch_size):
            yb = y[i : i + batch_size].to(model.device) if y is not None else None
            out.append(decode(codes[i : i + batch_size].to(model.device), yb).float().clamp(0, 1).cpu())
        return torch.cat(out)


def fit_sampler(
    model: AutoEncoder,
    dataset: ImageDataset,
    kind: str = "auto",
    components: int = 10,
    fit_images: int = 10000,
    seed: int = 0,
) -> Sampler:
    """A sampler of ``kind`` for ``model`` (``auto``: the model's default), fitted on the first ``fit_images``
    training images where it needs codes (gmm: ``GaussianMixture(components, covariance_type='full')``;
    categorical: index frequencies, with one pseudo-count per entry).

    Raises:
        AelabError: an unknown kind, one the model does not have (the message lists those it has), or vector data.
    """
    if kind not in SAMPLERS:
        raise AelabError(f"sampler: got {kind!r}; allowed: {', '.join(SAMPLERS)}")
    if dataset.is_vectors:
        raise AelabError(
            f"model {model.name!r} was trained on vector data; sampling generates images: allowed: image models"
        )
    kind = model.samplers[0] if kind == "auto" else kind
    if kind not in model.samplers:
        raise AelabError(
            f"sampler {kind}: model {model.name!r} ({model.describe()}) cannot sample that way; "
            f"allowed for it: {', '.join(model.samplers)}"
        )
    if kind in PRIOR_SAMPLERS:
        return Sampler(kind, model)
    images, labels = dataset.train.images[:fit_images], dataset.train.labels[:fit_images]
    model.eval()
    discrete: Any = model  # a model whose code is a grid of codebook indices
    if kind == "categorical":
        with torch.no_grad():
            idx = torch.cat([discrete.indices(x, y).flatten(1).cpu() for _, x, y in batches(model, images, labels)])
        freq = torch.ones(idx.shape[1], int(discrete.index_levels)).scatter_add_(1, idx.t(), torch.ones(idx.t().shape))
        return Sampler("categorical", model, frequencies=freq / freq.sum(1, keepdim=True))
    from sklearn.mixture import GaussianMixture

    codes = encode_all(model, images, labels).double()
    gmm = GaussianMixture(
        n_components=min(components, len(codes)), covariance_type="full", random_state=seed, reg_covar=1e-5
    ).fit(codes.numpy())
    return Sampler("gmm", model, gmm=gmm)


@torch.no_grad()
def frechet_distance(classifier: Any, real: torch.Tensor, fake: torch.Tensor, batch_size: int = 1000) -> float:
    """Frechet distance between float images ``real`` and ``fake`` ``(N, C, H, W)`` in [0, 1], in the feature
    space of ``classifier.features`` (torchmetrics ``FrechetInceptionDistance`` with a custom extractor)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    fid = FrechetInceptionDistance(feature=classifier.features, normalize=True)
    for images, is_real in ((real, True), (fake, False)):
        for i in range(0, len(images), batch_size):
            fid.update(images[i : i + batch_size].float(), real=is_real)
    return float(fid.compute())


@dataclass
class Generation:
    """Samples of one model and their quality."""

    sampler: str
    grid: torch.Tensor
    """float ``(rows * cols, C, H, W)`` in [0, 1]: the samples shown (one row per class for a model that takes
    labels)."""
    rows: int
    frechet: Optional[float]
    """Frechet distance to the test images in the reference classifier's features (None without labels)."""
    class_accuracy: Optional[float]
    """Models that take labels: share of the samples of class c that the reference classifier labels c."""
    per_class: list[float]
    classifier_accuracy: Optional[float]
    samples: int


def generate(
    model: AutoEncoder,
    dataset: ImageDataset,
    sampler: str = "auto",
    n: int = 64,
    seed: int = 0,
    quality_samples: int | None = None,
    quality: bool = True,
) -> Generation:
    """Draw samples from ``model`` (``n`` for the grid; a model that takes labels: one row of ``ceil(n / classes)``
    per class, at most 10 per row) and measure their quality on ``quality_samples`` more (default: as many as
    the test split) against the test split (``quality``; else no Frechet distance: no classifier is needed).

    Raises:
        AelabError: see :func:`fit_sampler`.
    """
    s = fit_sampler(model, dataset, sampler, seed=seed)
    classes = len(dataset.class_names)
    by_class = model.lacks("unlabelled") is not None  # its samples are drawn for a chosen class
    if by_class:
        cols = min(10, max(1, math.ceil(n / classes)))
        y = torch.arange(classes).repeat_interleave(cols)
        grid, rows = s.images(len(y), seed, y), classes
    else:
        grid, rows = s.images(n, seed), max(1, math.ceil(n / 8))
    if not dataset.labelled or not quality:
        return Generation(s.kind, grid, rows, None, None, [], None, 0)
    from aelab.evaluation.classifier import reference_classifier

    clf = reference_classifier(dataset)
    m = quality_samples or len(dataset.test)
    y_fake = torch.arange(m) % classes if by_class else None
    fake = s.images(m, seed + 1, y_fake)
    fd = frechet_distance(clf, dataset.test.floats(), fake)
    acc, per_class = None, []
    if y_fake is not None:
        right = (clf.predict(fake) == y_fake).float()
        acc = float(right.mean())
        per_class = [float(right[y_fake == c].mean()) for c in range(classes)]
    return Generation(s.kind, grid, rows, fd, acc, per_class, clf.test_accuracy, m)
