"""An experiment is a set of runs: resolved from one :class:`~aelab.config.ExperimentConfig`, recorded in the
one run store, executed by one executor, and reported by one report over its runs.

::

    resolve (spec.py) -> refuse what cannot run (before anything is written) -> store: experiment + runs
    -> execute the runs not done yet (engine.execute_run: inline, local processes or Ray)
    -> the experiment folder: comparison table with PCA and mean-image baselines, loss curves of all runs,
       reconstructions per run at each logged epoch, report.html with every run's analyses

``aelab compare`` is an experiment of its ``models``, ``aelab train`` one of one run, ``aelab run FILE`` any
file. Re-running the same experiment skips finished runs and resumes cut ones from their checkpoints.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from aelab.config import (ANOMALY_PRESET, COMPARE_PRESETS, FRONTIER_CODE_SIZES, PRESET_RECIPES, ExperimentConfig,
                          ModelConfig, RunConfig, dump_yaml)
from aelab.errors import AelabError, ConfigError
from aelab.experiments.engine import build_checked, dataset_for, execute_run
from aelab.experiments.folders import ExperimentFolder, RunFolder, store_path
from aelab.experiments.spec import ResolvedRun, experiment_name, load_experiment_file, resolve
from aelab.experiments.store import RunStore
from aelab.io import atomic_write_text

EXECUTORS = ("inline", "local", "ray")
LOSS_NAMES = {"mse": "MSE per pixel", "mse_sum": "squared error per image", "bce": "BCE per pixel",
              "l1": "absolute error per pixel"}
FAMILIES = {"aelab": "aelab presets", "tutorial": "tutorial presets"}


@dataclass
class ExperimentResult:
    """What an experiment produced (also what ``aelab compare`` prints)."""

    name: str
    folder: ExperimentFolder
    records: list[dict]
    """The store's records of its runs, in order (status, metrics, error, folder, ...)."""
    rows: list[dict] = field(default_factory=list)
    """Metrics rows of the finished runs."""
    baselines: list[dict] = field(default_factory=list)
    """PCA rows at the runs' code sizes, then the mean-image row(s)."""
    summary: str = ""

    @property
    def mean_roc_auc(self) -> float | None:
        """Mean ROC-AUC of the finished one-class runs (``aelab anomaly``), or None when no run has one."""
        aucs = [row["roc_auc"] for row in self.rows if "roc_auc" in row]
        return sum(aucs) / len(aucs) if aucs else None

    @property
    def run_dirs(self) -> list[Path]:
        return [self.folder.path.parent / r["folder"] for r in self.records]


def run_experiment(experiment: ExperimentConfig | Path | str | None = None, overrides: dict[str, Any] | None = None,
                   runs_dir: Path | str = "runs", executor: str = "inline", workers: int | None = None,
                   address: str | None = None, retry_failed: bool = False, tensorboard: bool = False,
                   analyses: bool = True, progress: bool = False, log: Callable[[str], None] = print,
                   on_epoch=None, kind: str = "experiment") -> ExperimentResult:
    """Run every run of ``experiment`` that is not done yet, then write the experiment's table and report.

    Args:
        experiment: an :class:`ExperimentConfig`, or the path of its YAML file (default: the tutorial's compare).
        overrides: dotted keys -> values applied to every run last (``{"training.epochs": 2}``).
        runs_dir: the runs folder (store ``aelab.sqlite``, experiment folders, run folders).
        executor: ``inline`` (this process, one run after another), ``local`` (one process per run, ``workers``
            at a time, CPU threads divided among them) or ``ray`` (Ray tasks; ``address`` of a cluster).
        retry_failed: run failed runs again.
        tensorboard: TensorBoard event files in each run folder.
        analyses: run the registry's analyses on every run for the report.
        progress: progress bars (inline only).
        on_epoch: called after each epoch of each run with (epoch, history) (inline only).
        kind: names the default experiment folder (``<kind>-<hash>``) when the experiment has no name.

    Raises:
        ConfigError / ModelError / DataError: anything that cannot run is refused before anything is written.
    """
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor: got {executor!r}; allowed: {', '.join(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers: got {workers}; allowed: 1 or more")
    if isinstance(experiment, (str, Path)):
        source, experiment = str(experiment), load_experiment_file(experiment)
    else:
        source, experiment = "options", experiment or ExperimentConfig()
    experiment = experiment.model_copy(update={"set": {**experiment.set, **(overrides or {})}})
    runs = resolve(experiment, None, source)
    for run in runs:  # refuse what cannot run before anything is written
        build_checked(run.config, dataset_for(run.config))
    if executor == "ray" and address:
        _check_ray_address(address)
    root = Path(runs_dir)
    name = experiment_name(experiment, runs, kind)
    folder = ExperimentFolder.for_experiment(root, name)
    definition = dump_yaml(experiment.model_copy(update={"name": name}))
    with RunStore(store_path(root)) as store:
        known = {r.id: store.get(r.id) for r in runs}
        folders = [known[r.id]["folder"] if known[r.id] else
                   str(RunFolder.for_run(root, name, r.name, r.id).path.relative_to(root)) for r in runs]
        store.add_experiment(name, definition, runs, folders)
        status = {r["id"]: r["status"] for r in store.records(name)}
    folder.path.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder.config, definition)
    atomic_write_text(folder.members, json.dumps(folders, indent=2))
    todo = [r for r in runs if status[r.id] not in ("done", "failed") or (status[r.id] == "failed" and retry_failed)]
    log(f"experiment {name}: {len(runs)} runs, {len(runs) - len(todo)} done or failed before, {len(todo)} to run "
        f"({executor})")
    options = dict(retry_failed=retry_failed, tensorboard=tensorboard, analyses=analyses)
    if executor == "inline":
        for r in todo:
            log(f"  {r.id} {r.name}: "
                f"{execute_run(str(root), r.id, progress=progress, on_epoch=on_epoch, log=log, **options)}")
    elif executor == "local" and todo:
        _run_local(todo, root, workers, options, log)
    elif todo:
        _run_ray(todo, root, workers, address, options, log)
    with RunStore(store_path(root)) as store:
        records = store.records(name)
        result = ExperimentResult(name, folder, records)
        _write_outputs(result, runs, store, log)
    return result


def compare(config: ExperimentConfig | None = None, overrides: dict[str, Any] | None = None, **options) -> ExperimentResult:
    """``aelab compare``: train ``config.models`` (default: the Covalent tutorial's linear-3 and conv-64, 50
    epochs, batch 64, Adam 1e-3, MSE on Fashion-MNIST) on the same data and compare them on the test set.
    Options are those of :func:`run_experiment`."""
    config = config or ExperimentConfig()
    if not config.models and not config.runs and not config.grid and "model" not in config.model_fields_set:
        config = config.model_copy(update={"models": [ModelConfig(preset=p) for p in COMPARE_PRESETS]})
    return run_experiment(config, overrides, kind="compare", **options)


def anomaly(config: ExperimentConfig | None = None, normal_classes: list[int] | None = None,
            overrides: dict[str, Any] | None = None, **options) -> ExperimentResult:
    """``aelab anomaly``: the one-class benchmark. For each class c of ``normal_classes`` (default: every class of
    the dataset) train ``config.models`` (default: conv-64) on the training images of class c only, score every
    test image by its reconstruction error, and report ROC-AUC and PR-AUC of class c vs the rest (the run's
    ``roc_auc``/``pr_auc`` metrics; their mean is in the summary). Options are those of :func:`run_experiment`.

    Raises:
        DataError: a class the dataset does not have.
    """
    from aelab.data import cached_dataset

    config = config or ExperimentConfig()
    if not config.models and not config.runs and "model" not in config.model_fields_set:
        config = config.model_copy(update={"models": [ModelConfig(preset=ANOMALY_PRESET)]})
    if normal_classes is None:
        normal_classes = list(range(len(cached_dataset(config.data, config.seed).class_names)))
    grid = {**config.grid, "data.normal_classes": [[c] for c in normal_classes]}
    return run_experiment(config.model_copy(update={"grid": grid}), overrides, kind="anomaly", **options)


def frontier_models(code_sizes: list[int] | tuple[int, ...] = FRONTIER_CODE_SIZES,
                    tutorial: bool = True) -> list[ModelConfig]:
    """The models of ``aelab frontier``: aelab's ``res-<size>`` for each code size, then (``tutorial``) the
    tutorial presets for 28x28 grayscale images whose code has one of these sizes.

    Raises:
        ConfigError: a code size with no res preset (the allowed sizes are named).
    """
    from aelab.models import PRESETS, build_model

    bad = [d for d in code_sizes if f"res-{d}" not in PRESETS]
    if bad or not code_sizes:
        raise ConfigError(f"--code-sizes: got {','.join(map(str, code_sizes)) or 'nothing'}; allowed: one or more "
                          f"of {','.join(map(str, FRONTIER_CODE_SIZES))}")
    models = [ModelConfig(preset=f"res-{d}") for d in code_sizes]
    if tutorial:
        for name, preset in PRESETS.items():
            if PRESET_RECIPES[name] == "tutorial" and preset.input_shape == (1, 28, 28) \
                    and build_model(name).code_size in code_sizes:
                models.append(ModelConfig(preset=name))
    return models


def frontier(config: ExperimentConfig | None = None, code_sizes: list[int] | tuple[int, ...] = FRONTIER_CODE_SIZES,
             tutorial: bool = True, overrides: dict[str, Any] | None = None, **options) -> ExperimentResult:
    """``aelab frontier``: the rate-distortion curve. Train aelab's ``res-<size>`` presets (their own recipe) and,
    with ``tutorial``, the tutorial presets at those code sizes (the tutorials' recipe), with PCA at every size;
    the experiment folder gets ``rate_distortion.png`` (test MSE and PSNR vs code size per family) and the
    table. Options are those of :func:`run_experiment`.

    Raises:
        ConfigError: a code size without a res preset.
    """
    config = config or ExperimentConfig()
    models = frontier_models(code_sizes, tutorial)
    return run_experiment(config.model_copy(update={"models": [*models, *config.models]}), overrides,
                          kind="frontier", **options)


def family(config: RunConfig) -> str:
    """The line a run belongs to in the rate-distortion figure: VAEs, VQ-VAEs (code size: indices per image),
    aelab presets, tutorial presets or your models."""
    from aelab.models.build import generative_settings

    variational, quantizer = generative_settings(config.model)
    if variational is not None:
        return "VAEs (posterior mean)"
    if quantizer is not None:
        return "VQ-VAEs (code size = indices)"
    if config.model.preset is None:
        return "your models"
    return FAMILIES[PRESET_RECIPES[config.model.preset]]


def load_experiment(name: str, runs_dir: Path | str = "runs") -> list[dict]:
    """The run records of experiment ``name`` in the store of ``runs_dir``.

    Raises:
        AelabError: no such experiment.
    """
    path = store_path(runs_dir)
    if not path.is_file():
        raise AelabError(f"no run store at {str(path)!r}")
    with RunStore(path) as store:
        if name not in store.experiments():
            raise AelabError(f"no experiment {name!r} in {str(path)!r}; there: {', '.join(store.experiments())}")
        return store.records(name)


# ------------------------------------------------------------------------------------------- executors
def _run_local(todo: list[ResolvedRun], root: Path, workers: int | None, options: dict, log) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    cores = os.cpu_count() or 1
    n = max(1, min(workers or cores, len(todo)))
    threads = max(1, cores // n)
    with ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(execute_run, str(root), r.id, threads=threads, **options): r for r in todo}
        for fut, r in futures.items():
            log(f"  {r.id} {r.name}: {fut.result()}")


def _check_ray_address(address: str) -> None:
    import socket

    if address in ("auto", "local"):
        return
    host, _, port = address.replace("ray://", "").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=3):
            return
    except (OSError, ValueError) as exc:
        raise AelabError(f"--address: the Ray cluster at {address!r} does not answer ({exc}); start it with "
                         "'ray start --head' or leave --address out for a local Ray") from None


def _run_ray(todo: list[ResolvedRun], root: Path, workers: int | None, address: str | None, options: dict,
             log) -> None:
    try:
        import ray
    except ImportError:
        raise AelabError("the Ray executor needs Ray: pip install 'aelab[ray]'") from None
    import torch

    started_here = not ray.is_initialized()
    if started_here:
        kwargs = {"address": address} if address else {"num_cpus": workers or os.cpu_count() or 1}
        ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
    try:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)) // max(1, min(len(todo), workers or len(todo))))
        gpus = (1.0 / len(todo)) if torch.cuda.is_available() else 0
        task = ray.remote(num_cpus=cpus, num_gpus=gpus)(execute_run)
        refs = {task.remote(str(root), r.id, threads=cpus, **options): r for r in todo}
        for ref, r in refs.items():
            log(f"  {r.id} {r.name}: {ray.get(ref)}")
    finally:
        if started_here:
            ray.shutdown()


# ------------------------------------------------------------------------------------------ the report
def _by_split(runs: list[ResolvedRun]) -> dict[str, list[ResolvedRun]]:
    """Runs grouped by the images and splits they see (data config and seed), in order."""
    groups: dict[str, list[ResolvedRun]] = {}
    for r in runs:
        groups.setdefault(r.config.data.split_key(r.config.seed), []).append(r)
    return groups


def _baselines(runs: list[ResolvedRun], rows_by_id: dict[str, dict], store: RunStore) -> list[dict]:
    """PCA at every code size of the finished runs of each dataset, then the mean-image row of each dataset
    (cached in the store: a dataset's baselines are computed once)."""
    import hashlib

    groups = _by_split(runs)
    pca_rows, mean_rows = [], []
    for key, members in groups.items():
        done = [rows_by_id[r.id] for r in members if r.id in rows_by_id]
        if not done:
            continue
        suffix = f", {members[0].config.data.name} seed {members[0].config.seed}" if len(groups) > 1 else ""
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        dataset = None
        sizes = sorted({row["code_size"] for row in done})
        for d in sizes:
            row = store.cached(f"pca/{digest}/{d}")
            if row is None:
                from aelab.evaluation.pca import pca_baseline

                dataset = dataset or dataset_for(members[0].config)
                if d > min(len(dataset.train), dataset.train.images[0].numel()):
                    continue  # PCA cannot have more components than images or pixels
                row = pca_baseline(dataset.train, dataset.test, d, seed=members[0].config.seed)
                store.cache(f"pca/{digest}/{d}", row)
            pca_rows.append({**row, "model": row["model"] + suffix})
        mse = store.cached(f"mean-image/{digest}")
        if mse is None:
            from aelab.evaluation import mean_image_mse

            dataset = dataset or dataset_for(members[0].config)
            mse = mean_image_mse(dataset.train, dataset.test)
            store.cache(f"mean-image/{digest}", mse)
        mean_rows.append({"model": "mean image (baseline)" + suffix, "test_mse": mse, "baseline": True})
    return pca_rows + mean_rows


def _rate_distortion(result: ExperimentResult, done: list[ResolvedRun], rows_by_id: dict[str, dict]) -> Path | None:
    """Draw ``rate_distortion.png`` when the finished runs have two or more code sizes: per family the best run at
    each size, and PCA; None (and no figure) otherwise."""
    from aelab.figures import rate_distortion, save_figure

    if len({rows_by_id[r.id]["code_size"] for r in done}) < 2:
        return None
    families: dict[str, dict[int, dict]] = {}
    for r in done:
        row, best = rows_by_id[r.id], families.setdefault(family(r.config), {})
        if row["code_size"] not in best or row["test_mse"] < best[row["code_size"]]["test_mse"]:
            best[row["code_size"]] = row
    pca = [row for row in result.baselines if str(row.get("model", "")).startswith("PCA")]
    lines = {"PCA": pca} if pca else {}
    lines.update({name: list(best.values()) for name, best in families.items()})
    return save_figure(rate_distortion(lines), result.folder.rate_distortion)


def _loss_unit(config: RunConfig) -> str:
    """What a run's training loss measures: a VAE's negative log-likelihood in nats, else the config's loss."""
    from aelab.models.build import generative_settings

    if generative_settings(config.model)[0] is not None:
        return "-log p(x|z), nats per image"
    return LOSS_NAMES[config.training.loss]


def _write_outputs(result: ExperimentResult, runs: list[ResolvedRun], store: RunStore, log) -> None:
    from aelab.figures import loss_curves, reconstruction_grid, save_figure
    from aelab.figures.analyses import ANALYSES
    from aelab.figures.report import RunSection, write_report
    import torch

    from aelab.training import History, load_checkpoint

    root = result.folder.path.parent
    by_id = {r["id"]: r for r in result.records}
    done = [r for r in runs if by_id[r.id]["status"] == "done"]
    rows_by_id = {r.id: by_id[r.id]["metrics"] for r in done}
    result.rows = [rows_by_id[r.id] for r in done]
    result.baselines = _baselines(runs, rows_by_id, store) if done else []
    devices = sorted({row["device"] for row in result.rows})
    data_names = sorted({r.config.data.name for r in runs})
    result.summary = (f"{len(runs)} runs ({len(done)} finished) on {', '.join(data_names)}; test set "
                      f"{', '.join(sorted({str(row['test_images']) for row in result.rows}))} images; "
                      f"trained on {', '.join(devices) or '-'}.")
    if any(r.config.data.name == "array" for r in runs):
        skipped = ", ".join(a.name for a in ANALYSES if a.images_only)
        result.summary += f" Vector data: no PSNR/SSIM and no image analyses ({skipped})."
    if result.mean_roc_auc is not None:
        result.summary += (f" Anomaly detection (one-class training): mean ROC-AUC {result.mean_roc_auc:.4f} over "
                           f"{sum('roc_auc' in row for row in result.rows)} runs.")
    metrics = {"experiment": result.name, "summary": result.summary, "runs": result.rows,
               "baselines": result.baselines,
               "failed": [{"id": r["id"], "name": r["name"], "error": r["error"]} for r in result.records
                          if r["status"] == "failed"]}
    atomic_write_text(result.folder.metrics, json.dumps(metrics, indent=2))
    folders = {r.id: RunFolder(root / by_id[r.id]["folder"]) for r in runs}
    histories = {}
    for r in done:
        if folders[r.id].history.is_file():
            histories[r.id] = History.from_state(load_checkpoint(folders[r.id].history)["history"])
    figures = []  # only what this call wrote: a figure left from an earlier definition of the experiment is not shown
    if histories:
        loss = {r.name: histories[r.id] for r in done if r.id in histories}
        figures.append(save_figure(loss_curves(loss, LOSS_NAMES[done[0].config.training.loss],
                                               {r.name: _loss_unit(r.config) for r in done}),
                                   result.folder.loss_curves))
    groups = _by_split([r for r in done if r.id in histories and
                        histories[r.id].snapshot_originals.dtype == torch.uint8])  # vector data has no pictures
    for g, members in enumerate(groups.values()):
        group = "" if len(groups) == 1 else f"{members[0].config.data.name}-{g + 1}"
        first = histories[members[0].id]
        for epoch in sorted({e for r in members for e in histories[r.id].snapshots}):
            rows = {r.name: histories[r.id].snapshots[epoch] for r in members if epoch in histories[r.id].snapshots}
            figures.append(save_figure(reconstruction_grid(first.snapshot_originals, rows, title=f"Epoch {epoch}"),
                                       result.folder.reconstructions(epoch, group)))
    rd_figure = _rate_distortion(result, done, rows_by_id)
    sections = []
    for r in done:
        f = folders[r.id]
        own = [(heading, f.figure(stem)) for stem, heading in (("layerwise", "Greedy layer-wise pretraining"),
                                                               ("denoising", "Denoising"))]
        analyses = [(a, f.analysis(a.name), f.analysis(a.name, ".json")) for a in ANALYSES if a.in_report]
        sections.append(RunSection(r.name, r.id, str(f.path.relative_to(root)), own, analyses))
    compression = []  # each run's stored code: the 8-bit row, or a VQ-VAE's index grid
    for r in done:
        path = folders[r.id].analysis("compression", ".json")
        if path.is_file():
            compression += [{"model": r.name, **row} for row in json.loads(path.read_text())
                            if row["storage"] not in ("float32", "float16")]
    write_report(result.folder.report, f"aelab report: {result.name}", result.summary, result.rows,
                 result.baselines, metrics["failed"], figures[:1] if histories else [],
                 figures[1:] if histories else figures, sections, result.folder.config.read_text(), rd_figure,
                 compression)
    log(f"wrote {result.folder.path}/ : metrics.json, loss_curves.png, reconstructions_epoch_*.png, report.html")
