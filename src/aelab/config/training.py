"""How a run is trained: :class:`TrainingConfig`, denoising corruption (:class:`CorruptionConfig`) and the
named recipes (:data:`RECIPES`)."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field, model_validator

from aelab.config.base import Strict, flag, short_form
from aelab.config.model_config import ModelConfig
from aelab.config.presets import PRESETS


class CorruptionConfig(Strict):
    """Input corruption for denoising autoencoders, drawn fresh for every batch on the training device.

    * ``gaussian``: add N(0, std^2) noise; ``std`` is the standard deviation in pixel units of [0, 1]
      (CLI ``gaussian:STD``).
    * ``masking``: set a random ``fraction`` of the pixels to ``value`` (CLI ``masking:FRACTION``).
    * ``salt_pepper``: set a random ``fraction`` of the pixels to 0 or 1, half each (CLI ``salt_pepper:FRACTION``).

    The corrupted input is clipped to [0, 1] unless ``clip`` is off.
    """

    kind: Literal["gaussian", "masking", "salt_pepper"]
    """gaussian, masking or salt_pepper."""
    std: Optional[float] = None
    """Standard deviation of the Gaussian noise, in [0, 1] pixel units (gaussian)."""
    fraction: Optional[float] = None
    """Share of pixels corrupted (masking, salt_pepper), in (0, 1]."""
    value: float = Field(0.0, ge=0.0, le=1.0)
    """Value of masked pixels (masking)."""
    clip: bool = True
    """Clip the corrupted input to [0, 1]."""

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return short_form(value, {"gaussian": ["std"], "masking": ["fraction"], "salt_pepper": ["fraction"]})

    @model_validator(mode="after")
    def _complete(self) -> CorruptionConfig:
        if self.kind == "gaussian" and (self.std is None or self.std < 0):
            raise ValueError(f"gaussian std: got {self.std}; allowed: std >= 0 (gaussian:0.5)")
        if self.kind != "gaussian" and (self.fraction is None or not 0 < self.fraction <= 1):
            raise ValueError(f"{self.kind} fraction: got {self.fraction}; allowed: (0, 1]")
        return self


class TrainingConfig(Strict):
    """How to train: optimizer, learning-rate schedule, loss, epochs, batch size, device.

    The defaults are the Covalent tutorial's recipe (Adam 1e-3, constant rate, MSE, batch 64, 50 epochs); a
    preset's own recipe (:data:`RECIPES`, e.g. ``aelab`` for the ``res-*`` presets) fills in every field that
    is not set explicitly (see ``recipe``).
    """

    epochs: int = Field(50, ge=1)
    """Passes over the training images."""
    batch_size: int = Field(64, ge=1)
    """Images per optimizer step."""
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    """adam (Adam, L2 weight decay), adamw (AdamW, decoupled weight decay) or sgd (SGD with Nesterov momentum)."""
    lr: float = Field(1e-3, gt=0)
    """Learning rate (the peak rate with a schedule)."""
    schedule: Literal["constant", "cosine", "onecycle"] = "constant"
    """Learning rate per step: constant; cosine (decay from lr to 0 over the steps after the warm-up); onecycle
    (torch's OneCycleLR: cosine up from lr/25 over the warm-up, or 30% of the steps without one, then cosine
    down to lr/25e4; Adam's beta1 cycles 0.95 -> 0.85 -> 0.95)."""
    warmup_epochs: float = Field(0.0, ge=0, **flag("warmup"))
    """Linear warm-up from lr/W to lr over the first W optimizer steps (W = this many epochs of steps, at least
    one step); 0 = none. Must be shorter than the training."""
    clip_grad_norm: Optional[float] = Field(None, gt=0, **flag("clip"))
    """Clip the gradient's global L2 norm to this value before each step; None = no clipping."""
    ema_decay: Optional[float] = Field(None, gt=0, lt=1, **flag("ema"))
    """Keep an exponential moving average of the weights (ema = decay * ema + (1 - decay) * weights after each
    step); validation, test metrics and the saved model use the average. None = off."""
    weight_decay: float = Field(0.0, ge=0)
    """Weight decay (L2 for adam and sgd, decoupled for adamw)."""
    momentum: float = Field(0.9, ge=0, lt=1)
    """SGD momentum (Nesterov)."""
    loss: Literal["mse", "mse_sum", "bce", "l1"] = "mse"
    """mse: mean over pixels; mse_sum: summed per image, averaged over the batch; bce: binary cross-entropy;
    l1: mean absolute error per pixel."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """auto (cuda when there is a GPU), cpu or cuda."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """bf16 autocast of the forward passes (convolutions and matrix products in bfloat16, the loss, gradients and
    weights in fp32), on CUDA and on the CPU (where it pays only with AMX: without, it warns)."""
    compile: bool = False
    """torch.compile the training step (for a GPU: on the 2-core CPU of BENCHMARKS.md it made conv-64's step about
    30% slower)."""
    compile_mode: Optional[Literal["default", "reduce-overhead", "max-autotune"]] = None
    """torch.compile's mode with ``compile``: default, reduce-overhead (CUDA graphs) or max-autotune (tuned
    kernels and CUDA graphs); None = default."""
    log_interval: int = Field(10, ge=1)
    """Every this many epochs, keep a snapshot of a fixed batch of originals and reconstructions."""
    eval_batch_size: int = Field(1000, ge=1)
    """Images per batch when evaluating."""
    snapshot_size: int = Field(8, ge=1, le=64)
    """Images in the fixed snapshot batch."""
    corruption: Optional[CorruptionConfig] = Field(None, **flag("denoise"))
    """Denoising: corrupt each training batch, reconstruct the clean one: gaussian:STD, masking:FRACTION or
    salt_pepper:FRACTION."""
    layerwise_epochs: Optional[int] = Field(None, ge=1, **flag("layerwise"))
    """Greedy layer-wise pretraining: epochs per stage before ``epochs`` of fine-tuning of the whole model."""
    recipe: Optional[Literal["tutorial", "aelab"]] = None
    """Defaults for the fields not set explicitly: tutorial (Adam 1e-3, constant, batch 64, 50 epochs) or aelab
    (AdamW, warm-up + cosine decay, gradient clipping); None = the model's own (aelab for res-* presets, tutorial
    for the others and for specs)."""

    def with_recipe(self) -> TrainingConfig:
        """This config with its named :attr:`recipe` filling the fields not set explicitly, as experiments do
        when they make runs (:func:`recipe_of`); itself when no recipe is named. ``aelab.train`` applies it, so
        ``TrainingConfig(recipe="aelab", epochs=5)`` trains with AdamW, warm-up + cosine decay and clipping."""
        if self.recipe is None:
            return self
        return TrainingConfig.model_validate({**RECIPES[self.recipe], **self.model_dump(exclude_unset=True)})

    @model_validator(mode="after")
    def _warmup_inside_training(self) -> TrainingConfig:
        if self.warmup_epochs >= self.epochs:
            raise ValueError(
                f"warmup_epochs: got {self.warmup_epochs:g} but the training lasts {self.epochs} "
                f"epochs; allowed: 0 <= warmup_epochs < epochs"
            )
        return self


RECIPES: dict[str, dict[str, Any]] = {
    "tutorial": {},
    "aelab": {
        "epochs": 20,
        "batch_size": 128,
        "optimizer": "adamw",
        "lr": 3e-3,
        "weight_decay": 1e-4,
        "schedule": "cosine",
        "warmup_epochs": 0.5,
        "clip_grad_norm": 1.0,
    },
}
"""Training recipes by name: the values a recipe gives the :class:`TrainingConfig` fields not set explicitly.
``tutorial`` is the field defaults (the Covalent tutorial's settings); ``aelab`` is the recipe of the ``res-*``
presets, chosen on the Fashion-MNIST validation split within conv-64's training time (see BENCHMARKS.md)."""


def recipe_of(model: ModelConfig, training: dict[str, Any]) -> dict[str, Any]:
    """The training fields of a run: ``training`` (the fields set explicitly) over the defaults of its recipe:
    ``training['recipe']`` when set, else the preset's own (:attr:`aelab.config.presets.Preset.recipe`), else
    tutorial; a preset's own training fields (:attr:`aelab.config.presets.Preset.training`) come between the
    two when it trains with its own recipe."""
    preset = PRESETS.get(model.preset) if model.preset else None
    name = training.get("recipe") or (preset.recipe if preset else "tutorial")
    if name not in RECIPES:
        return dict(training)  # validation names the bad recipe
    own = preset.training if preset and preset.recipe == name else {}
    return {**RECIPES[name], **own, **training}
