"""What watches a training without changing it: a progress bar, TensorBoard, a user's function. The trainer
calls each callback's ``start(total, done, label)`` once, ``epoch(epoch, history)`` after every epoch and
``stop()`` at the end (also when the training fails)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch

from aelab.data.dataset import to_unit_float
from aelab.training.history import History


class Callback(Protocol):
    def start(self, total: int, done: int, label: str) -> None: ...

    def epoch(self, epoch: int, history: History) -> None: ...

    def stop(self) -> None: ...


class OnEpoch:
    """A plain function ``fn(epoch, history)`` called after every epoch."""

    def __init__(self, fn: Callable[[int, History], object]) -> None:
        self.fn = fn

    def start(self, total: int, done: int, label: str) -> None:
        pass

    def epoch(self, epoch: int, history: History) -> None:
        self.fn(epoch, history)

    def stop(self) -> None:
        pass


class ProgressBar:
    """rich's progress bar: epochs done of all, the last training and validation loss, time left. Works in a
    terminal and in Jupyter (rich renders to the notebook's output)."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.task: Any = None

    def start(self, total: int, done: int, label: str) -> None:
        from rich.markup import escape
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            transient=False,
        )
        self.task = self.bar.add_task(escape(label), total=total, completed=done, info="")
        self.bar.start()

    def epoch(self, epoch: int, history: History) -> None:
        if self.bar is not None:
            self.bar.update(
                self.task,
                advance=1,  # type: ignore[arg-type]
                info=f"train {history.train_loss[-1]:.5f}  val {history.val_loss[-1]:.5f}",
            )

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


class TensorBoard:
    """TensorBoard event files in ``folder``: losses, the model's terms, and the snapshot reconstructions."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.writer: Any = None

    def start(self, total: int, done: int, label: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.folder))

    def epoch(self, epoch: int, history: History) -> None:
        w = self.writer
        if w is None:
            return
        w.add_scalar("loss/train", history.train_loss[-1], epoch)
        if history.val_loss[-1] == history.val_loss[-1]:  # not NaN (no validation images)
            w.add_scalar("loss/validation", history.val_loss[-1], epoch)
        for key, values in history.terms.items():  # a VAE's KL and beta, a VQ-VAE's codebook perplexity
            w.add_scalar(f"terms/{key}", values[-1], epoch)
        originals = history.snapshot_originals
        if epoch in history.snapshots and originals is not None and originals.dtype == torch.uint8:  # images only
            both = to_unit_float(torch.cat([originals, history.snapshots[epoch]]))
            w.add_images("reconstructions (top: originals)", both, epoch, dataformats="NCHW")
        w.flush()

    def stop(self) -> None:
        if self.writer is not None:
            self.writer.close()
