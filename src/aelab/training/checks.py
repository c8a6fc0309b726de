"""What is checked before a training starts: the device, the loss, and what the model, data and config allow
together (refused before anything is trained or written), plus warnings about settings that will train but
badly."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from aelab.config import TrainingConfig
from aelab.data.dataset import ImageDataset
from aelab.errors import AelabError, ConfigError
from aelab.models.autoencoder import AutoEncoder

FEW_VALIDATION_IMAGES = 10
"""Fewer validation images than this make a noisy validation loss (a warning)."""
FEW_TEST_IMAGES = 2
"""A class with fewer test images than this is too small for the per-class analyses (a warning)."""


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu.

    Raises:
        ConfigError: cuda without a GPU.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("training.device: got 'cuda' but no CUDA GPU is available; allowed here: auto, cpu")
    return torch.device(name)


def loss_fn(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The reconstruction loss ``loss(reconstruction, target) -> scalar`` of the training config's ``loss``."""
    if name == "mse":
        return F.mse_loss
    if name == "mse_sum":
        return lambda out, x: (out - x).pow(2).sum() / x.shape[0]
    if name == "l1":
        return F.l1_loss
    return F.binary_cross_entropy


def check_trainable(model: AutoEncoder, dataset: ImageDataset, config: TrainingConfig) -> None:
    """Refuse, before anything is trained or written, what :func:`aelab.train` (or layer-wise training) cannot
    do with this model, data and config.

    Raises:
        AelabError: the model's input shape is not the data's.
        ConfigError: BCE loss on a model whose output is not a sigmoid; clipped corruption of vector data; what
            the model refuses (:meth:`~aelab.models.AutoEncoder.check_training`).
        ModelError: a batch too small for the model's sparsity (lifetime top-k), or layer-wise training of a
            model whose decoder does not mirror its encoder.
    """
    if tuple(dataset.shape) != tuple(model.input_shape):
        raise AelabError(
            f"model {model.name!r} expects images of {model.input_shape} but dataset "
            f"{dataset.name!r} has {dataset.shape}"
        )
    if config.loss == "bce" and not model.sigmoid_output:
        raise ConfigError(
            f"training.loss: 'bce' needs outputs in [0, 1] (a sigmoid output) but model "
            f"{model.name!r} has none; allowed for it: mse, mse_sum"
        )
    if dataset.is_vectors and config.corruption is not None and config.corruption.clip:
        raise ConfigError(
            "training.corruption: vector data is standardized, not in [0, 1], so clipping the corrupted "
            "input would destroy it; set training.corruption.clip=false"
        )
    batch = config.model_copy(update={"batch_size": min(config.batch_size, len(dataset.train))})
    model.check_training(batch, dataset.normal_classes is not None, binary=dataset.binarize is not None)
    if config.layerwise_epochs:
        for k in range(1, len(model.stages())):
            model.stage_model(k)


def training_warnings(dataset: ImageDataset, config: TrainingConfig) -> list[str]:
    """Settings that will train, but not as the user probably expects, one line each."""
    out = []
    n, n_val = len(dataset.train), len(dataset.val)
    if config.batch_size > n:
        out.append(
            f"the batch size {config.batch_size} is larger than the {n} training images: every step uses all "
            f"of them (one step per epoch)"
        )
    if 0 < n_val < FEW_VALIDATION_IMAGES:
        out.append(
            f"the validation split has only {n_val} images, so the validation loss is noisy; raise "
            "--val-fraction or use more images"
        )
    return out
