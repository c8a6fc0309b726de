"""The training loop: whole dataset on the device, no per-sample work, one host sync per epoch.

Per step: forward, loss, backward, optional gradient-norm clipping, optimizer step, learning-rate schedule
step, optional EMA update of the weights (:mod:`aelab.training.recipe`); none of them reads a value back.

Each epoch draws one random permutation (from a seeded generator) and slices it into batches that index
the uint8 image tensor already on the device; each batch is converted to float in [0, 1] there. Losses
are summed on the device and read back once per epoch. A checkpoint (weights, optimizer, schedule, EMA, epoch,
RNG states, history) is written atomically after every epoch, so a cut run resumes and ends with the same
weights as an uncut one.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from aelab.config import TrainingConfig
from aelab.data.corruption import corrupt
from aelab.data.dataset import ImageDataset, to_unit_float
from aelab.errors import AelabError, ConfigError, TrainingDivergedError
from aelab.models.autoencoder import AutoEncoder
from aelab.training.checkpoint import load_checkpoint, save_checkpoint
from aelab.training.flat import FlatParameters, can_flatten
from aelab.training.recipe import WeightEMA, make_optimizer, make_scheduler, recompute_batchnorm

EMA_BN_IMAGES = 4096
"""Training images (the first ones) on which BatchNorm statistics are recomputed for the averaged weights."""

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class History:
    """What happened per epoch. Losses are in the unit of the training loss (see ``TrainingConfig.loss``)."""

    train_loss: list[float] = field(default_factory=list)
    """Reconstruction loss (of the clean image, also when training on corrupted inputs)."""
    val_loss: list[float] = field(default_factory=list)
    train_penalty: list[float] = field(default_factory=list)
    """The sparsity penalty (L1/KL, weighted) per epoch; 0 without one. The optimized loss is the sum."""
    lr: list[float] = field(default_factory=list)
    """The learning rate of the last optimizer step of each epoch."""
    terms: dict[str, list[float]] = field(default_factory=dict)
    """The model's extra terms averaged over each epoch's training images (see ``AEOutput.terms``): a VAE's
    ``kl`` (nats per image) and ``beta``, a VQ-VAE's ``perplexity``."""
    epoch_seconds: list[float] = field(default_factory=list)
    """Seconds spent in the training steps of each epoch (no validation, snapshots or checkpoints)."""
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)
    """epoch -> uint8 reconstructions ``(S, C, H, W)`` of the fixed snapshot batch."""
    snapshot_originals: Optional[torch.Tensor] = None
    """uint8 ``(S, C, H, W)``: the fixed batch (the first test images)."""

    def to_state(self) -> dict:
        return {"train_loss": list(self.train_loss), "val_loss": list(self.val_loss),
                "train_penalty": list(self.train_penalty), "lr": list(self.lr),
                "terms": {k: list(v) for k, v in self.terms.items()},
                "epoch_seconds": list(self.epoch_seconds),
                "snapshots": {str(k): v for k, v in self.snapshots.items()},
                "snapshot_originals": self.snapshot_originals}

    @classmethod
    def from_state(cls, state: dict) -> "History":
        return cls(train_loss=list(state["train_loss"]), val_loss=list(state["val_loss"]),
                   train_penalty=list(state["train_penalty"]), lr=list(state.get("lr", [])),
                   terms={k: list(v) for k, v in state.get("terms", {}).items()},
                   epoch_seconds=list(state["epoch_seconds"]),
                   snapshots={int(k): v for k, v in state["snapshots"].items()},
                   snapshot_originals=state["snapshot_originals"])


@dataclass
class TrainResult:
    """A trained model and its history."""

    model: AutoEncoder
    history: History
    device: str
    epochs: int
    train_seconds: float
    """Seconds in training steps, summed over all epochs (including epochs done before a resume)."""
    images_per_second: float
    """Training images processed per second of training steps."""
    resumed_from: int = 0
    """Epochs already done when this call started (0 = fresh run)."""


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu. Raises ConfigError for cuda without a GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("training.device: got 'cuda' but no CUDA GPU is available; allowed here: auto, cpu")
    return torch.device(name)


def _loss_fn(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if name == "mse":
        return F.mse_loss
    if name == "mse_sum":
        return lambda out, x: (out - x).pow(2).sum() / x.shape[0]
    if name == "l1":
        return F.l1_loss
    return F.binary_cross_entropy


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu()


@torch.no_grad()
def _mean_loss(model: AutoEncoder, images: torch.Tensor, labels: torch.Tensor | None, loss_fn, batch: int,
               autocast) -> float:
    if images.shape[0] == 0:
        return float("nan")
    total = torch.zeros((), device=images.device)
    for start in range(0, images.shape[0], batch):
        xb = to_unit_float(images[start:start + batch])
        with autocast():
            out = model(xb, labels[start:start + batch]) if labels is not None else model(xb)
        total += model.reconstruction_loss(out, xb, loss_fn) * xb.shape[0]
    return float(total / images.shape[0])


def check_trainable(model: AutoEncoder, dataset: ImageDataset, config: TrainingConfig) -> None:
    """Refuse, before anything is trained or written, what :func:`train` (or layer-wise training) cannot do
    with this model, data and config.

    Raises:
        AelabError: the model's input shape is not the data's.
        ConfigError: BCE loss on a model whose output is not a sigmoid; clipped corruption of vector data;
            layer-wise training of a generative model; denoising or one-class data with a conditional model.
        ModelError: a batch too small for the model's sparsity (lifetime top-k), or layer-wise training of a
            model whose decoder does not mirror its encoder.
    """
    if tuple(dataset.shape) != tuple(model.input_shape):
        raise AelabError(f"model {model.name!r} expects images of {model.input_shape} but dataset "
                         f"{dataset.name!r} has {dataset.shape}")
    if config.loss == "bce" and not model.sigmoid_output:
        raise ConfigError(f"training.loss: 'bce' needs outputs in [0, 1] (a sigmoid output) but model "
                          f"{model.name!r} has none; allowed for it: mse, mse_sum")
    if dataset.is_vectors and config.corruption is not None and config.corruption.clip:
        raise ConfigError("training.corruption: vector data is standardized, not in [0, 1], so clipping the corrupted "
                          "input would destroy it; set training.corruption.clip=false")
    model.check_batch_size(min(config.batch_size, len(dataset.train)))
    if model.conditional and (config.corruption is not None or dataset.normal_classes is not None):
        key = "training.corruption" if config.corruption is not None else "data.normal_classes"
        raise ConfigError(f"{key}: model {model.name!r} is conditional, and aelab's denoising and anomaly measures "
                          "reconstruct images without their labels; allowed for it: null (an unconditional model "
                          "for denoising or anomaly detection)")
    if config.layerwise_epochs and model.generative:
        raise ConfigError(f"training.layerwise_epochs: model {model.name!r} is generative (VAE / VQ-VAE), and greedy "
                          "layer-wise pretraining is for deterministic autoencoders; allowed for it: null")
    if config.layerwise_epochs:
        for k in range(1, len(model.stages())):
            model.stage_model(k)


def train(model: AutoEncoder, dataset: ImageDataset, config: TrainingConfig | None = None, seed: int = 0,
          run_dir: Path | str | None = None, resume: bool = False, progress: bool = True,
          on_epoch: Callable[[int, History], None] | None = None) -> TrainResult:
    """Train ``model`` on ``dataset.train``, validating on ``dataset.val`` after each epoch.

    Args:
        model: the autoencoder; trained in place and returned in the result.
        dataset: in-memory dataset (uint8 ``(N, C, H, W)`` splits); its image shape must be the model's.
        config: optimizer, schedule, clipping, EMA, loss, epochs, batch size, device (defaults: the Covalent
            tutorial's settings: Adam lr 1e-3, constant rate, MSE, batch 64, 50 epochs). The learning-rate
            schedule steps after every optimizer step (:mod:`aelab.training.recipe`); with ``ema_decay`` the
            validation loss, the snapshots and the returned model use the averaged weights.
        seed: seeds the batch order (and dropout); with the same model init, same seed -> same result.
        run_dir: where ``checkpoint.pt`` is written after each epoch; None = no checkpoints.
        resume: continue from ``run_dir/checkpoint.pt`` when it exists.
        progress: show a progress bar.
        on_epoch: called after each epoch with (epoch, history), e.g. for logging.

    Returns:
        :class:`TrainResult`.

    Raises:
        TrainingDivergedError: the training loss became NaN/inf; the last good checkpoint is kept.
        ConfigError: bad device, or BCE loss on a model whose output is not a sigmoid.
        AelabError: ``resume`` with a checkpoint from a different model or training config.
    """
    cfg = config or TrainingConfig()
    device = resolve_device(cfg.device)
    check_trainable(model, dataset, cfg)
    use_bf16 = cfg.precision == "bf16" and device.type == "cuda"
    if cfg.precision == "bf16" and device.type != "cuda":
        warnings.warn("bf16 autocast is used on CUDA only; training in fp32 on the CPU", stacklevel=2)

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16)

    # Convolutions run fastest on oneDNN (CPU) and cuDNN (GPU) with channels-last tensors.
    memory_format = torch.channels_last if any(isinstance(m, nn.Conv2d) for m in model.modules()) \
        else torch.contiguous_format
    model.to(device=device, memory_format=memory_format)
    # The one call of a training step: reconstruction, code and penalty (compiled with --compile).
    step_model = torch.compile(model) if cfg.compile else model
    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:
        p.grad = None  # gradients left from an earlier call mean nothing here (each step starts from zero)
    # One buffer for all parameters: one optimizer kernel per step instead of per-tensor bookkeeping.
    flat = FlatParameters(trainable) if not cfg.compile and can_flatten(trainable) else None
    params = [flat.param] if flat is not None else trainable
    optimizer = make_optimizer(params, cfg)
    n = len(dataset.train)
    bs = min(cfg.batch_size, n)
    steps = math.ceil(n / bs)
    scheduler = make_scheduler(optimizer, cfg, steps)  # before the optimizer state is loaded: it sets the lr
    ema = WeightEMA(params, cfg.ema_decay) if cfg.ema_decay is not None else None
    loss_fn = _loss_fn(cfg.loss)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    history = History()
    start_epoch = 0
    ckpt_path = Path(run_dir) / CHECKPOINT_NAME if run_dir is not None else None
    signature = {"training": cfg.model_dump(mode="json", exclude={"device", "compile", "eval_batch_size"}),
                 "seed": seed, "model": repr(model), "parameters": model.num_parameters(),
                 "flat_optimizer": flat is not None}

    if resume and ckpt_path is not None and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path, map_location=device)
        if state.get("signature") != signature:
            raise AelabError(f"cannot resume from {str(ckpt_path)!r}: it was written for another model, seed or "
                             "training config; use a new run name or the same settings")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"].cpu())
        history = History.from_state(state["history"])
        start_epoch = int(state["epoch"])

    train_x = dataset.train.images.to(device)
    val_x = dataset.val.images.to(device)
    snap_src = dataset.test if len(dataset.test) else dataset.train
    snap_x = snap_src.images[: cfg.snapshot_size].to(device)
    conditional = model.conditional  # a conditional VAE sees the class labels with the images
    train_y = dataset.train.labels.to(device) if conditional else None
    val_y = dataset.val.labels.to(device) if conditional else None
    snap_y = snap_src.labels[: cfg.snapshot_size].to(device) if conditional else None
    if history.snapshot_originals is None:
        history.snapshot_originals = snap_x.cpu().clone()
    corruption = cfg.corruption
    bn_batches = [to_unit_float(train_x[i:i + cfg.eval_batch_size]).contiguous(memory_format=memory_format)
                  for i in range(0, min(n, EMA_BN_IMAGES), cfg.eval_batch_size)] if ema is not None else []

    bar = None
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False)
        task = bar.add_task(f"{model.name}", total=cfg.epochs, completed=start_epoch, info="")
        bar.start()
    try:
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            model.train()
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=generator).to(device, non_blocking=True)
            model.start_epoch(epoch, cfg.epochs)
            total = torch.zeros((), device=device)
            total_penalty = torch.zeros((), device=device)
            term_totals: dict[str, torch.Tensor] = {}
            for i in range(steps):
                idx = perm[i * bs:(i + 1) * bs]
                xb = to_unit_float(train_x.index_select(0, idx)).contiguous(memory_format=memory_format)
                x_in = corrupt(xb, corruption) if corruption is not None else xb
                with autocast():
                    out = step_model(x_in, train_y.index_select(0, idx)) if conditional else step_model(x_in)
                loss = model.reconstruction_loss(out, xb, loss_fn)
                total += loss.detach() * idx.shape[0]
                if out.penalty is not None:
                    total_penalty += out.penalty.detach() * idx.shape[0]
                    loss = loss + out.penalty
                for key, value in (out.terms or {}).items():
                    term_totals[key] = term_totals.get(key, 0) + value.detach().float() * idx.shape[0]
                optimizer.zero_grad(set_to_none=flat is None)  # a flat buffer's gradient views must stay
                loss.backward()
                if cfg.clip_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad_norm)
                lr_used = optimizer.param_groups[0]["lr"]  # a Python float: no sync
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                if ema is not None:
                    ema.update()
            term_names = list(term_totals)
            train_loss, train_penalty, *term_values = (
                float(v) for v in (torch.stack([total, total_penalty, *term_totals.values()]) / n).cpu())
            # (the one host sync of the epoch)
            history.epoch_seconds.append(time.perf_counter() - t0)
            if not (math.isfinite(train_loss) and math.isfinite(train_penalty)):
                kept = (f"the last good checkpoint (epoch {epoch - 1}) is kept at {str(ckpt_path)!r}"
                        if ckpt_path is not None and epoch > 1 else "no checkpoint was written")
                raise TrainingDivergedError(f"training of {model.name!r} diverged at epoch {epoch}: loss is "
                                            f"{train_loss}; {kept}; try a lower learning rate (--lr)")
            model.eval()
            history.train_loss.append(train_loss)
            history.train_penalty.append(train_penalty)
            history.lr.append(float(lr_used))
            for key, value in zip(term_names, term_values):
                history.terms.setdefault(key, []).append(value)
            with ema.swapped(model, bn_batches) if ema is not None else contextlib.nullcontext():  # the average
                history.val_loss.append(_mean_loss(model, val_x, val_y, loss_fn, cfg.eval_batch_size, autocast))
                if epoch % cfg.log_interval == 0 or epoch == cfg.epochs:
                    with torch.no_grad(), autocast():
                        history.snapshots[epoch] = _to_uint8(model.reconstruct(to_unit_float(snap_x), snap_y))
            if ckpt_path is not None:
                save_checkpoint({
                    "signature": signature, "epoch": epoch, "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(), "generator": generator.get_state(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "ema": ema.state_dict() if ema is not None else None,
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None,
                    "history": history.to_state(),
                }, ckpt_path)
            if bar is not None:
                bar.update(task, advance=1, info=f"train {train_loss:.5f}  val {history.val_loss[-1]:.5f}")
            if on_epoch is not None:
                on_epoch(epoch, history)
    finally:
        if bar is not None:
            bar.stop()
    if ema is not None:
        ema.copy_to()  # the trained model is the average, with its own BatchNorm statistics
        with torch.no_grad():
            recompute_batchnorm(model, bn_batches)
    model.eval()
    seconds = sum(history.epoch_seconds)
    return TrainResult(model=model, history=history, device=str(device), epochs=cfg.epochs, train_seconds=seconds,
                       images_per_second=n * len(history.epoch_seconds) / seconds if seconds > 0 else float("nan"),
                       resumed_from=start_epoch)
