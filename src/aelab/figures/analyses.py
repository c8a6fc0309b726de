"""The analysis registry: one list, :data:`ANALYSES`, drives the report, the CLI's analysis commands and the
Python API (:func:`aelab.analyse`). Adding an analysis is one :class:`Analysis` entry: its parameters (a
pydantic model whose field docstrings are the CLI's help), what it computes (from :mod:`aelab.evaluation`),
its figure, and the columns of its table.

Each entry's ``compute(model, dataset, label, params)`` returns an :class:`Outcome`: a matplotlib figure
(or None), JSON-able data saved beside it, and table rows (shown by the CLI and the report).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


@dataclass
class Outcome:
    """What one analysis of one model gives."""

    figure: Any = None
    """A matplotlib Figure, saved as ``analysis/<name>.png`` (None: no figure)."""
    data: Any = None
    """JSON-able data, saved as ``analysis/<name>.json``."""
    rows: list[dict] = field(default_factory=list)
    """Table rows, formatted with the entry's ``columns``."""
    summary: str = ""
    """One line for the CLI (e.g. how many units are dead)."""
    metrics: dict = field(default_factory=dict)
    """Values for the run's row in the experiment table (e.g. the Frechet distance of its samples)."""


Column = tuple[str, str, str]
"""(row key, heading, format string)."""


@dataclass(frozen=True)
class Analysis:
    """One analysis: CLI command ``aelab <name>``, file stem ``analysis/<name>``, report section ``title``."""

    name: str
    title: str
    text: str
    """What the figure shows (the report's caption and the command's help)."""
    params: type[BaseModel]
    compute: Callable[..., Outcome]
    columns: list[Column] = field(default_factory=list)
    needs_labels: bool = False
    """Skipped in the report when the test set has a single class (e.g. a folder without sub-folders)."""
    report_params: dict = field(default_factory=dict)
    """Parameters used when the report runs it (defaults otherwise)."""
    in_report: bool = True
    """Run for every run's report section (PCA is in the experiment's table already)."""
    applies: Optional[Callable[[Any], bool]] = None
    """Run for the report only on datasets where this is true (None: every dataset)."""
    images_only: bool = False
    """Needs images (shows or measures them as pictures): skipped, with a note in the report, on vector data."""
    conditional: bool = False
    """Works on conditional models (which need the class label with every image and code)."""
    refuses: Optional[Callable[[Any], Optional[str]]] = None
    """Why a model does not fit this analysis (None: it fits), besides the conditional rule."""

    def why_not(self, model) -> Optional[str]:
        """Why ``model`` does not fit this analysis, or None when it does."""
        if model.conditional and not self.conditional:
            return "a conditional model needs the class label with every image and code"
        return self.refuses(model) if self.refuses is not None else None

    def fits(self, model) -> bool:
        return self.why_not(model) is None


# ------------------------------------------------------------------------------------------- parameters
class InterpolationParams(_Params):
    from_: Optional[str] = Field(None, alias="from")
    """Class (index or name) of the first image; default class 0."""
    to: Optional[str] = None
    """Class (index or name) of the second image; default class 1."""
    index_from: Optional[int] = Field(None, ge=0)
    """Test-image index of the first image (instead of a class)."""
    index_to: Optional[int] = Field(None, ge=0)
    """Test-image index of the second image (instead of a class)."""
    steps: int = Field(10, ge=2)
    """Images per row."""
    seed: int = 0
    """Chooses the example of each class."""


class LatentMapParams(_Params):
    method: Literal["auto", "pca", "tsne"] = "auto"
    """auto (the code itself if 2-D, else PCA), pca, or tsne."""
    n: int = Field(5000, ge=2)
    """Test images to map."""
    seed: int = 0
    """Seed of PCA / t-SNE."""


class HeatmapParams(_Params):
    n: int = Field(512, ge=1)
    """Test images in the heatmap."""


class DictionaryParams(_Params):
    amplitude: float = 1.0
    """Value of the one-hot code decoded for each unit."""


class FailuresParams(_Params):
    k: int = Field(8, ge=1)
    """Worst-reconstructed test images to show."""


class NoParams(_Params):
    pass


class AnomalyParams(_Params):
    percentile: float = Field(99.0, ge=0, le=100)
    """Threshold: this percentile of the validation split's scores (normal images)."""
    score: Literal["mse", "ssim"] = "mse"
    """Anomaly score: mse (per-image reconstruction MSE) or ssim (1 - SSIM)."""
    k: int = Field(8, ge=1)
    """Most and least anomalous test images to show."""
    normal_class: Optional[str] = None
    """Normal class indices (e.g. 0 or 0,3); default: the classes the run was trained on."""


class ProbeParams(_Params):
    labels: str = "10,100,all"
    """Labelled images per class, comma-separated: positive integers or 'all'."""
    seed: int = 0
    """Chooses the labelled images and seeds the classifiers."""


class GenerateParams(_Params):
    sampler: Literal["auto", "prior", "gmm", "categorical"] = "auto"
    """auto (prior for a VAE, categorical for a VQ-VAE, gmm otherwise), prior (N(0, I); VAEs), gmm (a Gaussian
    mixture of 10 components fitted to 10,000 training codes), categorical (a VQ-VAE's index frequencies per grid
    position)."""
    n: int = Field(64, ge=1)
    """Samples in the figure (a conditional model: one row per class, ceil(n / classes) per row, at most 10)."""
    seed: int = 0
    """Seed of the samples."""
    quality_samples: Optional[int] = Field(None, ge=2)
    """Samples for the Frechet distance and class accuracy; default: as many as the test images."""


class TraverseParams(_Params):
    index: int = Field(0, ge=0)
    """Test image whose code holds the other units."""
    steps: int = Field(9, ge=2)
    """Values per unit."""
    units: int = Field(16, ge=1)
    """Units shown, most-varying first."""


class ManifoldParams(_Params):
    steps: int = Field(15, ge=2)
    """Grid points per latent axis."""
    class_: Optional[str] = Field(None, alias="class")
    """Conditional models: the class decoded (index or name); default class 0."""


# -------------------------------------------------------------------------------------------- computing
def _interpolation(model, dataset, label, p: InterpolationParams) -> Outcome:
    from aelab.evaluation import analysis as A
    from aelab.figures.analysis import interpolation_figure

    test = dataset.test
    has_classes = len(set(test.labels.tolist())) > 1
    i, j = p.index_from, p.index_to
    if i is None:
        i = A.pick_of_class(test, A.resolve_class(dataset, p.from_ if p.from_ is not None else 0), p.seed) \
            if has_classes else 0
    if j is None:
        j = A.pick_of_class(test, A.resolve_class(dataset, p.to if p.to is not None else 1), p.seed + 1) \
            if has_classes else min(1, len(test) - 1)
    interp = A.interpolate(model, test, i, j, p.steps)
    names = dataset.class_names
    title = f"{label}: {names[int(test.labels[i])]} (#{i}) -> {names[int(test.labels[j])]} (#{j})"
    return Outcome(interpolation_figure(interp, title), {"index_from": i, "index_to": j, "steps": p.steps})


def _latent_map(model, dataset, label, p: LatentMapParams) -> Outcome:
    from aelab.evaluation import analysis as A
    from aelab.figures.analysis import latent_map_figure

    lm = A.latent_map(model, dataset.test, p.method, p.n, p.seed)
    return Outcome(latent_map_figure(lm, dataset.class_names, f"{label}: latent map ({lm.method})"),
                   {"method": lm.method, "images": len(lm.points)})


def _heatmap(model, dataset, label, p: HeatmapParams) -> Outcome:
    from aelab.evaluation import analysis as A
    from aelab.figures.analysis import code_heatmap_figure

    h = A.code_heatmap(model, dataset.test, p.n)
    dead, units = int(h.dead.sum()), int(h.codes.shape[1])
    return Outcome(code_heatmap_figure(h, f"{label}: codes of {len(h.codes)} test images"),
                   {"dead_units": dead, "units": units},
                   summary=f"{dead} of {units} code units are dead on these {len(h.codes)} images")


def _dictionary(model, dataset, label, p: DictionaryParams) -> Outcome:
    from aelab.evaluation import analysis as A
    from aelab.figures.analysis import feature_dictionary_figure

    tiles = A.feature_dictionary(model, p.amplitude)
    return Outcome(feature_dictionary_figure(tiles, f"{label}: feature dictionary (amplitude {p.amplitude})",
                                             vectors=dataset is not None and dataset.is_vectors),
                   {"units": int(tiles.shape[0]), "amplitude": p.amplitude})


def _failures(model, dataset, label, p: FailuresParams) -> Outcome:
    from aelab.evaluation import analysis as A
    from aelab.figures.analysis import failures_figure

    f = A.failures(model, dataset, p.k)
    rows = [{"class": n, "images": c, "mse": m} for n, c, m in f.per_class]
    data = {"per_class": rows, "worst": [{"index": i, "mse": m} for i, m in zip(f.worst, f.worst_mse)]}
    return Outcome(failures_figure(f, f"{label}: per-class test MSE and the {p.k} worst reconstructions"), data, rows)


def _compression(model, dataset, label, p: NoParams) -> Outcome:
    from aelab.evaluation import analysis as A
    from aelab.figures.analysis import compression_figure

    rows = A.compression(model, dataset)
    return Outcome(compression_figure(rows, f"{label}: compression"), rows, rows)


def _pca(model, dataset, label, p: NoParams) -> Outcome:
    from aelab.evaluation import evaluate
    from aelab.evaluation.pca import pca_baseline

    limit = min(len(dataset.train), dataset.train.images[0].numel())
    test = evaluate(model, dataset.test)
    rows = [{"model": label, "code_size": model.code_size, "test_mse": test["mse"], "test_psnr": test["psnr"]}]
    if model.code_size <= limit:
        rows.append(pca_baseline(dataset.train, dataset.test, model.code_size))
    return Outcome(None, rows, rows)


def labels_list(text: str) -> list[int | None]:
    """``"10,100,all"`` -> ``[10, 100, None]``.

    Raises:
        ConfigError: a part that is neither a positive integer nor 'all'.
    """
    from aelab.errors import ConfigError

    out: list[int | None] = []
    for part in text.split(","):
        part = part.strip()
        if part == "all":
            out.append(None)
        elif part.isdigit() and int(part) > 0:
            out.append(int(part))
        else:
            raise ConfigError(f"--labels: got {part!r}; allowed: positive integers or 'all', e.g. 10,100,all")
    return out


def _probes(model, dataset, label, p: ProbeParams) -> Outcome:
    import torch

    from aelab.evaluation.probes import probe_table
    from aelab.figures.analysis import probes_figure

    wanted = labels_list(p.labels)
    counts = torch.bincount(dataset.train.labels)
    smallest = int(counts[counts > 0].min())
    usable = [n for n in wanted if n is None or n <= smallest] or wanted  # none usable: probe_table says why
    rows = probe_table(model, dataset, usable, p.seed)
    return Outcome(probes_figure(rows, f"{label}: frozen-encoder probes vs classifiers from scratch"), rows, rows)


def _anomaly(model, dataset, label, p: AnomalyParams) -> Outcome:
    from aelab.config import DataConfig
    from aelab.errors import ConfigError
    from aelab.evaluation.anomaly import separate
    from aelab.figures.analysis import anomaly_figure

    normal = dataset.normal_classes
    if p.normal_class is not None:
        normal = DataConfig(normal_classes=p.normal_class).normal_classes
    if normal is None:
        raise ConfigError(f"{label} was trained on every class; give --normal-class (e.g. 0) to score the others as "
                          "anomalies, or train with --normal-class")
    r = separate(model, dataset.test, dataset.val, normal, p.percentile, p.score)
    names = ", ".join(dataset.class_names[c] for c in normal)
    row = {"normal": names, "roc_auc": r.roc_auc, "pr_auc": r.pr_auc, "threshold": r.threshold,
           "normal_flagged": r.normal_flagged, "anomalies_flagged": r.anomalies_flagged}
    figure = anomaly_figure(r, None if dataset.is_vectors else dataset.test.images, dataset.class_names,
                            dataset.test.labels, p.k,
                            f"{label}: normal = {names}; ROC-AUC {r.roc_auc:.3f}, PR-AUC {r.pr_auc:.3f}")
    return Outcome(figure, {**row, "score": p.score, "percentile": p.percentile}, [row],
                   summary=f"ROC-AUC {r.roc_auc:.4f}, PR-AUC {r.pr_auc:.4f} (normal: {names}; score {p.score})")


def _generate(model, dataset, label, p: GenerateParams) -> Outcome:
    from aelab.evaluation.generative import generate
    from aelab.figures.analysis import samples_figure

    g = generate(model, dataset, p.sampler, p.n, p.seed, p.quality_samples)
    row = {"sampler": g.sampler, "samples": g.samples, "frechet_distance": g.frechet,
           "class_accuracy": g.class_accuracy, "classifier_accuracy": g.classifier_accuracy}
    what = f"sampler {g.sampler}"
    if g.frechet is not None:
        what += f"; Frechet distance {g.frechet:.2f} (aelab classifier features, {g.samples:,} samples)"
    if g.class_accuracy is not None:
        what += f"; samples labelled as their class: {g.class_accuracy:.1%}"
    names = dataset.class_names if model.conditional else None
    metrics = {"sampler": g.sampler}
    if g.frechet is not None:
        metrics["frechet_distance"] = g.frechet
    if g.class_accuracy is not None:
        metrics["sample_class_accuracy"] = g.class_accuracy
    return Outcome(samples_figure(g.grid, g.rows, f"{label}: samples\n" + what.replace("; ", "\n"), names),
                   {**row, "per_class": [{"class": n, "accuracy": a} for n, a in zip(dataset.class_names, g.per_class)]},
                   [row], summary=what, metrics=metrics)


def _traverse(model, dataset, label, p: TraverseParams) -> Outcome:
    from aelab.evaluation.generative import traversals
    from aelab.figures.analysis import traversal_figure

    images, units, values = traversals(model, dataset, p.index, p.steps, p.units)
    return Outcome(traversal_figure(images, units, values, f"{label}: latent traversals around test image {p.index}"),
                   {"index": p.index, "units": units, "values": values.round(4).tolist()})


def _manifold(model, dataset, label, p: ManifoldParams) -> Outcome:
    from aelab.evaluation import analysis as A
    from aelab.evaluation.generative import manifold
    from aelab.figures.analysis import manifold_figure

    cls = A.resolve_class(dataset, p.class_) if p.class_ is not None else None
    images, u, v = manifold(model, dataset, p.steps, cls)
    from aelab.models.variational import VariationalAutoEncoder

    how = "prior quantiles" if isinstance(model, VariationalAutoEncoder) else "1st-99th percentile of test codes"
    return Outcome(manifold_figure(images, u, v, f"{label}: decoded 2-D latent grid ({how})"),
                   {"steps": p.steps, "u": u.round(4).tolist(), "v": v.round(4).tolist()})


def _vector_code(model):
    return None if len(model.code_shape) == 1 else f"its code is a {'x'.join(map(str, model.code_shape))} map"


def _no_codebook(model):
    from aelab.models.quantizer import VQAutoEncoder

    return "its code is a grid of codebook indices" if isinstance(model, VQAutoEncoder) else None


# ------------------------------------------------------------------------------------------- the registry
ANALYSES: list[Analysis] = [
    Analysis("interpolate", "Latent interpolation",
             "Interpolate between two test images: top, the data-space blend (1-a)x + ax'; bottom, the decoded "
             "latent blend g((1-a)f(x) + af(x')), whose endpoints are the reconstructions of the two images.",
             InterpolationParams, _interpolation, images_only=True),
    Analysis("latent-map", "Latent map", "2-D map of the test codes, coloured by class.", LatentMapParams,
             _latent_map, needs_labels=True, report_params={"n": 2000}),
    Analysis("heatmap", "Code heatmap",
             "Codes of a batch of test images as an image (samples x units), unit activity, dead units in red.",
             HeatmapParams, _heatmap),
    Analysis("dictionary", "Feature dictionary", "What each code unit decodes to: g(a e_j) - g(0).",
             DictionaryParams, _dictionary, refuses=_no_codebook),
    Analysis("failures", "Where it fails", "Per-class test MSE and the worst-reconstructed test images.",
             FailuresParams, _failures, [("class", "class", "{}"), ("images", "images", "{:,}"),
                                         ("mse", "MSE", "{:.5f}")], images_only=True),
    Analysis("compression", "Compression",
             "Code bytes per image stored as float32 / float16 / 8-bit (per-unit affine) vs the raw 8-bit image, "
             "and the PSNR of the reconstruction decoded from each.", NoParams, _compression,
             [("storage", "code stored as", "{}"), ("code_bytes", "bytes per code", "{}"),
              ("image_bytes", "raw image bytes", "{}"), ("compression_ratio", "ratio", "{:.1f}x"),
              ("psnr", "PSNR (dB)", "{:.2f}")], images_only=True),
    Analysis("pca", "PCA at the same code size",
             "The autoencoder beside scikit-learn PCA fitted on the training images with as many components as "
             "the code has values.", NoParams, _pca,
             [("model", "model", "{}"), ("code_size", "code size", "{}"), ("test_mse", "test MSE", "{:.5f}"),
              ("test_psnr", "PSNR (dB)", "{:.2f}")], in_report=False),
    Analysis("probe", "Features with few labels",
             "Frozen-encoder linear probe (logistic regression) and kNN on the codes vs an MLP and a CNN trained "
             "from scratch on the same few labels (test accuracy).", ProbeParams, _probes,
             [("labels_per_class", "labels/class", "{}"), ("labelled", "labelled images", "{:,}"),
              ("logistic", "linear probe", "{:.3f}"), ("knn", "kNN", "{:.3f}"), ("mlp", "MLP (scratch)", "{:.3f}"),
              ("cnn", "CNN (scratch)", "{:.3f}"), ("helps", "codes help?", "{}")],
             needs_labels=True, report_params={"labels": "10,100"},
             applies=lambda dataset: len(set(dataset.train.labels.tolist())) > 1),  # not on one-class training
    Analysis("anomaly-scores", "Anomaly scores",
             "Reconstruction error as an anomaly score on the test set: normal class(es) vs the rest. ROC-AUC and "
             "PR-AUC (scikit-learn, anomalies positive), the threshold at a percentile of the validation split's "
             "scores, the score histograms and the most and least anomalous test images.", AnomalyParams, _anomaly,
             [("normal", "normal", "{}"), ("roc_auc", "ROC-AUC", "{:.4f}"), ("pr_auc", "PR-AUC", "{:.4f}"),
              ("threshold", "threshold", "{:.5f}"), ("normal_flagged", "normal flagged", "{:.3f}"),
              ("anomalies_flagged", "anomalies flagged", "{:.3f}")],
             needs_labels=True, applies=lambda dataset: dataset.normal_classes is not None),
    Analysis("generate", "Generated samples",
             "Images decoded from sampled codes: the prior N(0, I) of a VAE, a Gaussian mixture fitted to the training "
             "codes of any other model, a VQ-VAE's index frequencies per position; a conditional model draws one row "
             "per class. Sample quality: the Frechet distance between generated and test images in the 128 features "
             "of a small CNN that aelab trains on the same dataset (NOT the Inception FID: comparable only between "
             "aelab runs on this dataset; lower is better), and for conditional models the share of samples of class "
             "c that this classifier labels c.", GenerateParams, _generate,
             [("sampler", "sampler", "{}"), ("samples", "samples", "{:,}"),
              ("frechet_distance", "Frechet distance", "{:.2f}"), ("class_accuracy", "class accuracy", "{:.3f}"),
              ("classifier_accuracy", "classifier test accuracy", "{:.3f}")],
             images_only=True, conditional=True),
    Analysis("traverse", "Latent traversals",
             "Each latent unit (rows, most-varying first) swept over its range (2nd-98th percentile of the test "
             "codes; a VAE's at least -2..2) with the other units held at a test image's code.", TraverseParams,
             _traverse, images_only=True, conditional=True, refuses=_vector_code),
    Analysis("manifold", "Decoded latent manifold",
             "A grid of 2-D latent points decoded: a VAE's prior quantiles, or the range of another model's test "
             "codes.", ManifoldParams, _manifold, images_only=True, conditional=True,
             refuses=lambda m: None if m.code_shape == (2,) else "its code does not have exactly 2 values"),
]
"""Every analysis, in report order."""

BY_NAME = {a.name: a for a in ANALYSES}
