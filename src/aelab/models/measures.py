"""The metrics row: every measure a run (or a baseline) can have, with its heading, format and unit.

One table of :class:`Measure` entries serves the engine (what a run's ``metrics.json`` and the store hold), the
report and the CLI tables (which columns, in which order, formatted how: :func:`aelab.models.table.columns`)
and the rate-distortion figure. The measures every model has are listed here; a model family adds its own
(:attr:`AutoEncoder.measures`, e.g. a VAE's -ELBO) and computes them in its
:meth:`~aelab.models.AutoEncoder.test_measures` hook. Rows are plain dicts (JSON in the store); a row's ``kind``
says what it is: ``run``, ``pca`` or ``mean-image`` (the baselines). This module imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass

ROW_KINDS = ("run", "pca", "mean-image")
"""What a row of an experiment's table is: a trained run, or a baseline (PCA at a code size, the mean image)."""


@dataclass(frozen=True)
class Measure:
    """One column of the metrics row."""

    key: str
    """The row's key (``test_mse``)."""
    heading: str
    """Column heading in tables."""
    fmt: str = "{}"
    """Format of a value (``{:.5f}``)."""
    unit: str = ""
    """Unit of the value (``dB``, ``nats per image``), '' for counts and ratios."""
    table: str = "main"
    """``main`` (the comparison table) or one of :data:`SIDE_TABLES` (``generative``: likelihoods, codebook use,
    sample quality; ``anomaly``: one-class detection), which the CLI prints apart; the report shows all in one."""

    def format(self, row: dict) -> str:
        """The value of ``row`` as shown in tables ('-' where the row has none)."""
        value = row.get(self.key)
        return "-" if value is None else self.fmt.format(value)


IDENTITY = (
    Measure("model", "model"),
    Measure("parameters", "parameters", "{:,}"),
    Measure("code_size", "code size"),
    Measure("compression_ratio", "compression", "{:.1f}x"),
)
QUALITY = (
    Measure("test_mse", "test MSE", "{:.5f}", "per pixel, images in [0, 1]"),
    Measure("test_psnr", "PSNR (dB)", "{:.2f}", "dB, per image, averaged"),
    Measure("test_ssim", "SSIM", "{:.4f}"),
)
OPTIONAL = (
    Measure("noisy_psnr", "noisy PSNR", "{:.2f}", "dB"),
    Measure("denoised_psnr", "denoised PSNR", "{:.2f}", "dB"),
    Measure("normal", "normal class", table="anomaly"),
    Measure("anomaly_score", "score", table="anomaly"),
    Measure("roc_auc", "ROC-AUC", "{:.4f}", table="anomaly"),
    Measure("pr_auc", "PR-AUC", "{:.4f}", table="anomaly"),
    Measure("roc_auc_mse", "ROC-AUC (MSE)", "{:.4f}", table="anomaly"),
    Measure("roc_auc_sap", "ROC-AUC (SAP)", "{:.4f}", table="anomaly"),
    Measure("roc_auc_nap", "ROC-AUC (NAP)", "{:.4f}", table="anomaly"),
)
"""Shown when some row has them: denoising (a corrupted test set) and one-class anomaly detection."""
TAIL = (
    Measure("code_l0", "L0", "{:.1f}", "active units per code"),
    Measure("dead_units", "dead"),
    Measure("train_seconds", "train time (s)", "{:.1f}", "s"),
    Measure("images_per_second", "images/s", "{:,.0f}"),
)
SAMPLES = (
    Measure("frechet_distance", "Frechet distance*", "{:.2f}", table="generative"),
    Measure("sample_class_accuracy", "samples of their class", "{:.3f}", table="generative"),
)
"""Sample quality (the generate analysis), for every model that can sample."""
SIDE_TABLES = {
    "generative": "generative measures (units in each heading; *not Inception FID)",
    "anomaly": "one-class anomaly detection (test set: the normal class against the others, anomalies positive)",
}
"""The CLI's tables beside the comparison table, by :attr:`Measure.table`: the title after the experiment's name."""


def is_baseline(row: dict) -> bool:
    """True for a baseline row (PCA, the mean image)."""
    return row.get("kind", "run") != "run"
