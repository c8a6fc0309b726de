"""Anomaly scores from reconstruction error, and how well they separate a normal class from the others.

The classic recipe: train an autoencoder on normal images only; an image it reconstructs badly is
anomalous. The score of an image is its reconstruction error:

* ``mse``: mean squared error over the image's pixels (values in [0, 1], so the score is in [0, 1]);
* ``ssim``: ``1 - SSIM`` of the image and its reconstruction (in [0, 2]; 0 for a perfect reconstruction);
* ``sap`` and ``nap``: RaPP's scores (Kim et al., ICLR 2020; :mod:`aelab.evaluation.rapp`), which also compare
  the hidden activations of the image and of its reconstruction along the encoder; NAP normalizes them by their
  spread on the training images;
* ``nap_sap``: their product (:data:`DEFAULT_SCORE`), chosen on the validation split (the anomaly guide).

A threshold is a percentile of the scores of normal images the model did not train on (the validation
split). ROC-AUC and PR-AUC (average precision) come from scikit-learn, anomalies being the positive class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from aelab.data.dataset import ImageSplit
from aelab.errors import ConfigError
from aelab.evaluation.batches import batches, per_image_mse
from aelab.evaluation.reconstruction import ssim_per_image
from aelab.models.autoencoder import AutoEncoder

SCORE_KINDS = ("nap_sap", "nap", "sap", "mse", "ssim")
SCORE_NAMES = {
    "nap_sap": "NAP x SAP (RaPP)",
    "nap": "NAP (RaPP)",
    "sap": "SAP (RaPP)",
    "mse": "reconstruction MSE",
    "ssim": "1 - SSIM",
}
RECONSTRUCTION_KINDS = ("mse", "ssim")
FITTED_KINDS = ("nap_sap", "nap")
"""Scores fitted on the run's normal training images (NAP's mean and SVD)."""
DEFAULT_SCORE = "nap_sap"
"""The one-class runs' and ``aelab anomaly``'s score (see the anomaly guide for how it was chosen)."""


@torch.no_grad()
def reconstruction_scores(
    model: AutoEncoder, images: torch.Tensor, kind: str = "mse", batch_size: int = 1000
) -> torch.Tensor:
    """Anomaly score of each image: its reconstruction error.

    Args:
        model: the autoencoder (put in eval mode here); its device is used.
        images: uint8 ``(N, C, H, W)`` (0..255), or float32 standardized vector rows ``(N, 1, 1, D)``.
        kind: ``mse`` (per-image mean squared error) or ``ssim`` (``1 - SSIM`` per image).

    Returns:
        float64 ``(N,)`` on the CPU; larger = more anomalous.

    Raises:
        ConfigError: unknown ``kind``.
    """
    if kind not in RECONSTRUCTION_KINDS:
        raise ConfigError(f"--score: got {kind!r}; allowed: {', '.join(RECONSTRUCTION_KINDS)}")
    if kind == "mse":
        return per_image_mse(model, images, None, batch_size)
    model.eval()
    out = []
    for _, x, _ in batches(model, images, None, batch_size):
        out.append((1.0 - ssim_per_image(model.reconstruct(x), x)).double().cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def scorer(
    model: AutoEncoder, kind: str, normal: torch.Tensor | ImageSplit | None = None
) -> Callable[[torch.Tensor | ImageSplit], torch.Tensor]:
    """The ``kind`` score of :data:`SCORE_KINDS` as a function of images (uint8 ``(N, C, H, W)`` or a split) to
    float64 scores ``(N,)``, larger = more anomalous. NAP is fitted here on ``normal`` images (the model's
    training images, :class:`aelab.evaluation.rapp.NAP`).

    Raises:
        ConfigError: unknown ``kind``; NAP without normal images to fit on (or fewer than 2).
    """
    from aelab.evaluation.rapp import NAP, sap_scores

    if kind not in SCORE_KINDS:
        raise ConfigError(f"--score: got {kind!r}; allowed: {', '.join(SCORE_KINDS)}")
    if kind in FITTED_KINDS:
        if normal is None:
            raise ConfigError(f"--score {kind}: needs the run's training images to normalize by; none were given")
        nap = NAP.fitted(model, normal)
        return (lambda images: nap.scores(model, images)) if kind == "nap" else lambda i: nap.nap_sap_scores(model, i)
    if kind == "sap":
        return lambda images: sap_scores(model, images)
    return lambda images: reconstruction_scores(model, images, kind)  # type: ignore[arg-type]


def threshold(normal_scores: torch.Tensor, percentile: float) -> float:
    """The ``percentile`` (0..100) of the scores of held-out normal images: scores above it are flagged.

    Raises:
        ConfigError: percentile outside [0, 100], or no scores to take it from.
    """
    if not 0 <= percentile <= 100:
        raise ConfigError(f"--threshold-percentile: got {percentile}; allowed: 0..100")
    if len(normal_scores) == 0:
        raise ConfigError("no validation images to take the threshold from; use a data.val_fraction > 0")
    return float(torch.quantile(normal_scores.double(), percentile / 100.0))


@dataclass
class AnomalyResult:
    """Scores of a labelled test set split into normal and anomalous images."""

    scores: torch.Tensor
    """float64 ``(N,)``, one per test image."""
    anomalous: torch.Tensor
    """bool ``(N,)``: the image's class is not a normal class."""
    roc_auc: float
    """Area under the ROC curve of the scores (anomalous = positive), in [0, 1]; 0.5 = chance."""
    pr_auc: float
    """Average precision (area under the precision-recall curve) of the scores, anomalous = positive."""
    threshold: float
    """Score threshold from the validation split (normal images only)."""
    normal_flagged: float
    """Share of normal test images above the threshold (false-positive rate)."""
    anomalies_flagged: float
    """Share of anomalous test images above the threshold (recall)."""
    kind: str = "mse"
    """The score (one of :data:`SCORE_KINDS`)."""

    @property
    def score_name(self) -> str:
        """The score's name in figures (``NAP (RaPP)``, ``reconstruction MSE``...)."""
        return SCORE_NAMES.get(self.kind, self.kind)


def anomalies(test: ImageSplit, normal_classes: list[int]) -> torch.Tensor:
    """bool ``(N,)``: which ``test`` images are not of ``normal_classes``.

    Raises:
        ConfigError: none is, or all are (ROC-AUC needs both).
    """
    anomalous = ~torch.isin(test.labels, torch.tensor(normal_classes, dtype=test.labels.dtype))
    if bool(anomalous.all()) or not bool(anomalous.any()):
        raise ConfigError(
            f"the test set has {int((~anomalous).sum())} normal and {int(anomalous.sum())} anomalous "
            "images; ROC-AUC needs both"
        )
    return anomalous


def separate(
    model: AutoEncoder,
    test: ImageSplit,
    val: ImageSplit,
    normal_classes: list[int],
    percentile: float = 99.0,
    kind: str = DEFAULT_SCORE,
    train: ImageSplit | None = None,
) -> AnomalyResult:
    """Score ``test`` (all classes) with ``model`` (trained on ``normal_classes`` only) and measure how well the
    scores separate the other classes: ROC-AUC and PR-AUC (scikit-learn), and the flags at the threshold
    taken from ``val`` (normal images). ``train``: the normal training images NAP is fitted on.

    Raises:
        ConfigError: the test set has no normal or no anomalous image (ROC-AUC needs both), or bad
            ``percentile`` / ``kind``; NAP without ``train``.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    anomalous = anomalies(test, normal_classes)
    score = scorer(model, kind, train)
    scores = score(test)
    cut = threshold(score(val), percentile)
    flagged = scores > cut
    y, s = anomalous.numpy(), scores.numpy()
    return AnomalyResult(
        scores,
        anomalous,
        float(roc_auc_score(y, s)),
        float(average_precision_score(y, s)),
        cut,
        float(flagged[~anomalous].float().mean()),
        float(flagged[anomalous].float().mean()),
        kind,
    )


ONE_CLASS_SCORES = ("mse", "sap", "nap")
"""Scores a one-class run reports beside :data:`DEFAULT_SCORE` (as ``roc_auc_<kind>``)."""


def one_class_metrics(model: AutoEncoder, dataset, normal_classes: list[int]) -> dict:
    """What a one-class run reports: ``roc_auc`` and ``pr_auc`` of :data:`DEFAULT_SCORE` (NAP fitted on the run's
    training images, all of the normal classes), its name as ``anomaly_score``, and ``roc_auc_<kind>`` of each of
    :data:`ONE_CLASS_SCORES`. NAP, SAP and their product come from one pass along the encoder over the test set.

    Raises:
        ConfigError: the test set has no normal or no anomalous image.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    from aelab.evaluation.rapp import NAP

    y = anomalies(dataset.test, normal_classes).numpy()
    nap, sap = NAP.fitted(model, dataset.train).scores_and_sap(model, dataset.test)
    scores = {"nap_sap": nap * sap, "nap": nap, "sap": sap}
    for kind in {DEFAULT_SCORE, *ONE_CLASS_SCORES} - set(scores):
        scores[kind] = scorer(model, kind, dataset.train)(dataset.test)
    default = scores[DEFAULT_SCORE].numpy()
    row: dict = {
        "anomaly_score": DEFAULT_SCORE,
        "roc_auc": float(roc_auc_score(y, default)),
        "pr_auc": float(average_precision_score(y, default)),
    }
    for kind in ONE_CLASS_SCORES:
        row[f"roc_auc_{kind}"] = float(roc_auc_score(y, scores[kind].numpy()))
    return row
