"""Everything a training carries from one epoch to the next, in one object with one ``state_dict``: what a
checkpoint saves and what a resume loads, so the two can never list different keys.

A run cut after epoch k and resumed continues with the same weights, optimizer moments, schedule position,
weight average, batch order and random draws as an uncut run: it ends with the same weights, bit for bit on CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from aelab.errors import AelabError
from aelab.training.checkpoint import load_checkpoint, save_checkpoint
from aelab.training.history import History
from aelab.training.recipe import WeightEMA

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class TrainState:
    """The model and its optimizer, schedule, weight average and batch-order generator, the history and the
    epoch reached; ``signature`` identifies the training a checkpoint belongs to (model, config, seed)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Optional[Any]
    ema: Optional[WeightEMA]
    generator: torch.Generator
    signature: dict
    device: torch.device
    history: History = field(default_factory=History)
    epoch: int = 0
    """Epochs finished."""

    def state_dict(self) -> dict:
        """Tensors and plain containers only (a checkpoint is read back with ``weights_only=True``)."""
        cuda = self.device.type == "cuda"
        return {
            "signature": self.signature,
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if cuda else None,
            "history": self.history.to_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state`` (what :meth:`state_dict` gave): every part, and the global RNGs."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        if self.device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"].cpu())
        self.history = History.from_state(state["history"])
        self.epoch = int(state["epoch"])

    def save(self, path: Path) -> None:
        """Write the checkpoint atomically (a reader sees the previous epoch's or this one's, never half)."""
        save_checkpoint(self.state_dict(), path)

    def resume(self, path: Path) -> None:
        """Load the checkpoint at ``path`` when there is one.

        Raises:
            AelabError: it was written for another model, seed or training config, or is not an aelab checkpoint.
        """
        if not path.is_file():
            return
        state = load_checkpoint(path, map_location=self.device)
        if state.get("signature") != self.signature:
            raise AelabError(
                f"cannot resume from {str(path)!r}: it was written for another model, seed or "
                "training config; use a new run name or the same settings"
            )
        self.load_state_dict(state)
