"""Anomaly scores of images under a trained run: reconstruction error per image and, when asked for, another
score (1 - SSIM, or RaPP's SAP / NAP along the encoder, or NAP x SAP), a threshold taken from the run's
validation split (images the model did not train on), and a flag per image. Scores are
:func:`aelab.evaluation.anomaly.scorer`."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import torch

from aelab.evaluation.anomaly import reconstruction_scores, scorer, threshold
from aelab.io import atomic_write_text


@dataclass
class ScoreTable:
    """Scores of N images."""

    names: list[str]
    mse: torch.Tensor
    """float64 ``(N,)``: per-image reconstruction MSE (pixels in [0, 1])."""
    chosen: torch.Tensor | None
    """float64 ``(N,)``: the flag's score when it is not mse (``1 - SSIM``, SAP, NAP or NAP x SAP)."""
    score: str
    """Which score the flag uses: mse, ssim, sap, nap or nap_sap."""
    threshold: float
    percentile: float
    flagged: torch.Tensor
    """bool ``(N,)``: score above the threshold."""
    labels: torch.Tensor | None = None

    def to_csv(self) -> str:
        """CSV text: image, [label], mse, [<score>_score], anomalous (0/1)."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            ["image"]
            + (["label"] if self.labels is not None else [])
            + ["mse"]
            + ([f"{self.score}_score"] if self.chosen is not None else [])
            + ["anomalous"]
        )
        for i, name in enumerate(self.names):
            writer.writerow(
                [name]
                + ([int(self.labels[i])] if self.labels is not None else [])
                + [f"{float(self.mse[i]):.8g}"]
                + ([f"{float(self.chosen[i]):.8g}"] if self.chosen is not None else [])
                + [int(self.flagged[i])]
            )
        return out.getvalue()


def score_images(
    model,
    images: torch.Tensor,
    names: list[str],
    validation: torch.Tensor,
    percentile: float = 99.0,
    score: str = "mse",
    labels: torch.Tensor | None = None,
    train: torch.Tensor | None = None,
) -> ScoreTable:
    """Score uint8 ``images`` ``(N, C, H, W)``; flag those above the ``percentile`` of the scores of the
    ``validation`` images (uint8, the run's validation split). ``train``: the run's training images, which NAP is
    fitted on.

    Raises:
        ConfigError: unknown score, percentile outside 0..100, no validation images, or NAP without ``train``.
        AelabError: a conditional model.
    """
    from aelab.apply import refuse_unlabelled

    refuse_unlabelled(model, "score")
    used = scorer(model, score, train)
    cut = threshold(used(validation), percentile)
    mse = reconstruction_scores(model, images, "mse")
    chosen = used(images) if score != "mse" else None
    return ScoreTable(
        list(names), mse, chosen, score, cut, percentile, (chosen if chosen is not None else mse) > cut, labels
    )


def write_scores(table: ScoreTable, path: Path | str) -> Path:
    """Write the table as CSV (atomically)."""
    return atomic_write_text(path, table.to_csv())
