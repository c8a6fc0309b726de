"""Training: the loop in parts (:mod:`.trainer`: setup, epoch, validation), its state and checkpoints
(:mod:`.state`, :mod:`.checkpoint`), recipes (:mod:`.recipe`), callbacks (:mod:`.callbacks`), the checks made
before it starts (:mod:`.checks`) and greedy layer-wise pretraining (:mod:`.layerwise`)."""

from aelab.training.checkpoint import load_checkpoint, save_checkpoint
from aelab.training.checks import check_trainable, resolve_device, training_warnings
from aelab.training.history import History, TrainResult
from aelab.training.trainer import train

__all__ = [
    "History",
    "TrainResult",
    "check_trainable",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "train",
    "training_warnings",
]
