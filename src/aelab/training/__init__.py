"""The fast training loop, checkpoints and resume."""

from aelab.training.checkpoint import load_checkpoint, save_checkpoint
from aelab.training.trainer import History, TrainResult, resolve_device, train

__all__ = ["train", "TrainResult", "History", "resolve_device", "save_checkpoint", "load_checkpoint"]
