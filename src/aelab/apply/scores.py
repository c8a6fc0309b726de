"""Anomaly scores of images under a trained run: reconstruction error per image, a threshold taken from the
run's validation split (images the model did not train on), and a flag per image. Scores are
:func:`aelab.evaluation.anomaly.reconstruction_scores`."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import torch

from aelab.evaluation.anomaly import reconstruction_scores, threshold
from aelab.io import atomic_write_text


@dataclass
class ScoreTable:
    """Scores of N images."""

    names: list[str]
    mse: torch.Tensor
    """float64 ``(N,)``: per-image reconstruction MSE (pixels in [0, 1])."""
    ssim: torch.Tensor | None
    """float64 ``(N,)``: ``1 - SSIM`` per image, when asked for."""
    score: str
    """Which of the two the flag uses: mse or ssim."""
    threshold: float
    percentile: float
    flagged: torch.Tensor
    """bool ``(N,)``: score above the threshold."""
    labels: torch.Tensor | None = None

    def to_csv(self) -> str:
        """CSV text: image, [label], mse, [ssim_score], anomalous (0/1)."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            ["image"]
            + (["label"] if self.labels is not None else [])
            + ["mse"]
            + (["ssim_score"] if self.ssim is not None else [])
            + ["anomalous"]
        )
        for i, name in enumerate(self.names):
            writer.writerow(
                [name]
                + ([int(self.labels[i])] if self.labels is not None else [])
                + [f"{float(self.mse[i]):.8g}"]
                + ([f"{float(self.ssim[i]):.8g}"] if self.ssim is not None else [])
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
) -> ScoreTable:
    """Score uint8 ``images`` ``(N, C, H, W)``; flag those above the ``percentile`` of the scores of the
    ``validation`` images (uint8, the run's validation split).

    Raises:
        ConfigError: unknown score, percentile outside 0..100, or no validation images.
        AelabError: a conditional model.
    """
    from aelab.apply import refuse_unlabelled

    refuse_unlabelled(model, "score")
    cut = threshold(reconstruction_scores(model, validation, score), percentile)
    mse = reconstruction_scores(model, images, "mse")
    ssim = reconstruction_scores(model, images, "ssim") if score == "ssim" else None
    used = ssim if ssim is not None else mse
    return ScoreTable(list(names), mse, ssim, score, cut, percentile, used > cut, labels)


def write_scores(table: ScoreTable, path: Path | str) -> Path:
    """Write the table as CSV (atomically)."""
    return atomic_write_text(path, table.to_csv())
