"""What each analysis computes and draws: one function per analysis, ``fn(model, dataset, label, params) ->
Outcome``, calling :mod:`aelab.evaluation` for the numbers and :mod:`aelab.figures` for the picture."""

from __future__ import annotations

from typing import Any

from aelab.analyses.params import (
    AnomalyParams,
    DictionaryParams,
    FailuresParams,
    GenerateParams,
    HeatmapParams,
    InterpolationParams,
    LatentMapParams,
    ManifoldParams,
    NllParams,
    NoParams,
    ProbeParams,
    RefineParams,
    TraverseParams,
)
from aelab.analyses.registry import Outcome


def _interpolation(model, dataset, label, p: InterpolationParams) -> Outcome:
    from aelab.evaluation import latent as A
    from aelab.figures.grids import interpolation_figure

    test = dataset.test
    present = sorted(set(test.labels.tolist()))  # the default classes are the first two that have test images
    i, j = p.index_from, p.index_to
    if i is None:
        i = (
            A.pick_of_class(test, A.resolve_class(dataset, p.from_ if p.from_ is not None else present[0]), p.seed)
            if len(present) > 1
            else 0
        )
    if j is None:
        j = (
            A.pick_of_class(test, A.resolve_class(dataset, p.to if p.to is not None else present[1]), p.seed + 1)
            if len(present) > 1
            else min(1, len(test) - 1)
        )
    interp = A.interpolate(model, test, i, j, p.steps)
    names = dataset.class_names
    title = f"{label}: {names[int(test.labels[i])]} (#{i}) -> {names[int(test.labels[j])]} (#{j})"
    return Outcome(interpolation_figure(interp, title), {"index_from": i, "index_to": j, "steps": p.steps})


def _latent_map(model, dataset, label, p: LatentMapParams) -> Outcome:
    from aelab.evaluation import latent as A
    from aelab.figures.charts import latent_map_figure

    lm = A.latent_map(model, dataset.test, p.method, p.n, p.seed)
    return Outcome(
        latent_map_figure(lm, dataset.class_names, f"{label}: latent map ({lm.method})"),
        {"method": lm.method, "images": len(lm.points)},
    )


def _heatmap(model, dataset, label, p: HeatmapParams) -> Outcome:
    from aelab.evaluation import latent as A
    from aelab.figures.charts import code_heatmap_figure

    h = A.code_heatmap(model, dataset.test, p.n)
    dead, units = int(h.dead.sum()), int(h.codes.shape[1])
    return Outcome(
        code_heatmap_figure(h, f"{label}: codes of {len(h.codes)} test images"),
        {"dead_units": dead, "units": units},
        summary=f"{dead} of {units} code units are dead on these {len(h.codes)} images",
    )


def _dictionary(model, dataset, label, p: DictionaryParams) -> Outcome:
    from aelab.evaluation import latent as A
    from aelab.figures.grids import feature_dictionary_figure

    tiles = A.feature_dictionary(model, p.amplitude)
    return Outcome(
        feature_dictionary_figure(
            tiles,
            f"{label}: feature dictionary (amplitude {p.amplitude})",
            vectors=dataset is not None and dataset.is_vectors,
        ),
        {"units": int(tiles.shape[0]), "amplitude": p.amplitude},
    )


def _failures(model, dataset, label, p: FailuresParams) -> Outcome:
    from aelab.evaluation.failures import failures
    from aelab.figures.charts import failures_figure

    f = failures(model, dataset, min(p.k, len(dataset.test)))  # a small test split shows all of its images
    rows = [{"class": n, "images": c, "mse": m} for n, c, m in f.per_class]
    data = {"per_class": rows, "worst": [{"index": i, "mse": m} for i, m in zip(f.worst, f.worst_mse)]}
    return Outcome(failures_figure(f, f"{label}: per-class test MSE and the {p.k} worst reconstructions"), data, rows)


def _compression(model, dataset, label, p: NoParams) -> Outcome:
    from aelab.evaluation.compression import compression
    from aelab.figures.charts import compression_figure

    rows = compression(model, dataset)
    return Outcome(compression_figure(rows, f"{label}: compression"), rows, rows)


def _pca(model, dataset, label, p: NoParams) -> Outcome:
    from aelab.evaluation.pca import pca_baseline
    from aelab.evaluation.reconstruction import evaluate

    limit = min(len(dataset.train), dataset.train.pixels)
    test = evaluate(model, dataset.test)
    rows = [
        {
            "model": label,
            "kind": "run",
            "code_size": model.code_size,
            "test_mse": test["mse"],
            "test_psnr": test["psnr"],
        }
    ]
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
    from aelab.figures.charts import probes_figure

    wanted = labels_list(p.labels)
    counts = torch.bincount(dataset.train.labels)
    smallest = int(counts[counts > 0].min())
    usable = [n for n in wanted if n is None or n <= smallest]  # counts the classes have
    usable = usable or ([smallest] if p.fit else wanted)  # none: the smallest class's size, or probe_table says why
    rows = probe_table(model, dataset, usable, p.seed)
    return Outcome(probes_figure(rows, f"{label}: frozen-encoder probes vs classifiers from scratch"), rows, rows)


def _anomaly(model, dataset, label, p: AnomalyParams) -> Outcome:
    from aelab.config import DataConfig
    from aelab.errors import ConfigError
    from aelab.evaluation.anomaly import separate
    from aelab.figures.charts import anomaly_figure

    normal = dataset.normal_classes
    if p.normal_class is not None:
        normal = DataConfig.model_validate({"normal_classes": p.normal_class}).normal_classes
    if normal is None:
        raise ConfigError(
            f"{label} was trained on every class; give --normal-class (e.g. 0) to score the others as "
            "anomalies, or train with --normal-class"
        )
    r = separate(model, dataset.test, dataset.val, normal, p.percentile, p.score, dataset.train)
    names = ", ".join(dataset.class_names[c] for c in normal)
    row = {
        "normal": names,
        "roc_auc": r.roc_auc,
        "pr_auc": r.pr_auc,
        "threshold": r.threshold,
        "normal_flagged": r.normal_flagged,
        "anomalies_flagged": r.anomalies_flagged,
    }
    figure = anomaly_figure(
        r,
        None if dataset.is_vectors else dataset.test.images,
        dataset.class_names,
        dataset.test.labels,
        p.k,
        f"{label}: normal = {names}; ROC-AUC {r.roc_auc:.3f}, PR-AUC {r.pr_auc:.3f}",
    )
    return Outcome(
        figure,
        {**row, "score": p.score, "percentile": p.percentile},
        [row],
        summary=f"ROC-AUC {r.roc_auc:.4f}, PR-AUC {r.pr_auc:.4f} (normal: {names}; score {p.score})",
    )


def _generate(model, dataset, label, p: GenerateParams) -> Outcome:
    from aelab.evaluation.generation import generate
    from aelab.figures.grids import samples_figure

    quality = p.quality if p.quality is not None else model.samplers[0] != "gmm"  # the model has its own sampler
    g = generate(model, dataset, p.sampler, p.n, p.seed, p.quality_samples, quality)
    row: dict[str, Any] = {
        "sampler": g.sampler,
        "samples": g.samples,
        "frechet_distance": g.frechet,
        "class_accuracy": g.class_accuracy,
        "classifier_accuracy": g.classifier_accuracy,
    }
    what = f"sampler {g.sampler}"
    if g.frechet is not None:
        what += f"; Frechet distance {g.frechet:.2f} (aelab classifier features, {g.samples:,} samples)"
    if g.class_accuracy is not None:
        what += f"; samples labelled as their class: {g.class_accuracy:.1%}"
    names = dataset.class_names if model.lacks("unlabelled") else None  # one row per class
    metrics: dict[str, Any] = {"sampler": g.sampler}
    if g.frechet is not None:
        metrics["frechet_distance"] = g.frechet
    if g.class_accuracy is not None:
        metrics["sample_class_accuracy"] = g.class_accuracy
    return Outcome(
        samples_figure(g.grid, g.rows, f"{label}: samples\n" + what.replace("; ", "\n"), names),
        {**row, "per_class": [{"class": n, "accuracy": a} for n, a in zip(dataset.class_names, g.per_class)]},
        [row],
        summary=what,
        metrics=metrics,
    )


def _traverse(model, dataset, label, p: TraverseParams) -> Outcome:
    from aelab.evaluation.latent import traversals
    from aelab.figures.grids import traversal_figure

    images, units, values = traversals(model, dataset, p.index, p.steps, p.units)
    return Outcome(
        traversal_figure(images, units, values, f"{label}: latent traversals around test image {p.index}"),
        {"index": p.index, "units": units, "values": values.round(4).tolist()},
    )


def _manifold(model, dataset, label, p: ManifoldParams) -> Outcome:
    from aelab.evaluation import latent as A
    from aelab.figures.grids import manifold_figure

    cls = A.resolve_class(dataset, p.class_) if p.class_ is not None else None
    images, u, v, how = A.manifold(model, dataset, p.steps, cls)
    return Outcome(
        manifold_figure(images, u, v, f"{label}: decoded 2-D latent grid ({how})"),
        {"steps": p.steps, "u": u.round(4).tolist(), "v": v.round(4).tolist()},
    )


def _nll(model, dataset, label, p: NllParams) -> Outcome:
    from rich.console import Console
    from rich.progress import Progress

    from aelab.models.bounds import iwae_nll

    test = dataset.test if p.images is None else dataset.test.head(p.images)
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"{label}: IWAE, k={p.k:,}", total=len(test))
        result = iwae_nll(model, test, p.k, p.seed, on_step=lambda done: bar.update(task, completed=done))
    row = {"model": label, **result, "binarized": dataset.binarize is not None}
    summary = (
        f"{label}: test -log p(x) <= {result['nll']:.2f} nats per image (IWAE, k={p.k:,}, {len(test):,} test "
        f"images{', dynamically binarized' if row['binarized'] else ''}); -ELBO {result['nelbo']:.2f}"
    )
    return Outcome(None, [row], [row], summary, {"test_nll": result["nll"], "nll_k": p.k})


def _refine(model, dataset, label, p: RefineParams) -> Outcome:
    from aelab.evaluation.refinement import refinement
    from aelab.figures.charts import refinement_figure

    r = refinement(model, dataset.test, p.images, p.steps, p.lr)
    rows = [{"steps": s, "mse": m, "psnr": q, "change": m / r.mse[0] - 1} for s, m, q in zip(r.steps, r.mse, r.psnr)]
    data = {"images": r.images, "lr": p.lr, "shift": r.shift, "per_step": rows}
    summary = (
        f"{label}: test MSE {r.mse[0]:.5f} with the encoder's codes, {r.mse[-1]:.5f} after {r.steps[-1]} steps of "
        f"code search ({rows[-1]['change']:+.1%}, {r.psnr[-1] - r.psnr[0]:+.2f} dB) on {r.images:,} test images"
    )
    return Outcome(refinement_figure(r, f"{label}: code refinement"), data, rows, summary)
