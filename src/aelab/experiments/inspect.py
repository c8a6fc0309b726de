"""Analyses of a finished run folder: each writes ``RUN_DIR/analysis/<analysis>_<model>.png`` and, where
there is a table, ``.json`` beside it, and returns the data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from aelab.config import CompareConfig, load_yaml
from aelab.data import ImageDataset, load_dataset
from aelab.errors import AelabError
from aelab.evaluation import analysis as A
from aelab.evaluation.pca import pca_baseline
from aelab.evaluation.probes import probe_table
from aelab.figures import analysis as F
from aelab.figures import save_figure
from aelab.figures.report import safe_name
from aelab.models import AutoEncoder, build_model
from aelab.training import load_checkpoint


@dataclass
class Run:
    """A finished run folder: its config, its dataset (re-loaded with the run's seed) and its models."""

    run_dir: Path
    config: CompareConfig
    dataset: ImageDataset
    models: dict[str, AutoEncoder]

    @property
    def analysis_dir(self) -> Path:
        path = self.run_dir / "analysis"
        path.mkdir(exist_ok=True)
        return path

    def model(self, label: str | None) -> tuple[str, AutoEncoder]:
        """The model called ``label`` (the only one, or the first, when None)."""
        if label is None:
            return next(iter(self.models.items()))
        if label not in self.models:
            raise AelabError(f"run {self.run_dir.name!r} has no model {label!r}; allowed: {', '.join(self.models)}")
        return label, self.models[label]


def open_run(run_dir: Path | str, device: str = "cpu") -> Run:
    """Load a run folder written by ``aelab compare``/``train``.

    Raises:
        AelabError: not a run folder, or no trained model (``model.pt``) in it.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise AelabError(f"{str(run_dir)!r} is not an aelab run folder (no config.yaml); give a folder written by "
                         "'aelab compare' or 'aelab train'")
    config = load_yaml(run_dir / "config.yaml", CompareConfig)
    dataset = load_dataset(config.data, seed=config.seed)
    models, missing = {}, []
    for model_cfg in config.models:
        label = model_cfg.label
        weights = run_dir / safe_name(label) / "model.pt"
        if not weights.is_file():
            missing.append(label)
            continue
        model = build_model(model_cfg, dataset.shape)
        model.load_state_dict(load_checkpoint(weights)["model"])
        models[label] = model.to(device).eval()
    if not models:
        raise AelabError(f"run folder {str(run_dir)!r} has no trained model checkpoint (model.pt) for "
                         f"{', '.join(missing)}; finish the run (aelab compare --name {run_dir.name} --resume)")
    return Run(run_dir, config, dataset, models)


def _save(run: Run, fig, kind: str, label: str, data=None) -> Path:
    path = save_figure(fig, run.analysis_dir / f"{kind}_{safe_name(label)}.png")
    if data is not None:
        path.with_suffix(".json").write_text(json.dumps(data, indent=2))
    return path


def run_interpolation(run: Run, label: str | None = None, from_: str | None = None, to: str | None = None,
                      index_from: int | None = None, index_to: int | None = None, steps: int = 10,
                      seed: int = 0) -> tuple[A.Interpolation, Path]:
    """Interpolate between two test images given by index, or by class (a random example of each, seeded)."""
    label, model = run.model(label)
    test = run.dataset.test
    if index_from is None:
        index_from = A.pick_of_class(test, A.resolve_class(run.dataset, from_ if from_ is not None else 0), seed)
    if index_to is None:
        index_to = A.pick_of_class(test, A.resolve_class(run.dataset, to if to is not None else 1), seed + 1)
    interp = A.interpolate(model, test, index_from, index_to, steps)
    names = run.dataset.class_names
    title = (f"{label}: {names[int(test.labels[index_from])]} (#{index_from}) -> "
             f"{names[int(test.labels[index_to])]} (#{index_to})")
    return interp, _save(run, F.interpolation_figure(interp, title), "interpolation", label,
                         {"index_from": index_from, "index_to": index_to, "steps": steps})


def run_latent_map(run: Run, label: str | None = None, method: str = "auto", n: int = 5000,
                   seed: int = 0) -> tuple[A.LatentMap, Path]:
    label, model = run.model(label)
    lm = A.latent_map(model, run.dataset.test, method, n, seed)
    return lm, _save(run, F.latent_map_figure(lm, run.dataset.class_names, f"{label}: latent map ({lm.method})"),
                     "latent_map", label)


def run_code_heatmap(run: Run, label: str | None = None, n: int = 512) -> tuple[A.CodeHeatmap, Path]:
    label, model = run.model(label)
    h = A.code_heatmap(model, run.dataset.test, n)
    return h, _save(run, F.code_heatmap_figure(h, f"{label}: codes of {len(h.codes)} test images"), "code_heatmap",
                    label, {"dead_units": int(h.dead.sum()), "units": int(h.codes.shape[1])})


def run_feature_dictionary(run: Run, label: str | None = None, amplitude: float = 1.0) -> tuple[torch.Tensor, Path]:
    label, model = run.model(label)
    tiles = A.feature_dictionary(model, amplitude)
    return tiles, _save(run, F.feature_dictionary_figure(tiles, f"{label}: feature dictionary (amplitude {amplitude})"),
                        "feature_dictionary", label)


def run_failures(run: Run, label: str | None = None, k: int = 8) -> tuple[A.Failures, Path]:
    label, model = run.model(label)
    f = A.failures(model, run.dataset, k)
    data = {"per_class": [{"class": n, "images": c, "mse": m} for n, c, m in f.per_class],
            "worst": [{"index": i, "mse": m} for i, m in zip(f.worst, f.worst_mse)]}
    return f, _save(run, F.failures_figure(f, f"{label}: per-class test MSE and the {k} worst reconstructions"),
                    "failures", label, data)


def run_compression(run: Run, label: str | None = None) -> tuple[list[dict], Path]:
    label, model = run.model(label)
    rows = A.compression(model, run.dataset)
    return rows, _save(run, F.compression_figure(rows, f"{label}: compression"), "compression", label, rows)


def run_pca(run: Run) -> list[dict]:
    """PCA baselines at every code size of the run's models that PCA can fit (at most min(training images,
    pixels) components); written to ``analysis/pca.json``."""
    limit = min(len(run.dataset.train), run.dataset.train.images[0].numel())
    sizes = sorted({m.code_size for m in run.models.values() if m.code_size <= limit})  # PCA can't fit larger
    rows = [pca_baseline(run.dataset.train, run.dataset.test, d, seed=run.config.seed) for d in sizes]
    (run.analysis_dir / "pca.json").write_text(json.dumps(rows, indent=2))
    return rows


def run_probes(run: Run, label: str | None = None, labels_per_class: list[int | None] = (10, 100, None),
               seed: int = 0) -> tuple[list[dict], Path]:
    label, model = run.model(label)
    rows = probe_table(model, run.dataset, list(labels_per_class), seed)
    return rows, _save(run, F.probes_figure(rows, f"{label}: frozen-encoder probes vs classifiers from scratch"),
                       "probes", label, rows)


def run_all(run: Run, probe_labels: list[int | None] = (10, 100), log=print, pca: bool = True) -> None:
    """Every analysis that applies, for every model of the run (used by the report)."""
    if pca:
        run_pca(run)
    has_labels = len(set(run.dataset.test.labels.tolist())) > 1
    for label in run.models:
        log(f"analysing {label}")
        if has_labels:
            run_interpolation(run, label)
            run_latent_map(run, label, "auto", n=2000)
        else:
            run_interpolation(run, label, index_from=0, index_to=min(1, len(run.dataset.test) - 1))
        run_code_heatmap(run, label)
        run_feature_dictionary(run, label)
        run_failures(run, label)
        run_compression(run, label)
        if has_labels:
            counts = torch.bincount(run.dataset.train.labels)
            smallest = int(counts[counts > 0].min())
            usable = [n for n in probe_labels if n is None or n <= smallest]
            if usable:
                run_probes(run, label, usable)
