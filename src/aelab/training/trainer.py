"""The training loop: whole dataset on the device, no per-sample work, one host sync per epoch.

Per step: forward, loss, backward, optional gradient-norm clipping, optimizer step, learning-rate schedule
step, optional EMA update of the weights (:mod:`aelab.training.recipe`); none of them reads a value back.

Each epoch draws one random permutation (from a seeded generator) and slices it into batches that index
the uint8 image tensor already on the device; each batch is converted to float in [0, 1] there, with its class
labels (the model uses them when it needs them). Losses are summed on the device and read back once per epoch.
The training state (:class:`~aelab.training.state.TrainState`: weights, optimizer, schedule, EMA, epoch, RNG
states, history) is checkpointed atomically after every epoch, so a cut run resumes and ends with the same
weights as an uncut one. Progress bars, TensorBoard and user functions watch it as callbacks
(:mod:`aelab.training.callbacks`).
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from aelab.config import TrainingConfig
from aelab.data.corruption import corrupt
from aelab.data.dataset import ImageDataset, ImageSplit, binarized, to_uint8, to_unit_float
from aelab.errors import TrainingDivergedError
from aelab.models.autoencoder import AutoEncoder
from aelab.models.layers import memory_format_of
from aelab.training import distributed
from aelab.training.callbacks import Callback, OnEpoch, ProgressBar
from aelab.training.checks import check_trainable, loss_fn, resolve_device
from aelab.training.feed import DeviceFeed, MappedFeed, feed_for
from aelab.training.flat import FlatParameters, can_flatten
from aelab.training.history import History, TrainResult
from aelab.training.recipe import WeightEMA, make_optimizer, make_scheduler, recompute_batchnorm
from aelab.training.state import CHECKPOINT_NAME, TrainState

EMA_BN_IMAGES = 4096
"""Training images (the first ones) on which BatchNorm statistics are recomputed for the averaged weights."""


@dataclass
class Loop:
    """What every epoch of one training uses: the model (and its compiled step), the data on the device, the
    parameters the optimizer sees, the loss and the batch layout."""

    model: AutoEncoder
    step: Callable[..., Any]
    cfg: TrainingConfig
    device: torch.device
    params: list[torch.Tensor]
    flat: Optional[FlatParameters]
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    memory_format: torch.memory_format
    bf16: bool
    feed: DeviceFeed | MappedFeed
    n: int
    train_y: torch.Tensor
    val_x: torch.Tensor | ImageSplit
    """On the device; a memory-mapped split stays on disk and is read a batch at a time."""
    val_y: torch.Tensor
    snap_x: torch.Tensor
    snap_y: torch.Tensor
    bn_batches: list[torch.Tensor]
    binarize_seed: Optional[int] = None
    """Dynamic binarization: the run's seed (each epoch's training images are sampled with a generator seeded by
    it and the epoch); None: images as they are."""

    @property
    def batch(self) -> int:
        return min(self.cfg.batch_size, self.n)

    @property
    def steps(self) -> int:
        return math.ceil(self.n / self.batch)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)


def _loop(model: AutoEncoder, dataset: ImageDataset, cfg: TrainingConfig, device: torch.device, seed: int) -> Loop:
    """Move the model and the data to the device and put the parameters in one buffer where they fit."""
    if cfg.precision == "bf16" and device.type == "cpu" and not torch.cpu._is_amx_tile_supported():
        warnings.warn("bf16 autocast on a CPU without AMX: measured slower than fp32 (BENCHMARKS.md)", stacklevel=3)
    fmt = memory_format_of(model)
    model.to(device=device, memory_format=fmt)  # type: ignore[call-overload]
    trainable: list[torch.Tensor] = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:
        p.grad = None  # gradients left from an earlier call mean nothing here (each step starts from zero)
    # One buffer for all parameters: one optimizer kernel per step instead of per-tensor bookkeeping (on one
    # process; DistributedDataParallel keeps its own gradient buckets).
    several = distributed.world()[1] > 1
    flat = FlatParameters(trainable) if not cfg.compile and not several and can_flatten(trainable) else None
    snap = dataset.test if len(dataset.test) else dataset.train
    feed = feed_for(dataset.train, device)
    n_bn = min(len(dataset.train), EMA_BN_IMAGES) if cfg.ema_decay is not None else 0
    step: Any = model
    if several:
        from torch.nn.parallel import DistributedDataParallel

        step = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return Loop(
        model,
        torch.compile(step, mode=cfg.compile_mode or "default") if cfg.compile else step,
        cfg,
        device,
        [flat.param] if flat is not None else trainable,
        flat,
        loss_fn(cfg.loss),
        fmt,
        cfg.precision == "bf16",
        feed,
        len(dataset.train),
        dataset.train.labels.to(device),
        dataset.val if dataset.val.mapped else dataset.val.images.to(device),
        dataset.val.labels.to(device),
        snap.head(cfg.snapshot_size).images.to(device),
        snap.labels[: cfg.snapshot_size].to(device),
        [to_unit_float(part).contiguous(memory_format=fmt) for part in feed.head(n_bn).split(cfg.eval_batch_size)],
        seed if dataset.binarize is not None else None,
    )


def _state(loop: Loop, seed: int) -> TrainState:
    """A fresh training state: optimizer, schedule (made before a checkpoint's optimizer state is loaded: it
    sets the learning rate), weight average and the seeded batch-order generator."""
    cfg = loop.cfg
    optimizer = make_optimizer(loop.params, cfg)
    scheduler = make_scheduler(optimizer, cfg, loop.steps)
    ema = WeightEMA(loop.params, cfg.ema_decay) if cfg.ema_decay is not None else None
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    signature = {
        "training": cfg.model_dump(mode="json", exclude={"device", "compile", "compile_mode", "eval_batch_size"}),
        "seed": seed,
        "model": repr(loop.model),
        "parameters": loop.model.num_parameters(),
        "flat_optimizer": loop.flat is not None,
    }
    return TrainState(loop.model, optimizer, scheduler, ema, generator, signature, loop.device)


def epoch_generator(seed: int, epoch: int, device: torch.device) -> torch.Generator:
    """The generator of epoch ``epoch``'s binarization on ``device``: seeded by the run's seed and the epoch only, so
    a resumed run draws what the uncut one did."""
    return torch.Generator(device=device).manual_seed(seed * 100_003 + epoch)


def run_epoch(loop: Loop, state: TrainState, epoch: int) -> None:
    """One pass over the training images in a fresh random order; records its losses and time in the history.

    Raises:
        TrainingDivergedError: the loss or penalty is NaN or infinite (the caller's last checkpoint is kept).
    """
    model, cfg, device = loop.model, loop.cfg, loop.device
    model.train()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    perm = torch.randperm(loop.n, generator=state.generator)
    model.start_epoch(epoch, cfg.epochs)
    total, total_penalty = torch.zeros((), device=device), torch.zeros((), device=device)
    terms: dict[str, torch.Tensor] = {}
    lr = state.optimizer.param_groups[0]["lr"]
    # this process's share of each global batch (all of it on one process) and its loss weight
    coin = epoch_generator(loop.binarize_seed, epoch, device) if loop.binarize_seed is not None else None
    for idx, weight, images in loop.feed.batches(perm, loop.batch):
        xb = to_unit_float(images).contiguous(memory_format=loop.memory_format)
        if coin is not None:
            xb = binarized(xb, coin)
        x_in = corrupt(xb, cfg.corruption) if cfg.corruption is not None else xb
        with loop.autocast():
            out = loop.step(x_in, loop.train_y.index_select(0, idx))
        loss = model.reconstruction_loss(out, xb, loop.loss)
        total += loss.detach() * idx.shape[0]
        if out.penalty is not None:
            total_penalty += out.penalty.detach() * idx.shape[0]
            loss = loss + out.penalty
        for key, value in (out.terms or {}).items():
            terms[key] = terms.get(key, 0) + value.detach().float() * idx.shape[0]
        lr = _step(loop, state, loss * weight if weight != 1.0 else loss)
    # the one host sync of the epoch (summed over the processes first)
    sums = distributed.sum_over_processes(torch.stack([total, total_penalty, *terms.values()]))
    train_loss, penalty, *values = (float(v) for v in (sums / loop.n).cpu())
    if not (math.isfinite(train_loss) and math.isfinite(penalty)):
        raise TrainingDivergedError(f"training of {model.name!r} diverged at epoch {epoch}: loss is {train_loss}")
    state.history.record(train_loss, penalty, float(lr), dict(zip(terms, values)), time.perf_counter() - t0)


def _step(loop: Loop, state: TrainState, loss: torch.Tensor) -> float:
    """Backward, clip, optimizer, schedule and average steps; returns the learning rate used (no host sync)."""
    state.optimizer.zero_grad(set_to_none=loop.flat is None)  # a flat buffer's gradient views must stay
    loss.backward()
    if loop.cfg.clip_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(loop.params, loop.cfg.clip_grad_norm)
    lr = state.optimizer.param_groups[0]["lr"]  # a Python float: no sync
    state.optimizer.step()
    if state.scheduler is not None:
        state.scheduler.step()
    if state.ema is not None:
        state.ema.update()
    return lr


@torch.no_grad()
def validate(loop: Loop, state: TrainState, epoch: int) -> None:
    """The validation loss of the epoch and, every ``log_interval`` epochs and at the last, the snapshot
    reconstructions; with a weight average, of the averaged weights."""
    model, cfg = loop.model, loop.cfg
    model.eval()
    with state.ema.swapped(model, loop.bn_batches) if state.ema is not None else contextlib.nullcontext():
        state.history.val_loss.append(_mean_loss(loop))
        if epoch % cfg.log_interval == 0 or epoch == cfg.epochs:
            with loop.autocast():
                x = to_unit_float(loop.snap_x).contiguous(memory_format=loop.memory_format)
                state.history.snapshots[epoch] = to_uint8(model.reconstruct(x, loop.snap_y))


def _mean_loss(loop: Loop) -> float:
    images, labels, batch = loop.val_x, loop.val_y, loop.cfg.eval_batch_size
    if len(images) == 0:
        return float("nan")
    total = torch.zeros((), device=loop.device)
    for start in range(0, len(images), batch):
        xb = to_unit_float(images[start : start + batch], loop.device).contiguous(memory_format=loop.memory_format)
        with loop.autocast():
            out = loop.model(xb, labels[start : start + batch])
        total += loop.model.reconstruction_loss(out, xb, loop.loss) * xb.shape[0]
    return float(total / len(images))


def train(
    model: AutoEncoder,
    dataset: ImageDataset,
    config: TrainingConfig | None = None,
    seed: int = 0,
    run_dir: Path | str | None = None,
    resume: bool = False,
    progress: bool = True,
    on_epoch: Callable[[int, History], None] | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Train ``model`` on ``dataset.train``, validating on ``dataset.val`` after each epoch.

    Args:
        model: the autoencoder; trained in place and returned in the result.
        dataset: in-memory dataset (uint8 ``(N, C, H, W)`` splits); its image shape must be the model's.
        config: optimizer, schedule, clipping, EMA, loss, epochs, batch size, device (defaults: the Covalent
            tutorial's settings: Adam lr 1e-3, constant rate, MSE, batch 64, 50 epochs; a named ``recipe`` fills
            the fields not set, :meth:`~aelab.config.TrainingConfig.with_recipe`). The learning-rate
            schedule steps after every optimizer step (:mod:`aelab.training.recipe`); with ``ema_decay`` the
            validation loss, the snapshots and the returned model use the averaged weights.
        seed: seeds the batch order (and dropout, corruption, VAE samples); same model init and seed, same result.
        run_dir: where ``checkpoint.pt`` is written after each epoch (by rank 0 only); None = no checkpoints.
        resume: continue from ``run_dir/checkpoint.pt`` when it exists.
        progress: show a progress bar.
        on_epoch: called after each epoch with (epoch, history), e.g. for logging.
        callbacks: more watchers (:mod:`aelab.training.callbacks`, e.g. TensorBoard).

    Returns:
        :class:`TrainResult`.

    Raises:
        TrainingDivergedError: the training loss became NaN/inf; the last good checkpoint is kept.
        ConfigError: bad device, BCE loss on a non-sigmoid output, or a batch size that the processes of a
            ``torchrun`` group (:mod:`aelab.training.distributed`) cannot share equally.
        AelabError: ``resume`` with a checkpoint from a different model or training config.
    """
    cfg = (config or TrainingConfig()).with_recipe()
    device = distributed.device_of(resolve_device(cfg.device))
    distributed.check_batch_size(cfg.batch_size, distributed.world()[1])
    check_trainable(model, dataset, cfg)
    loop = _loop(model, dataset, cfg, device, seed)
    state = _state(loop, seed)
    ckpt = Path(run_dir) / CHECKPOINT_NAME if run_dir is not None else None
    start = _resume(loop, state, ckpt if resume else None)
    watchers: list[Callback] = [*([ProgressBar()] if progress else []), *([OnEpoch(on_epoch)] if on_epoch else [])]
    watchers += callbacks
    for w in watchers:
        w.start(cfg.epochs, start, model.name)
    try:
        for epoch in range(start + 1, cfg.epochs + 1):
            _epoch(loop, state, epoch, ckpt)
            for w in watchers:
                w.epoch(epoch, state.history)
    finally:
        for w in watchers:
            w.stop()
    return _finish(loop, state, start)


def _resume(loop: Loop, state: TrainState, ckpt: Optional[Path]) -> int:
    """Load ``ckpt`` when given and present; the epoch the training goes on from (0 for a fresh one)."""
    if ckpt is not None:
        state.resume(ckpt)
    if state.history.snapshot_originals is None:
        state.history.snapshot_originals = loop.snap_x.cpu().clone()
    return state.epoch


def _epoch(loop: Loop, state: TrainState, epoch: int, ckpt: Optional[Path]) -> None:
    try:
        run_epoch(loop, state, epoch)
    except TrainingDivergedError as exc:
        kept = (
            f"the last good checkpoint (epoch {epoch - 1}) is kept at {str(ckpt)!r}"
            if ckpt is not None and epoch > 1
            else "no checkpoint was written"
        )
        raise TrainingDivergedError(f"{exc}; {kept}; try a lower learning rate (--lr)") from None
    validate(loop, state, epoch)
    state.epoch = epoch
    if ckpt is not None and distributed.world()[0] == 0:  # one writer: rank 0
        state.save(ckpt)


def _finish(loop: Loop, state: TrainState, start: int) -> TrainResult:
    if state.ema is not None:
        state.ema.copy_to()  # the trained model is the average, with its own BatchNorm statistics
        with torch.no_grad():
            recompute_batchnorm(loop.model, loop.bn_batches)
    loop.model.eval()
    h = state.history
    seconds = sum(h.epoch_seconds)
    return TrainResult(
        model=loop.model,
        history=h,
        device=str(loop.device),
        epochs=loop.cfg.epochs,
        train_seconds=seconds,
        images_per_second=loop.n * len(h.epoch_seconds) / seconds if seconds > 0 else float("nan"),
        resumed_from=start,
    )
