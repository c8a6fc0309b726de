"""Greedy layer-wise pretraining (Bengio et al. 2007; the Full Code Guide's "Training Deep Autoencoder").

With encoder stages E1..En and mirrored decoder stages Dn..D1, stage k trains the autoencoder
``E1..Ek -> Dk..D1``::

    stage 1:  x -> E1 -> D1 -> x_hat                  (train E1, D1)
    stage 2:  x -> E1 -> E2 -> D2 -> D1 -> x_hat      (E1, D1 frozen; train E2, D2)
    ...
    fine-tune: the whole model, everything trainable

Stage models share their layers with the full model, so what stage k-1 trained is what stage k starts
from (and keeps frozen). Losses of every stage are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from aelab.config import TrainingConfig
from aelab.data.dataset import ImageDataset
from aelab.errors import ModelError
from aelab.models.autoencoder import AutoEncoder
from aelab.models.tied import TiedLinear
from aelab.training.trainer import TrainResult, train

WEIGHTED = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, TiedLinear)


def stages_of(seq: nn.Sequential) -> list[nn.Sequential]:
    """Split a Sequential into stages, each starting at a Linear/Conv layer (leading reshapes join the first)."""
    stages: list[list[nn.Module]] = []
    pending: list[nn.Module] = []
    for layer in seq:
        if isinstance(layer, WEIGHTED):
            stages.append(pending + [layer])
            pending = []
        elif stages:
            stages[-1].append(layer)
        else:
            pending.append(layer)
    if pending:
        raise ModelError("layer-wise pretraining needs an encoder and decoder made of Linear/Conv layers")
    return [nn.Sequential(*s) for s in stages]


def stage_model(model: AutoEncoder, k: int) -> AutoEncoder:
    """The stage-``k`` autoencoder (1-based): the first ``k`` encoder stages and the last ``k`` decoder stages,
    sharing their layers with ``model``.

    Raises:
        ModelError: the decoder does not mirror the encoder (stage shapes don't fit).
    """
    enc, dec = stages_of(model.encoder), stages_of(model.decoder)
    n = len(enc)
    if len(dec) != n:
        raise ModelError(f"layer-wise pretraining needs a decoder that mirrors the encoder; {model.name!r} has "
                         f"{n} encoder and {len(dec)} decoder stages")
    if k == n:
        return model
    encoder, decoder = nn.Sequential(*enc[:k]), nn.Sequential(*dec[n - k:])
    with torch.no_grad():
        device = next(model.parameters()).device
        was = model.training
        encoder.eval(), decoder.eval()
        code = encoder(torch.zeros(1, *model.input_shape, device=device))
        try:
            out = decoder(code)
        except RuntimeError as exc:
            raise ModelError(f"layer-wise stage {k} of {model.name!r}: decoder stages don't fit the encoder's "
                             f"output {tuple(code.shape[1:])} ({str(exc).splitlines()[0]})") from None
        encoder.train(was), decoder.train(was)
    if tuple(out.shape[1:]) != tuple(model.input_shape):
        raise ModelError(f"layer-wise stage {k} of {model.name!r} outputs {tuple(out.shape[1:])}, not the input "
                         f"{model.input_shape}; the decoder does not mirror the encoder")
    return AutoEncoder(encoder, decoder, model.input_shape, tuple(code.shape[1:]), name=f"{model.name} stage {k}")


def _set_trainable(modules: list[nn.Module], flag: bool) -> None:
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(flag)


@dataclass
class LayerwiseResult:
    """Per-stage training results (the last one is the fine-tuning of the whole model)."""

    stages: list[TrainResult]

    @property
    def final(self) -> TrainResult:
        return self.stages[-1]


def train_layerwise(model: AutoEncoder, dataset: ImageDataset, config: TrainingConfig, seed: int = 0,
                    run_dir: Path | str | None = None, resume: bool = False, progress: bool = True,
                    on_epoch=None) -> LayerwiseResult:
    """Greedy layer-wise pretraining of ``model``: ``config.layerwise_epochs`` per stage, then
    ``config.epochs`` of fine-tuning of everything. Stage k's checkpoints go to ``run_dir/stage_k``;
    ``on_epoch`` (see :func:`train`) is called during the fine-tuning of the whole model.

    Raises:
        ModelError: the model's decoder does not mirror its encoder.
    """
    if not config.layerwise_epochs:
        raise ValueError("config.layerwise_epochs must be set")
    enc, dec = stages_of(model.encoder), stages_of(model.decoder)
    n = len(enc)
    for k in range(1, n):
        stage_model(model, k)  # refuse a non-mirrored model before training anything
    stage_cfg = config.model_copy(update={"epochs": config.layerwise_epochs, "layerwise_epochs": None})
    results = []
    try:
        for k in range(1, n):
            _set_trainable(enc[:k - 1] + dec[n - k + 1:], False)  # trained in earlier stages
            sub = stage_model(model, k)
            sub_dir = Path(run_dir) / f"stage_{k}" if run_dir is not None else None
            results.append(train(sub, dataset, stage_cfg, seed=seed + k, run_dir=sub_dir, resume=resume,
                                 progress=progress))
            _set_trainable(enc + dec, True)
    finally:
        _set_trainable(enc + dec, True)
    results.append(train(model, dataset, config.model_copy(update={"layerwise_epochs": None}), seed=seed,
                         run_dir=run_dir, resume=resume, progress=progress, on_epoch=on_epoch))
    return LayerwiseResult(results)
