"""``aelab compare`` (and ``aelab train``, its one-model case): train several models on the same data
with the same settings, evaluate them on the test set, and write a run folder::

    runs/<name>/
      config.yaml                 the full resolved config (re-run it with --config)
      metrics.json                one row per model + the mean-image baseline
      loss_curves.png             train/validation loss of all models
      reconstructions_epoch_010.png ...   originals / model 1 / model 2 ... at each logged epoch
      report.html                 everything above in one self-contained page
      <model>/checkpoint.pt       last epoch's weights, optimizer and RNG state (for --resume)
      <model>/model.pt            final weights (state dict)
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

import torch

from aelab.config import CompareConfig, dump_yaml
from aelab.data import ImageDataset, load_dataset
from aelab.errors import AelabError
from aelab.evaluation import code_sparsity, denoising_metrics, encode_split, evaluate, mean_image_mse
from aelab.figures import layerwise_curves, loss_curves, reconstruction_grid, save_figure
from aelab.experiments.inspect import Run, run_all, run_pca
from aelab.figures.report import safe_name, write_report
from aelab.models import AutoEncoder, build_model
from aelab.training import TrainResult, train
from aelab.training.layerwise import train_layerwise
from aelab.training.checkpoint import save_checkpoint

LOSS_NAMES = {"mse": "MSE per pixel", "mse_sum": "squared error per image", "bce": "BCE per pixel"}


@dataclass
class ModelResult:
    """One trained model: its metrics row and training result."""

    label: str
    metrics: dict
    result: TrainResult


@dataclass
class CompareResult:
    """What ``compare`` produced."""

    run_dir: Path
    config: CompareConfig
    dataset: ImageDataset
    models: list[ModelResult] = field(default_factory=list)
    baseline_mse: float = float("nan")
    pca_rows: list[dict] = field(default_factory=list)
    """PCA baselines at the models' code sizes (test MSE, PSNR)."""

    @property
    def rows(self) -> list[dict]:
        return [m.metrics for m in self.models]


def new_run_dir(root: Path | str, name: str | None, resume: bool) -> Path:
    """The run folder for ``name`` under ``root``.

    A fresh run never reuses a folder that exists (finished results are never overwritten): ``name``
    gets a ``-2``, ``-3``... suffix. With ``resume`` the named folder is used as it is.

    Raises:
        AelabError: ``resume`` without a name, or with a folder that doesn't exist.
    """
    root = Path(root)
    if resume:
        if not name:
            raise AelabError("--resume needs --name: the run folder to continue")
        path = root / name
        if not path.is_dir():
            raise AelabError(f"--resume: run folder {str(path)!r} does not exist; runs there: "
                             f"{', '.join(sorted(p.name for p in root.glob('*') if p.is_dir())) or 'none'}")
        return path
    name = name or datetime.now().strftime("compare-%Y%m%d-%H%M%S")
    path, i = root / name, 2
    while path.exists():
        path, i = root / f"{name}-{i}", i + 1
    return path


def _labels(config: CompareConfig) -> list[str]:
    labels = [m.label for m in config.models]
    if len(set(labels)) != len(labels):
        raise AelabError(f"models: the names {labels} repeat; give each model a distinct 'name'")
    return labels


def compare(config: CompareConfig | None = None, runs_root: Path | str = "runs", resume: bool = False,
            progress: bool = True, log: Callable[[str], None] = print, analyses: bool = True,
            run_dir: Path | str | None = None, on_epoch=None) -> CompareResult:
    """Train and evaluate every model of ``config`` on the same data; write the run folder.

    Everything that can be refused (unknown dataset, a model that does not fit the data, repeated names)
    is refused before the run folder is created.

    Args:
        config: dataset, models, training settings and seed (default: linear-3 vs conv-64 on Fashion-MNIST
            with the Covalent tutorial's settings).
        runs_root: parent folder of the run folder.
        resume: continue the run ``config.name`` from its models' last checkpoints (finished models
            are not trained again).
        progress: show progress bars.
        log: where to send one-line status messages.
        analyses: also run the analyses (interpolation, latent map, ..., PCA baseline, probes) for the report.
        run_dir: use exactly this folder (created if missing; with ``resume``, models continue from the
            checkpoints in it and finished models are not trained again). Used by experiments.
        on_epoch: passed to :func:`aelab.training.train` (e.g. TensorBoard logging).

    Returns:
        :class:`CompareResult` with the metrics row of every model.
    """
    config = config or CompareConfig()
    labels = _labels(config)
    dataset = load_dataset(config.data, seed=config.seed)
    for model_cfg in config.models:  # refuse misfits before training anything
        build_model(model_cfg, dataset.shape)
    run_dir = Path(run_dir) if run_dir is not None else new_run_dir(runs_root, config.name, resume)
    run_dir.mkdir(parents=True, exist_ok=True)
    dump = dump_yaml(config.model_copy(update={"name": run_dir.name}))
    (run_dir / "config.yaml").write_text(dump)
    log(f"{dataset.summary()}")
    log(f"run folder: {run_dir}")

    out = CompareResult(run_dir=run_dir, config=config, dataset=dataset,
                        baseline_mse=mean_image_mse(dataset.train, dataset.test))
    for label, model_cfg in zip(labels, config.models):
        torch.manual_seed(config.seed)
        model = build_model(model_cfg, dataset.shape)
        model_dir = run_dir / safe_name(label)
        stages = None
        if config.training.layerwise_epochs:
            stages = train_layerwise(model, dataset, config.training, seed=config.seed, run_dir=model_dir,
                                     resume=resume, progress=progress, on_epoch=on_epoch).stages
            result = stages[-1]
        else:
            result = train(model, dataset, config.training, seed=config.seed, run_dir=model_dir, resume=resume,
                           progress=progress, on_epoch=on_epoch)
        save_checkpoint({"model": model.state_dict()}, model_dir / "model.pt")
        metrics = _metrics_row(label, model, result, dataset, config.training.eval_batch_size)
        if stages is not None:
            metrics["layerwise_final_loss"] = [s.history.train_loss[-1] for s in stages]
            save_figure(layerwise_curves([s.history for s in stages], label), run_dir / f"layerwise_{safe_name(label)}.png")
        if config.training.corruption is not None:
            den, examples = denoising_metrics(model, dataset.test, config.training.corruption, seed=config.seed)
            metrics.update(den)
            save_figure(reconstruction_grid(examples[0], {"corrupted": examples[1], "denoised": examples[2]},
                                            title=f"{label}: denoising ({_corruption_label(config.training.corruption)})"),
                        run_dir / f"denoising_{safe_name(label)}.png")
        (model_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        out.models.append(ModelResult(label, metrics, result))
        log(f"{label}: test MSE {metrics['test_mse']:.5f}, PSNR {metrics['test_psnr']:.2f} dB, "
            f"SSIM {metrics['test_ssim']:.4f} ({metrics['train_seconds']:.1f} s, "
            f"{metrics['images_per_second']:,.0f} images/s)")

    _write_outputs(out)
    run = Run(run_dir, config, dataset, {m.label: m.result.model for m in out.models})
    out.pca_rows = run_pca(run)
    if analyses:
        run_all(run, log=log, pca=False)
    write_report(run_dir)
    return out


def _corruption_label(c) -> str:
    return f"gaussian std {c.std}" if c.kind == "gaussian" else f"{c.kind} {c.fraction:g}"


def _metrics_row(label: str, model: AutoEncoder, result: TrainResult, dataset: ImageDataset, batch: int) -> dict:
    test = evaluate(model, dataset.test, batch_size=batch)
    codes = code_sparsity(encode_split(model, dataset.test, batch))
    h = result.history
    return {
        "code_l0": codes["l0"], "dead_units": codes["dead_units"], "code_mean_abs": codes["mean_abs"],
        "model": label, "parameters": model.num_parameters(), "code_size": model.code_size,
        "code_shape": list(model.code_shape), "compression_ratio": model.compression_ratio,
        "test_mse": test["mse"], "test_psnr": test["psnr"], "test_ssim": test["ssim"], "test_images": test["images"],
        "final_train_loss": h.train_loss[-1], "final_val_loss": h.val_loss[-1],
        "epochs": result.epochs, "train_seconds": result.train_seconds,
        "images_per_second": result.images_per_second, "device": result.device,
    }


def _write_outputs(out: CompareResult) -> None:
    run_dir = out.run_dir
    metrics = {"dataset": out.dataset.name, "summary": f"{out.dataset.summary()}; trained on "
               f"{out.models[0].result.device}, {time.strftime('%Y-%m-%d %H:%M')}.",
               "baseline_mean_image_mse": out.baseline_mse, "models": out.rows,
               "finished": datetime.now().isoformat(timespec="seconds")}
    tmp = run_dir / ".metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2))
    os.replace(tmp, run_dir / "metrics.json")
    histories = {m.label: m.result.history for m in out.models}
    save_figure(loss_curves(histories, LOSS_NAMES[out.config.training.loss]), run_dir / "loss_curves.png")
    first = out.models[0].result.history
    for epoch in sorted(first.snapshots):
        rows = {m.label: m.result.history.snapshots[epoch] for m in out.models if epoch in m.result.history.snapshots}
        fig = reconstruction_grid(first.snapshot_originals, rows, title=f"Epoch {epoch}")
        save_figure(fig, run_dir / f"reconstructions_epoch_{epoch:03d}.png")
