"""The run engine: one run = one :class:`~aelab.config.RunConfig`, one id, one :class:`RunFolder`.

:func:`execute_run` is the only way aelab trains a run, whoever calls it (``aelab compare``, ``train``,
``run``; in this process, in a local worker process, or in a Ray task)::

    claim in the store -> load data -> build model -> train (resumes from checkpoint.pt) -> evaluate
    -> save model/ metrics.json history.pt (+ layer-wise / denoising figures) -> analyses -> store: done

A run that raises is recorded as failed with its error, and the others go on.
"""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path
from typing import Callable

from aelab.config import RunConfig, dump_yaml
from aelab.errors import AelabError
from aelab.experiments.folders import RunFolder, store_path
from aelab.experiments.store import RunStore
from aelab.io import atomic_write_text

def dataset_for(config: RunConfig):
    """The run's dataset, loaded once per process for each (data config, seed)."""
    from aelab.data import cached_dataset

    return cached_dataset(config.data, config.seed)


def build_checked(config: RunConfig, dataset):
    """Build the run's model (seeded) and refuse what training would refuse, before anything is written.

    Raises:
        ModelError / ConfigError / AelabError: see :func:`aelab.training.trainer.check_trainable`.
    """
    import torch

    from aelab.models import build_model
    from aelab.training.trainer import check_trainable

    torch.manual_seed(config.seed)
    labelled = dataset.labelled or dataset.normal_classes is not None
    model = build_model(config.model, dataset.shape, vectors=dataset.is_vectors,
                        classes=len(dataset.class_names) if labelled else 1)
    model.standardization = dataset.standardization
    check_trainable(model, dataset, config.training)
    return model


def train_run(config: RunConfig, folder: RunFolder, progress: bool = False, on_epoch=None,
              analyses: bool = True, log: Callable[[str], None] = lambda m: None) -> dict:
    """Train, evaluate and save one run into ``folder`` (resuming from its checkpoint); return its metrics row."""
    from aelab.evaluation import denoising_metrics, evaluate
    from aelab.figures import layerwise_curves, reconstruction_grid, save_figure
    from aelab.training import save_checkpoint, train
    from aelab.training.layerwise import train_layerwise

    dataset = dataset_for(config)
    model = build_checked(config, dataset)
    folder.path.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder.config, dump_yaml(config))
    label = config.label
    stages = None
    if config.training.layerwise_epochs:
        stages = train_layerwise(model, dataset, config.training, seed=config.seed, run_dir=folder.checkpoint_dir,
                                 resume=True, progress=progress, on_epoch=on_epoch).stages
        result = stages[-1]
    else:
        result = train(model, dataset, config.training, seed=config.seed, run_dir=folder.checkpoint_dir,
                       resume=True, progress=progress, on_epoch=on_epoch)
    model.save(folder.model_dir)
    save_checkpoint({"history": result.history.to_state()}, folder.history)
    test = evaluate(model, dataset.test, batch_size=config.training.eval_batch_size)
    h = result.history
    metrics = {
        "model": label, "parameters": model.num_parameters(), "code_size": model.code_size,
        "code_shape": list(model.code_shape), "compression_ratio": model.compression_ratio,
        "test_mse": test["mse"], "test_psnr": test["psnr"], "test_ssim": test["ssim"], "test_images": test["images"],
        "code_l0": test["code_l0"], "dead_units": test["dead_units"], "code_mean_abs": test["code_mean_abs"],
        "final_train_loss": h.train_loss[-1], "final_val_loss": h.val_loss[-1], "epochs": result.epochs,
        "train_seconds": result.train_seconds, "images_per_second": result.images_per_second,
        "device": result.device, "resumed_from": result.resumed_from,
    }
    if model.generative:  # a VAE's bounds and active units, a VQ-VAE's bits and codebook use
        from aelab.evaluation.generative import generative_metrics

        metrics.update(generative_metrics(model, dataset.test, seed=config.seed))
        metrics.update(code_l0=None, dead_units=None, code_mean_abs=None)  # sparsity measures: not for these
    if stages is not None:
        metrics["layerwise_final_loss"] = [s.history.train_loss[-1] for s in stages]
        save_figure(layerwise_curves([s.history for s in stages], label), folder.figure("layerwise"))
    corruption = config.training.corruption
    if corruption is not None:
        den, examples = denoising_metrics(model, dataset.test, corruption, seed=config.seed)
        metrics.update(den)
        what = f"gaussian std {corruption.std}" if corruption.kind == "gaussian" else \
            f"{corruption.kind} {corruption.fraction:g}"
        save_figure(reconstruction_grid(examples[0], {"corrupted": examples[1], "denoised": examples[2]},
                                        title=f"{label}: denoising ({what})"), folder.figure("denoising"))
    if config.data.normal_classes is not None:
        from aelab.evaluation.anomaly import separate

        r = separate(model, dataset.test, dataset.val, config.data.normal_classes)
        metrics.update({"normal": ", ".join(dataset.class_names[c] for c in config.data.normal_classes),
                        "roc_auc": r.roc_auc, "pr_auc": r.pr_auc})
    atomic_write_text(folder.metrics, json.dumps(metrics, indent=2))
    quality = "" if test["psnr"] is None else f", PSNR {test['psnr']:.2f} dB, SSIM {test['ssim']:.4f}"
    log(f"{label}: test MSE {metrics['test_mse']:.5f}{quality} ({metrics['train_seconds']:.1f} s, "
        f"{metrics['images_per_second']:,.0f} images/s)")
    if "test_nelbo" in metrics:
        log(f"{label}: test -ELBO {metrics['test_nelbo']:.2f} nats (reconstruction {metrics['test_recon_nll']:.2f} + "
            f"KL {metrics['test_kl']:.2f}); -IWAE (k={metrics['iwae_k']}) {metrics['test_iwae_nll']:.2f} vs -ELBO "
            f"{metrics['test_nelbo_subset']:.2f} on {metrics['iwae_images']} images; {metrics['active_units']} of "
            f"{metrics['latent_units']} latent units active")
    if "bits_per_image" in metrics:
        log(f"{label}: {metrics['bits_per_image']:g} bits per image, codebook perplexity {metrics['perplexity']:.1f} "
            f"of {metrics['codebook_size']}, {metrics['dead_codes']} dead codes")
    if analyses:
        from aelab.experiments.analyses import LoadedRun, run_analyses

        errors = run_analyses(LoadedRun(folder, config, dataset, model.eval()), log=log, metrics=metrics)
        if errors:  # kept with the run's record (aelab runs show ID); the run itself is done
            metrics["analysis_errors"] = errors
        atomic_write_text(folder.metrics, json.dumps(metrics, indent=2))  # with what the analyses measured
    return metrics


def execute_run(root: str, run_id: str, retry_failed: bool = False, threads: int = 0, tensorboard: bool = False,
                analyses: bool = True, progress: bool = False, on_epoch=None,
                log: Callable[[str], None] = lambda m: None) -> str:
    """Claim run ``run_id`` of the store under ``root``, run it, record done (with metrics) or failed.

    Args:
        root: the runs root (holds the store and the run's folder).
        threads: CPU threads for this run (0: leave torch's default).
        tensorboard: write TensorBoard scalars and images into the run folder.
        analyses: run every analysis of the registry on the trained model.
        on_epoch: called after each epoch with (epoch, history) (besides TensorBoard).

    Returns: 'done', 'failed' or 'skipped' (another process has it, or it is finished).
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    with RunStore(store_path(root)) as store:
        if not store.claim(run_id, retry_failed):
            return "skipped"
        record = store.get(run_id)
        config = RunConfig.model_validate(record["config"])
        folder = RunFolder(Path(root) / record["folder"])
        hooks = [h for h in (on_epoch, _tensorboard_logger(folder) if tensorboard else None) if h is not None]
        t0 = time.time()
        try:
            metrics = train_run(config, folder, progress, (lambda e, h: [f(e, h) for f in hooks]) if hooks else None,
                                analyses, log)
        except Exception as exc:  # a failed run is recorded and does not stop the others
            message = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, AelabError):
                message += " | " + traceback.format_exc(limit=3).strip().splitlines()[-2].strip()
            store.fail(run_id, message, time.time() - t0)
            return "failed"
        store.finish(run_id, metrics, time.time() - t0)
        return "done"


def _tensorboard_logger(folder: RunFolder):
    from torch.utils.tensorboard import SummaryWriter

    from aelab.data import to_unit_float

    writer = SummaryWriter(str(folder.tensorboard))

    def on_epoch(epoch: int, history) -> None:
        import torch

        writer.add_scalar("loss/train", history.train_loss[-1], epoch)
        if history.val_loss[-1] == history.val_loss[-1]:
            writer.add_scalar("loss/validation", history.val_loss[-1], epoch)
        for key, values in history.terms.items():  # a VAE's KL and beta, a VQ-VAE's codebook perplexity
            writer.add_scalar(f"terms/{key}", values[-1], epoch)
        if epoch in history.snapshots and history.snapshot_originals.dtype == torch.uint8:  # images only
            both = to_unit_float(torch.cat([history.snapshot_originals, history.snapshots[epoch]]))
            writer.add_images("reconstructions (top: originals)", both, epoch, dataformats="NCHW")
        writer.flush()

    return on_epoch
