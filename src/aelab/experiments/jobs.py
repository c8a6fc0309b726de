"""An experiment is a set of runs: resolved from one :class:`~aelab.config.ExperimentConfig`, recorded in the
one run store, executed by one executor, and reported by one report over its runs.

::

    resolve (resolve.py) -> refuse what cannot run (before anything is written) -> store: experiment + runs
    -> execute the runs not done yet (executors.py: the driver claims them with leases; engine.work trains each,
       inline, in local processes or as Ray tasks)
    -> the experiment folder (outputs.py): comparison table with PCA and mean-image baselines, loss curves of
       all runs, reconstructions per run at each logged epoch, report.html with every run's analyses

``aelab compare`` is an experiment of its ``models``, ``aelab train`` one of one run, ``aelab run FILE`` any
file. Re-running the same experiment skips finished runs and resumes cut ones from their checkpoints.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from aelab.config import (
    ANOMALY_CORRUPTION,
    ANOMALY_PRESET,
    COMPARE_PRESETS,
    FRONTIER_CODE_SIZES,
    FRONTIER_GENERATIONS,
    FRONTIER_PRESETS,
    PRESETS,
    ExperimentConfig,
    ModelConfig,
    dump_yaml,
)
from aelab.errors import AelabError, ConfigError
from aelab.experiments.engine import build_checked, dataset_for
from aelab.experiments.executors import check_executor, execute, ray_session
from aelab.experiments.folders import ExperimentFolder, RunFolder, store_path
from aelab.experiments.launch import check_processes, join, launch, leave_together
from aelab.experiments.outputs import ExperimentResult, write_outputs
from aelab.experiments.resolve import ResolvedRun, experiment_name, load_experiment_file, resolve
from aelab.experiments.store import RunStore
from aelab.io import atomic_write_text

__all__ = [
    "ExperimentResult",
    "anomaly",
    "compare",
    "frontier",
    "frontier_models",
    "load_experiment",
    "open_experiment",
    "run_experiment",
]


def _preflight(runs: list[ResolvedRun], log: Callable[[str], None]) -> None:
    """Refuse what cannot run before anything is written (every run's model is built for its data), and say
    what the data loading skipped and which settings will train badly."""
    from aelab.training import training_warnings

    said: set[str] = set()
    for run in runs:
        dataset = dataset_for(run.config)
        build_checked(run.config, dataset)
        for line in dataset.notes + training_warnings(dataset, run.config.training):
            if line not in said:
                said.add(line)
                log(f"note: {line}")


def _follow(root: Path) -> ExperimentResult:
    """Rank > 0: train every run rank 0 claimed, in its order, with it."""
    from aelab.experiments.engine import follow
    from aelab.training.distributed import broadcast

    for config, folder in broadcast(None):  # type: ignore[attr-defined]
        follow(str(root), folder, config)
    leave_together()  # once rank 0 has written everything
    return ExperimentResult("", ExperimentFolder.for_experiment(root, ""), [])


def _status_line(name: str, runs: list[ResolvedRun], todo: list[ResolvedRun], executor: str) -> str:
    done = len(runs) - len(todo)
    return f"experiment {name}: {len(runs)} runs, {done} done or failed before, {len(todo)} to run ({executor})"


def _folder_of(record: dict | None) -> str | None:
    return None if record is None else record["folder"]


def _record(experiment: ExperimentConfig, runs: list[ResolvedRun], root: Path, name: str) -> dict[str, str]:
    """Write the experiment's definition to the store and its folder; the status of each run."""
    folder = ExperimentFolder.for_experiment(root, name)
    definition = dump_yaml(experiment.model_copy(update={"name": name}))
    with RunStore(store_path(root)) as store:
        known = {r.id: store.get(r.id) for r in runs}
        folders = [
            _folder_of(known[r.id]) or str(RunFolder.for_run(root, name, r.name, r.id).path.relative_to(root))
            for r in runs
        ]
        store.add_experiment(name, definition, runs, folders)
        status = {r["id"]: r["status"] for r in store.records(name)}
    folder.path.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder.config, definition)
    atomic_write_text(folder.members, json.dumps(folders, indent=2))
    return status


def _resume_lines(todo: list[ResolvedRun], root: Path) -> list[str]:
    """Which runs resume and from which epoch (their last checkpoint)."""
    from aelab.training import load_checkpoint

    out = []
    with RunStore(store_path(root)) as store:
        for r in todo:
            record = store.get(r.id)
            assert record is not None  # recorded by _record
            ckpt = RunFolder(root / record["folder"]).checkpoint
            if ckpt.is_file():
                try:
                    epoch = int(load_checkpoint(ckpt)["epoch"])
                    out.append(f"  {r.name}: resumes after epoch {epoch} of {r.config.training.epochs}")
                except (AelabError, KeyError, TypeError, ValueError):
                    out.append(f"  {r.name}: has a checkpoint that cannot be read (the run will say why)")
    return out


def _resolved(
    experiment: ExperimentConfig | Path | str | None, overrides: dict[str, Any] | None
) -> tuple[ExperimentConfig, list[ResolvedRun]]:
    """The experiment (read from its file when a path is given; with the overrides set on every run) and its runs."""
    if isinstance(experiment, (str, Path)):
        source, experiment = str(experiment), load_experiment_file(experiment)
    else:
        source, experiment = "options", experiment or ExperimentConfig()
    experiment = experiment.model_copy(update={"set": {**experiment.set, **(overrides or {})}})
    return experiment, resolve(experiment, None, source)


def run_experiment(
    experiment: ExperimentConfig | Path | str | None = None,
    overrides: dict[str, Any] | None = None,
    runs_dir: Path | str = "runs",
    executor: str = "inline",
    workers: int | None = None,
    address: str | None = None,
    retry_failed: bool = False,
    tensorboard: bool = False,
    analyses: bool = True,
    samples: bool = False,
    progress: bool = False,
    log: Callable[[str], None] = print,
    on_epoch: Callable[[int, Any], object] | None = None,
    before_training: Callable[[], object] | None = None,
    kind: str = "experiment",
    nproc_per_node: int = 1,
) -> ExperimentResult:
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
        samples: measure the sample quality of every run (not only of the models with a prior of their own).
        progress: progress bars (inline only).
        on_epoch: called after each epoch of each run with (epoch, history) (inline only).
        before_training: called once before this process trains its first run (inline only; not when every run
            is finished), e.g. the CLI's import of torch's compiler with the garbage collector paused.
        kind: names the default experiment folder (``<kind>-<hash>``) when the experiment has no name.
        nproc_per_node: train each run on this many processes of this machine (DistributedDataParallel through
            ``torch.distributed.run``, see :mod:`aelab.experiments.launch`); their output is this call's.

    Returns:
        :class:`ExperimentResult`; its ``failed`` lists the runs that failed (the others finished).

    Raises:
        ConfigError / ModelError / DataError: anything that cannot run is refused before anything is written
            (with several processes also an executor other than inline, or a batch they cannot share).
    """
    check_executor(executor, workers)
    experiment, runs = _resolved(experiment, overrides)
    root = Path(runs_dir)
    if nproc_per_node > 1 and "WORLD_SIZE" not in os.environ:  # launch the processes (not when one of them)
        flags = {"retry-failed": retry_failed, "tensorboard": tensorboard, "analysis": analyses, "samples": samples}
        return _launched(experiment, runs, overrides or {}, root, executor, nproc_per_node, flags, kind, log)
    rank = join(executor, runs)
    _preflight(runs, log if rank == 0 else lambda m: None)  # every process refuses the same bad input alike
    if rank > 0:  # a follower of a torchrun group: trains what rank 0 claims, writes nothing
        return _follow(root)
    with ray_session(address, workers, root) if executor == "ray" else nullcontext():  # joined before recording
        name, todo = _start(experiment, runs, root, kind, executor, retry_failed, log)
        options = dict(retry_failed=retry_failed, tensorboard=tensorboard, analyses=analyses, samples=samples)
        execute(executor, todo, root, options, log, workers, progress, on_epoch, before_training)
    return _written(name, runs, root, log)


def _written(name: str, runs: list[ResolvedRun], root: Path, log: Callable[[str], None]) -> ExperimentResult:
    """Write the experiment's table and report; with several processes the others leave once this one is done."""
    with RunStore(store_path(root)) as store:
        result = ExperimentResult(name, ExperimentFolder.for_experiment(root, name), store.records(name))
        write_outputs(result, runs, store, log)
    leave_together()
    return result


def _start(experiment, runs, root: Path, kind: str, executor: str, retry_failed: bool, log):
    """Record the experiment; its name and the runs to train now (the status lines logged)."""
    name = experiment_name(experiment, runs, kind)
    status = _record(experiment, runs, root, name)
    todo = [r for r in runs if status[r.id] != "done" and (status[r.id] != "failed" or retry_failed)]
    for line in [_status_line(name, runs, todo, executor), *_resume_lines(todo, root)]:
        log(line)
    return name, todo


def _launched(experiment, runs, overrides, root: Path, executor: str, size: int, flags, kind, log) -> ExperimentResult:
    """Check, then run the experiment on ``size`` processes (:mod:`aelab.experiments.launch`); what they wrote."""
    check_processes(executor, runs, size)
    _preflight(runs, log)
    name = experiment_name(experiment, runs, kind)
    launch(experiment, overrides, name, root, size, flags)
    result = open_experiment(ExperimentFolder.for_experiment(root, name).path)
    result.shown = True  # the processes printed it
    return result


def compare(
    config: ExperimentConfig | None = None, overrides: dict[str, Any] | None = None, **options
) -> ExperimentResult:
    """``aelab compare``: train ``config.models`` (default: the Covalent tutorial's linear-3 and conv-64, 50
    epochs, batch 64, Adam 1e-3, MSE on Fashion-MNIST) on the same data and compare them on the test set.
    Options are those of :func:`run_experiment`."""
    config = config or ExperimentConfig()
    if not config.models and not config.runs and not config.grid and "model" not in config.model_fields_set:
        config = config.model_copy(update={"models": [ModelConfig(preset=p) for p in COMPARE_PRESETS]})
    return run_experiment(config, overrides, kind="compare", **options)


def anomaly(
    config: ExperimentConfig | None = None,
    normal_classes: list[int] | None = None,
    overrides: dict[str, Any] | None = None,
    **options,
) -> ExperimentResult:
    """``aelab anomaly``: the one-class benchmark. For each class c of ``normal_classes`` (default: every class of
    the dataset) train ``config.models`` (default: conv-16, as a denoising autoencoder:
    :data:`aelab.config.ANOMALY_CORRUPTION` unless the config or the overrides set ``training.corruption``,
    ``null`` included) on the training images of class c only, score every test image with the product of
    RaPP's NAP and SAP (:data:`aelab.evaluation.anomaly.DEFAULT_SCORE`), and report ROC-AUC and PR-AUC of class c
    vs the rest (the run's ``roc_auc``/``pr_auc`` metrics; their mean is in the summary), with the ROC-AUC of the
    reconstruction MSE, of SAP and of NAP beside them (``roc_auc_mse``, ``roc_auc_sap``, ``roc_auc_nap``); the
    report puts them beside published results. Options are those of :func:`run_experiment`.

    Raises:
        DataError: a class the dataset does not have.
    """
    from aelab.config import CorruptionConfig
    from aelab.data import cached_dataset

    config = config or ExperimentConfig()
    if not config.models and not config.runs and "model" not in config.model_fields_set:
        config = config.model_copy(update={"models": [ModelConfig(preset=ANOMALY_PRESET)]})
    told = {**config.set, **(overrides or {})}
    if "corruption" not in config.training.model_fields_set and "training.corruption" not in told:
        corruption = CorruptionConfig.model_validate(ANOMALY_CORRUPTION)
        config = config.model_copy(update={"training": config.training.model_copy(update={"corruption": corruption})})
    if normal_classes is None:
        normal_classes = list(range(len(cached_dataset(config.data, config.seed).class_names)))
    grid = {**config.grid, "data.normal_classes": [[c] for c in normal_classes]}
    return run_experiment(config.model_copy(update={"grid": grid}), overrides, kind="anomaly", **options)


def frontier_models(
    code_sizes: list[int] | tuple[int, ...] = FRONTIER_CODE_SIZES,
    tutorial: bool = True,
    presets: str = FRONTIER_PRESETS[0],
) -> list[ModelConfig]:
    """The models of ``aelab frontier``: generation ``presets``'s preset at each code size (one of
    :data:`~aelab.config.FRONTIER_GENERATIONS`: ``res-v3``, the best at each size, or ``res-v2`` or ``res``), then
    (``tutorial``) the tutorial presets for 28x28 grayscale images whose code has one of these sizes.

    Raises:
        ConfigError: a code size with no res preset, or unknown presets (the allowed values are named).
    """
    from aelab.models import build_model

    if presets not in FRONTIER_GENERATIONS:
        raise ConfigError(f"--presets: got {presets!r}; allowed: {', '.join(FRONTIER_GENERATIONS)}")
    bad = [d for d in code_sizes if d not in FRONTIER_GENERATIONS[presets]]
    if bad or not code_sizes:
        raise ConfigError(
            f"--code-sizes: got {','.join(map(str, code_sizes)) or 'nothing'}; allowed: one or more "
            f"of {','.join(map(str, FRONTIER_CODE_SIZES))}"
        )
    models = [ModelConfig(preset=FRONTIER_GENERATIONS[presets][d]) for d in code_sizes]
    if tutorial:
        for name, preset in PRESETS.items():
            if (
                preset.recipe == "tutorial"
                and preset.input_shape == (1, 28, 28)
                and build_model(name).code_size in code_sizes
            ):
                models.append(ModelConfig(preset=name))
    return models


def frontier(
    config: ExperimentConfig | None = None,
    code_sizes: list[int] | tuple[int, ...] = FRONTIER_CODE_SIZES,
    tutorial: bool = True,
    overrides: dict[str, Any] | None = None,
    presets: str = FRONTIER_PRESETS[0],
    **options,
) -> ExperimentResult:
    """``aelab frontier``: the rate-distortion curve. Train aelab's best preset at each code size (generation
    ``res-v3``; ``presets`` ``"res-v2"`` or ``"res"``: an older one; each with its own recipe) and, with
    ``tutorial``, the tutorial presets at those code sizes (the tutorials' recipe), with PCA at every size; the
    experiment folder gets ``rate_distortion.png`` (test MSE and PSNR vs code size per family) and the table.
    Options are those of :func:`run_experiment`.

    Raises:
        ConfigError: a code size without a res preset, or unknown ``presets``.
    """
    config = config or ExperimentConfig()
    models = frontier_models(code_sizes, tutorial, presets)
    return run_experiment(
        config.model_copy(update={"models": [*models, *config.models]}), overrides, kind="frontier", **options
    )


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


def report(
    path: Path | str, analyses: bool = True, data_dir: Path | str | None = None, log: Callable[[str], None] = print
) -> ExperimentResult:
    """``aelab report``: write an experiment's table, figures and report again from what its runs saved
    (re-running every finished run's analyses first with ``analyses``; ``data_dir``: where the data is now).

    Raises:
        AelabError: not an experiment folder or a run folder of one.
    """
    from aelab.analyses import analyse_all
    from aelab.experiments.finished import open_runs

    path = Path(path)
    folder = ExperimentFolder(path.parent) if RunFolder(path).config.is_file() else ExperimentFolder(path)
    if not folder.config.is_file():
        raise AelabError(f"{str(path)!r} is not an aelab experiment or run folder (no experiment.yaml)")
    runs = resolve(load_experiment_file(folder.config), None, str(folder.config))
    if analyses:
        for run in open_runs(folder.path, with_data=False, data_dir=data_dir):
            analyse_all(run.model, run.data(), run.label, run.folder.analysis_dir, log)
    with RunStore(store_path(folder.path.parent)) as store:
        result = ExperimentResult(folder.path.name, folder, store.records(folder.path.name))
        write_outputs(result, runs, store, log)
    return result


def open_experiment(path: Path | str) -> ExperimentResult:
    """A finished experiment from its folder (or one of its run folders): its records, table, baselines and
    summary, as the command that ran it returned them; it shows itself in Jupyter.

    Raises:
        AelabError: not an experiment folder, or no run store beside it.
    """
    path = Path(path)
    folder = ExperimentFolder(path.parent) if RunFolder(path).config.is_file() else ExperimentFolder(path)
    if not folder.config.is_file() or not folder.metrics.is_file():
        raise AelabError(
            f"{str(path)!r} is not a finished aelab experiment (no experiment.yaml and metrics.json); "
            "give a folder written by 'aelab compare', 'train' or 'run'"
        )
    table = json.loads(folder.metrics.read_text())
    store = store_path(folder.path.parent)
    if not store.is_file():
        raise AelabError(f"no run store {str(store)!r} beside the experiment {str(folder.path)!r}")
    with RunStore(store) as runs:
        records = runs.records(folder.path.name)
    return ExperimentResult(folder.path.name, folder, records, table["runs"], table["baselines"], table["summary"])
