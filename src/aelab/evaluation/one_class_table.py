"""The one-class benchmark as one table: aelab's ROC-AUC per normal class for each score its runs report, beside
published one-class Fashion-MNIST results (README, the anomaly guide and the experiment report show it).

The published figures are ROC-AUC x 100 as quoted in aelab's issue 21; they could not be checked against the
papers' tables in aelab's workplace (no network). Protocols differ between papers (which images are tested, how
many runs are averaged), so each row says its source and protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

from aelab.data.registry import CLASS_NAMES
from aelab.models.measures import Measure


@dataclass(frozen=True)
class Published:
    """One published result: ROC-AUC x 100 per normal class (0..9) when the paper gives them, and the mean."""

    method: str
    source: str
    mean: float
    per_class: tuple[float, ...] | None = None


FASHION_MNIST = "fashion-mnist"
PUBLISHED = (
    Published(
        "GEOM (geometric transformations)",
        "Golan & El-Yaniv, NeurIPS 2018, Table 1: train on one class, test on the whole test set",
        93.5,
        (99.4, 97.6, 91.1, 89.9, 92.1, 93.4, 83.3, 98.9, 90.8, 99.2),
    ),
    Published("raw OC-SVM", "as quoted by Golan & El-Yaniv, NeurIPS 2018, Table 1", 92.8),
    Published("CAE + OC-SVM", "as quoted by Golan & El-Yaniv, NeurIPS 2018, Table 1", 91.7),
    Published("autoencoder, reconstruction error", "Kim et al. (RaPP), ICLR 2020, Table 2, unimodal", 92.4),
    Published("RaPP (SAP / NAP)", "Kim et al., ICLR 2020, Table 2, unimodal: 93.3-93.4", 93.4),
    Published("ARNet (restoration autoencoder)", "Ye et al., 2022", 93.9),
)
"""One-class Fashion-MNIST results quoted beside aelab's."""

SCORES = (
    ("roc_auc", "aelab {model}, {score} (default)"),
    ("roc_auc_nap", "aelab {model}, NAP"),
    ("roc_auc_sap", "aelab {model}, SAP"),
    ("roc_auc_mse", "aelab {model}, reconstruction MSE"),
)
"""The keys of a one-class run's row and how its table row is named."""


def one_class_table(rows: list[dict], dataset: str) -> tuple[list[dict], list[Measure]]:
    """aelab's rows (one per score the runs report, ROC-AUC x 100 per normal class and the mean of those
    measured), then the published rows when ``dataset`` is Fashion-MNIST and the runs cover its ten classes one
    each; and the table's columns. ``rows``: the one-class runs' metrics rows (``normal``, ``roc_auc``...);
    none: an empty table."""
    runs = [r for r in rows if r.get("roc_auc") is not None and r.get("normal")]
    if not runs:
        return [], []
    classes = list(dict.fromkeys(r["normal"] for r in runs))
    every = dataset == FASHION_MNIST and sorted(classes) == sorted(CLASS_NAMES[FASHION_MNIST]) and len(runs) == 10
    if every:
        classes = list(CLASS_NAMES[FASHION_MNIST])  # in class order, as the published rows are
    columns = [Measure("method", "method")] + [Measure(f"c{i}", name, "{:.1f}") for i, name in enumerate(classes)]
    columns += [Measure("mean", "mean", "{:.1f}"), Measure("source", "source")]
    table: list[dict] = []
    for key, name in SCORES:
        values = {c: r[key] for r in runs if r.get(key) is not None for c in [r["normal"]]}
        if values:
            model = str(runs[0].get("model", "")).split(" normal_classes=")[0]
            row: dict = {
                "method": name.format(model=model, score=runs[0].get("anomaly_score", "")),
                "source": "this run",
            }
            row.update({f"c{i}": 100 * values[c] for i, c in enumerate(classes) if c in values})
            row["mean"] = 100 * sum(values.values()) / len(values)
            table.append(row)
    if every:
        for p in PUBLISHED:
            row = {"method": p.method, "source": p.source, "mean": p.mean, "kind": "published"}  # shown dimmed
            row.update({f"c{i}": v for i, v in enumerate(p.per_class or ())})
            table.append(row)
    return table, columns
