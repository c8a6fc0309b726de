"""Greedy layer-wise pretraining (Bengio et al. 2007; the Full Code Guide's "Training Deep Autoencoder").

Stage k trains the autoencoder made of the first k encoder stages and their mirror decoder stages
(:meth:`AutoEncoder.stage_model`), with the stages trained before it frozen; then the whole model is
fine-tuned with everything trainable. Stage models share their layers with the full model, so what stage
k-1 trained is what stage k starts from (and keeps frozen). Losses of every stage are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from aelab.config import TrainingConfig
from aelab.data.dataset import ImageDataset
from aelab.models.autoencoder import AutoEncoder
from aelab.training.checks import check_trainable
from aelab.training.history import TrainResult
from aelab.training.trainer import train


def _set_trainable(modules: Sequence[nn.Module], flag: bool) -> None:
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


def train_layerwise(
    model: AutoEncoder,
    dataset: ImageDataset,
    config: TrainingConfig,
    seed: int = 0,
    run_dir: Path | str | None = None,
    resume: bool = False,
    progress: bool = True,
    on_epoch=None,
    callbacks=(),
) -> LayerwiseResult:
    """Greedy layer-wise pretraining of ``model``: ``config.layerwise_epochs`` per stage, then
    ``config.epochs`` of fine-tuning of everything. Stage k's checkpoints go to ``run_dir/stage_k``;
    ``on_epoch`` and ``callbacks`` (see :func:`train`) watch the fine-tuning of the whole model.

    Raises:
        ModelError: the model's decoder does not mirror its encoder.
    """
    if not config.layerwise_epochs:
        raise ValueError("config.layerwise_epochs must be set")
    pairs = model.stages()
    enc: list[nn.Module] = [e for e, _ in pairs]
    dec: list[nn.Module] = [d for _, d in reversed(pairs)]
    n = len(pairs)
    check_trainable(model, dataset, config)  # refuse a non-mirrored model before training anything
    stage_cfg = config.model_copy(
        update={"epochs": config.layerwise_epochs, "layerwise_epochs": None, "ema_decay": None}
    )
    results = []
    try:
        for k in range(1, n):
            _set_trainable(enc[: k - 1] + dec[n - k + 1 :], False)  # trained in earlier stages
            sub = model.stage_model(k)
            sub_dir = Path(run_dir) / f"stage_{k}" if run_dir is not None else None
            results.append(
                train(sub, dataset, stage_cfg, seed=seed + k, run_dir=sub_dir, resume=resume, progress=progress)
            )
            _set_trainable(enc + dec, True)
    finally:
        _set_trainable(enc + dec, True)
    results.append(
        train(
            model,
            dataset,
            config.model_copy(update={"layerwise_epochs": None}),
            seed=seed,
            run_dir=run_dir,
            resume=resume,
            progress=progress,
            on_epoch=on_epoch,
            callbacks=callbacks,
        )
    )
    return LayerwiseResult(results)
