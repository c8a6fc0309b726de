"""The parts of a training recipe around the loop: optimizer, learning-rate schedule, weight EMA.

The schedules are torch's (``LinearLR``, ``CosineAnnealingLR``, ``SequentialLR``, ``OneCycleLR``), stepped
once per optimizer step. With ``T`` steps in all and a warm-up of ``W`` steps (``warmup_epochs`` x steps per
epoch, rounded, at least 1; capped at ``T - 1``), the learning rate of step ``t = 0 .. T-1`` is:

* constant: ``lr * (t + 1) / W`` while ``t < W``, then ``lr``;
* cosine:   the same warm-up, then ``lr * (1 + cos(pi * (t - W) / (T - W))) / 2``;
* onecycle: torch's OneCycleLR with ``max_lr = lr`` and ``pct_start = max(W, 2) / T`` (0.3 without a
  warm-up): from ``lr / 25`` up to ``lr`` at step ``pct_start * T - 1`` and down to ``lr / 25e4`` at the last
  step, both halves cosine.

:class:`WeightEMA` keeps ``ema = d_t * ema + (1 - d_t) * w`` after step ``t = 1, 2, ...`` with
``d_t = min(decay, (1 + t) / (10 + t))`` (Polyak averaging with the warm-up of TensorFlow's
``ExponentialMovingAverage(num_updates=t)``, so a short training is not averaged with its initial weights),
one ``lerp_`` per parameter tensor (one in all when the trainer keeps the parameters in one flat buffer).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Optional

import torch

from aelab.config import TrainingConfig


def make_optimizer(params: list[torch.Tensor], cfg: TrainingConfig) -> torch.optim.Optimizer:
    """The optimizer of ``cfg`` over ``params`` (fused Adam/AdamW where the build has it)."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0, weight_decay=cfg.weight_decay
        )
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    try:
        return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except (RuntimeError, TypeError):
        return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)


def warmup_steps(cfg: TrainingConfig, steps_per_epoch: int, total_steps: int) -> int:
    """``W``: the warm-up in optimizer steps (0 without one)."""
    if cfg.warmup_epochs <= 0:
        return 0
    return min(max(1, round(cfg.warmup_epochs * steps_per_epoch)), max(total_steps - 1, 0))


def make_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainingConfig, steps_per_epoch: int
) -> Optional[torch.optim.lr_scheduler.LRScheduler]:
    """The per-step learning-rate scheduler of ``cfg`` (see the module docstring), or None for a constant rate
    without warm-up. Call ``.step()`` after every ``optimizer.step()``."""
    from torch.optim import lr_scheduler as S

    total = cfg.epochs * steps_per_epoch
    w = warmup_steps(cfg, steps_per_epoch, total)
    if cfg.schedule == "onecycle":
        total = max(total, 3)  # OneCycleLR's warm-up phase needs at least 2 steps
        return S.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total, pct_start=max(w, 2) / total if w else 0.3)
    warm = S.LinearLR(optimizer, start_factor=1 / w, end_factor=1.0, total_iters=w - 1) if w > 1 else None
    if cfg.schedule == "constant":
        return warm
    cosine = S.CosineAnnealingLR(optimizer, T_max=max(total - w, 1), eta_min=0.0)
    if warm is None:
        return cosine if w == 0 else S.SequentialLR(optimizer, [S.ConstantLR(optimizer, 1.0, 1), cosine], [w])
    return S.SequentialLR(optimizer, [warm, cosine], milestones=[w])


def schedule_lrs(cfg: TrainingConfig, steps_per_epoch: int) -> list[float]:
    """The learning rate of every optimizer step of a training with ``cfg`` (what the figure and tests show)."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=cfg.lr)
    scheduler = make_scheduler(optimizer, cfg, steps_per_epoch)
    lrs = []
    for _ in range(cfg.epochs * steps_per_epoch):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return lrs


def recompute_batchnorm(model: torch.nn.Module, batches: list[torch.Tensor]) -> None:
    """Set every BatchNorm's running statistics to those of ``batches`` under the current weights (torch's
    ``swa_utils.update_bn``; nothing happens for a model without BatchNorm)."""
    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        from torch.optim.swa_utils import update_bn

        was = model.training
        update_bn(batches, model)
        model.train(was)


class WeightEMA:
    """An exponential moving average of ``params``: ``ema <- d_t * ema + (1 - d_t) * w`` at the t-th
    :meth:`update` (t = 1, 2, ...), ``d_t = min(decay, (1 + t) / (10 + t))``, starting from the weights it is
    given. BatchNorm statistics are not averaged: they belong to the live weights, so the trainer recomputes
    them for the averaged weights (:func:`recompute_batchnorm`) before it evaluates them.

    Args:
        params: the parameter tensors to average (the model keeps training them).
        decay: in (0, 1); 0.999 averages over roughly the last 1,000 steps.
    """

    def __init__(self, params: list[torch.Tensor], decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.params = list(params)
        self.decay = decay
        self.shadow = [p.detach().clone() for p in self.params]
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        """Move the average toward the current weights (call after each optimizer step)."""
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for s, p in zip(self.shadow, self.params):
            s.lerp_(p.detach(), 1.0 - d)

    @contextmanager
    def swapped(self, model: torch.nn.Module, batches: list[torch.Tensor]) -> Iterator[None]:
        """Inside the block ``model`` holds the averaged weights (with BatchNorm statistics recomputed on
        ``batches``); its own weights and statistics come back after."""
        with torch.no_grad():
            kept = [p.detach().clone() for p in self.params]
            buffers = [b.detach().clone() for b in model.buffers()]
            self.copy_to()
            recompute_batchnorm(model, batches)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, k in zip(self.params, kept):
                    p.copy_(k)
                for b, k in zip(model.buffers(), buffers):
                    b.copy_(k)

    @torch.no_grad()
    def copy_to(self) -> None:
        """Write the averaged weights into the model's parameters."""
        for p, s in zip(self.params, self.shadow):
            p.copy_(s)

    def state_dict(self) -> dict:
        """Decay, update count and the averaged tensors (what a checkpoint keeps)."""
        return {"decay": self.decay, "updates": self.updates, "shadow": [s.clone() for s in self.shadow]}

    def load_state_dict(self, state: dict) -> None:
        if len(state["shadow"]) != len(self.shadow) or not math.isclose(state["decay"], self.decay):
            raise ValueError("EMA state of another model or decay")
        self.updates = int(state["updates"])
        with torch.no_grad():
            for s, v in zip(self.shadow, state["shadow"]):
                s.copy_(v)
