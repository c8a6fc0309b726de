"""What a training keeps per epoch (:class:`History`) and what it returns (:class:`TrainResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch


@dataclass
class History:
    """What happened per epoch. Losses are in the unit of the training loss (the model's ``loss_unit``)."""

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

    def record(self, train_loss: float, penalty: float, lr: float, terms: dict[str, float], seconds: float) -> None:
        """Append one epoch's training numbers."""
        self.train_loss.append(train_loss)
        self.train_penalty.append(penalty)
        self.lr.append(lr)
        self.epoch_seconds.append(seconds)
        for key, value in terms.items():
            self.terms.setdefault(key, []).append(value)

    def to_state(self) -> dict:
        """Plain containers and tensors (what a ``weights_only`` checkpoint may hold)."""
        return {
            "train_loss": list(self.train_loss),
            "val_loss": list(self.val_loss),
            "train_penalty": list(self.train_penalty),
            "lr": list(self.lr),
            "terms": {k: list(v) for k, v in self.terms.items()},
            "epoch_seconds": list(self.epoch_seconds),
            "snapshots": {str(k): v for k, v in self.snapshots.items()},
            "snapshot_originals": self.snapshot_originals,
        }

    @classmethod
    def from_state(cls, state: dict) -> History:
        return cls(
            train_loss=list(state["train_loss"]),
            val_loss=list(state["val_loss"]),
            train_penalty=list(state["train_penalty"]),
            lr=list(state.get("lr", [])),
            terms={k: list(v) for k, v in state.get("terms", {}).items()},
            epoch_seconds=list(state["epoch_seconds"]),
            snapshots={int(k): v for k, v in state["snapshots"].items()},
            snapshot_originals=state["snapshot_originals"],
        )


@dataclass
class TrainResult:
    """A trained model and its history."""

    model: Any
    """The :class:`~aelab.models.AutoEncoder`, trained in place."""
    history: History
    device: str
    epochs: int
    train_seconds: float
    """Seconds in training steps, summed over all epochs (including epochs done before a resume)."""
    images_per_second: float
    """Training images processed per second of training steps."""
    resumed_from: int = 0
    """Epochs already done when this call started (0 = fresh run)."""
