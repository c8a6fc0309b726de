"""The run engine: one run = one :class:`~aelab.config.RunConfig`, one id, one :class:`RunFolder`.

:func:`work` is the only way aelab trains a run, whoever calls it (``aelab compare``, ``train``, ``run``; in this
process, in a local worker process, or in a Ray task on any node)::

    load data -> build model -> train (resumes from checkpoint.pt) -> evaluate
    -> save model/ metrics.json history.pt (+ layer-wise / denoising figures) -> analyses -> the result

The driver claims the run in the store before and records the result after (:mod:`.executors`); a run that
raises is returned as failed with its error, and the others go on.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aelab.config import RunConfig, dump_yaml
from aelab.errors import AelabError
from aelab.experiments.folders import RunFolder
from aelab.io import atomic_write_text

Log = Callable[[str], None]


def dataset_for(config: RunConfig):
    """The run's dataset, loaded once per process for each (data config, seed)."""
    from aelab.data import cached_dataset

    return cached_dataset(config.data, config.seed)


def build_checked(config: RunConfig, dataset):
    """Build the run's model (seeded) and refuse what training would refuse, before anything is written.

    Raises:
        ModelError / ConfigError / AelabError: see :func:`aelab.training.check_trainable`.
    """
    import torch

    from aelab.models import build_model
    from aelab.training import check_trainable

    torch.manual_seed(config.seed)
    labelled = dataset.labelled or dataset.normal_classes is not None
    model = build_model(
        config.model, dataset.shape, vectors=dataset.is_vectors, classes=len(dataset.class_names) if labelled else 1
    )
    model.standardization = dataset.standardization
    check_trainable(model, dataset, config.training)
    return model


def _fit(config: RunConfig, folder: RunFolder, model, dataset, progress: bool, callbacks: list):
    """Train (layer-wise first when asked), resuming from the folder's checkpoints; (result, stage results)."""
    from aelab.training import train
    from aelab.training.layerwise import train_layerwise

    options: dict[str, Any] = dict(
        seed=config.seed, run_dir=folder.checkpoint_dir, resume=True, progress=progress, callbacks=callbacks
    )
    if config.training.layerwise_epochs:
        stages = train_layerwise(model, dataset, config.training, **options).stages
        return stages[-1], stages
    return train(model, dataset, config.training, **options), None


def _row(config: RunConfig, model, dataset, result) -> dict:
    """The run's metrics row: identity, test reconstruction, code statistics, timing, and the family's own
    test measures (its ``test_measures`` hook)."""
    from aelab.evaluation import evaluate
    from aelab.training.distributed import world

    test = evaluate(model, dataset.test, batch_size=config.training.eval_batch_size)
    h = result.history
    row = {
        "model": config.label,
        "kind": "run",
        "family": model.family,
        "line": model.figure_line(config.model.filled()),
        "loss_unit": model.loss_unit(config.training.loss),
        "parameters": model.num_parameters(),
        "code_size": model.code_size,
        "code_shape": list(model.code_shape),
        "compression_ratio": model.compression_ratio,
        "test_mse": test["mse"],
        "test_psnr": test["psnr"],
        "test_ssim": test["ssim"],
        "test_images": test["images"],
        "code_l0": test["code_l0"],
        "dead_units": test["dead_units"],
        "code_mean_abs": test["code_mean_abs"],
        "final_train_loss": h.train_loss[-1],
        "final_val_loss": h.val_loss[-1],
        "epochs": result.epochs,
        "train_seconds": result.train_seconds,
        "images_per_second": result.images_per_second,
        "device": result.device,
        "resumed_from": result.resumed_from,
        "world_size": world()[1],
    }
    row.update(model.test_measures(dataset.test, seed=config.seed))
    return row


def _extras(config: RunConfig, folder: RunFolder, model, dataset, stages, row: dict) -> None:
    """What some trainings add to the row and the folder: layer-wise curves, denoising quality, one-class ROC."""
    from aelab.figures import layerwise_curves, reconstruction_grid, save_figure

    label = config.label
    if stages is not None:
        row["layerwise_final_loss"] = [s.history.train_loss[-1] for s in stages]
        save_figure(layerwise_curves([s.history for s in stages], label), folder.figure("layerwise"))
    corruption = config.training.corruption
    if corruption is not None:
        from aelab.evaluation import denoising_metrics

        den, examples = denoising_metrics(model, dataset.test, corruption, seed=config.seed)
        row.update(den)
        what = (
            f"gaussian std {corruption.std}"
            if corruption.kind == "gaussian"
            else f"{corruption.kind} {corruption.fraction:g}"
        )
        save_figure(
            reconstruction_grid(
                examples[0], {"corrupted": examples[1], "denoised": examples[2]}, title=f"{label}: denoising ({what})"
            ),
            folder.figure("denoising"),
        )
    if config.data.normal_classes is not None:
        from aelab.evaluation.anomaly import one_class_metrics

        row["normal"] = ", ".join(dataset.class_names[c] for c in config.data.normal_classes)
        row.update(one_class_metrics(model, dataset, config.data.normal_classes))


def _summary(row: dict) -> str:
    quality = "" if row["test_psnr"] is None else f", PSNR {row['test_psnr']:.2f} dB, SSIM {row['test_ssim']:.4f}"
    line = (
        f"{row['model']}: test MSE {row['test_mse']:.5f}{quality} ({row['train_seconds']:.1f} s, "
        f"{row['images_per_second']:,.0f} images/s)"
    )
    from aelab.models.table import family_measures

    own = [f"{m.heading} {m.format(row)}" for m in family_measures() if row.get(m.key) is not None]
    return line + (f"; {', '.join(own)}" if own else "")


def train_run(
    config: RunConfig,
    folder: RunFolder,
    progress: bool = False,
    callbacks: list | None = None,
    analyses: bool = True,
    log: Log = lambda m: None,
    samples: bool = False,
) -> dict:
    """Train, evaluate and save one run into ``folder`` (resuming from its checkpoint); return its metrics row.
    ``samples``: the generate analysis measures the sample quality whatever the model."""
    from aelab.data import preprocessing

    dataset = dataset_for(config)
    model = build_checked(config, dataset)
    folder.path.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder.config, dump_yaml(config))
    result, stages = _fit(config, folder, model, dataset, progress, list(callbacks or []))
    prep = (
        None
        if dataset.is_vectors
        else preprocessing(dataset.shape, config.data.resize is not None, config.data.background)
    )
    model.save(folder.model_dir, prep)
    from aelab.training import save_checkpoint

    save_checkpoint({"history": result.history.to_state()}, folder.history)
    row = _row(config, model, dataset, result)
    _extras(config, folder, model, dataset, stages, row)
    atomic_write_text(folder.metrics, json.dumps(row, indent=2))
    log(_summary(row))
    if analyses:
        from aelab.analyses import analyse_all

        params = {"generate": {"quality": True}} if samples else None
        measured, errors, skipped = analyse_all(model.eval(), dataset, config.label, folder.analysis_dir, log, params)
        row.update(measured)
        row["analyses_skipped"] = skipped
        if errors:  # kept with the run's record (aelab runs show ID) and listed in the report
            row["analysis_errors"] = errors
        atomic_write_text(folder.metrics, json.dumps(row, indent=2))  # with what the analyses measured
    return row


def follow(root: str, folder: str, config: dict) -> None:
    """A follower's side of a run that several processes train together (``torchrun``, rank > 0): the same
    training on its share of every batch, resumed from the same checkpoint; it writes nothing (rank 0 writes the
    run folder, evaluates and the driver records the run)."""
    run = RunConfig.model_validate(config)
    dataset = dataset_for(run)
    _fit(run, RunFolder(Path(root) / folder), build_checked(run, dataset), dataset, False, [])


def failure_message(exc: Exception) -> str:
    """A failed run's error in one line: the exception (aelab's own errors say what to do), plus where it came
    from for anything else."""
    message = f"{type(exc).__name__}: {exc}"
    if not isinstance(exc, AelabError):
        message += " | " + traceback.format_exc(limit=3).strip().splitlines()[-2].strip()
    return " ".join(message.split())


class RunsFolderNotVisible(AelabError):
    """A worker (on some node) cannot see the runs folder the driver writes to."""


def work(
    root: str,
    folder: str,
    config: dict,
    threads: int = 0,
    tensorboard: bool = False,
    analyses: bool = True,
    samples: bool = False,
    progress: bool = False,
    on_epoch: Callable[[int, Any], object] | None = None,
    log: Log = lambda m: None,
) -> dict:
    """The worker's side of a run: train it into its folder (resuming from its last checkpoint) and return what
    happened. Never opens the run store: the driver that handed out the run records the result.

    Args:
        root: the runs root, as the driver sees it (it must be the same folder here: a shared file system).
        folder: the run's folder, relative to ``root``.
        config: the run's :class:`~aelab.config.RunConfig` as a mapping.
        threads: CPU threads for this run (0: leave torch's default).
        tensorboard: write TensorBoard scalars and images into the run folder.
        analyses: run every analysis that fits the trained model, for the report.
        samples: the generate analysis measures the sample quality whatever the model.
        on_epoch: called after each epoch with (epoch, history) (besides TensorBoard).

    Returns:
        ``{"status": "done", "metrics": {...}, "seconds", "node"}`` or ``{"status": "failed", "error": "one line",
        "seconds", "node"}``.

    Raises:
        RunsFolderNotVisible: ``root`` does not exist on this node.
    """
    import socket

    import torch

    from aelab.training.callbacks import OnEpoch, TensorBoard

    if not Path(root).is_dir():
        raise RunsFolderNotVisible(
            f"the runs folder {root!r} does not exist on node {socket.gethostname()!r}; every "
            "node must see the runs folder (a shared file system, at the same path)"
        )
    if threads:
        torch.set_num_threads(threads)
    run_folder = RunFolder(Path(root) / folder)
    callbacks: list[Any] = [OnEpoch(on_epoch)] if on_epoch is not None else []
    callbacks += [TensorBoard(run_folder.tensorboard)] if tensorboard else []
    t0 = time.time()
    try:
        metrics = train_run(RunConfig.model_validate(config), run_folder, progress, callbacks, analyses, log, samples)
    except Exception as exc:  # a failed run is recorded by the driver and does not stop the others
        return {
            "status": "failed",
            "error": failure_message(exc),
            "seconds": time.time() - t0,
            "node": socket.gethostname(),
        }
    return {"status": "done", "metrics": metrics, "seconds": time.time() - t0, "node": socket.gethostname()}
