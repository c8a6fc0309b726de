"""One configuration schema for the Python API, the CLI and YAML files.

Every config is a pydantic model that forbids unknown keys. :func:`parse_config` turns a mapping (from YAML
or from CLI flags) into a validated config, and turns pydantic's errors into one :class:`ConfigError` line
that names the key and what is allowed, e.g.::

    training.optimizer: got 'adamw'; allowed: 'adam', 'sgd'
    unknown key 'training.lrr'; allowed keys here: epochs, batch_size, optimizer, lr, ...

One YAML dialect, the experiment (:class:`ExperimentConfig`); ``aelab compare``, ``aelab train`` and
``aelab run`` all read it::

    name: my-experiment                  # folder under the runs folder (optional)
    seed: 0
    data: {name: fashion-mnist, val_fraction: 0.05}
    training: {epochs: 50, batch_size: 64, lr: 1.0e-3}
    model: linear-3                      # the default model: a preset name or {preset|spec, sparsity, ...}
    models: [linear-3, conv-64]          # one run per model (the compare form)
    runs: [{seed: 1}, {training: {lr: 3.0e-4}}]     # overrides per run
    grid: {training.lr: [1.0e-3, 3.0e-4]}            # every combination, crossed with models and runs

Each run resolves to one :class:`RunConfig`. Every field below has a docstring: it is the field's
``--help`` text in the CLI (see :mod:`aelab.cli`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Optional, TypeVar, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aelab.errors import ConfigError

DATASET_NAMES = ("fashion-mnist", "mnist", "cifar10", "digits", "folder", "array")
PRESET_RECIPES = {"linear-3": "tutorial", "linear-10": "tutorial", "conv-64": "tutorial", "cifar-conv": "tutorial",
                  "fc-64": "tutorial", "conv-pool": "tutorial", "res-2": "aelab", "res-3": "aelab",
                  "res-10": "aelab", "res-16": "aelab", "res-32": "aelab", "res-64": "aelab",
                  "vae-2": "aelab", "vae-conv-16": "aelab", "cvae-conv-16": "aelab", "vqvae-conv": "aelab"}
"""Each preset of :mod:`aelab.models.presets` (which checks that its table has exactly these names) and the
training recipe it gets by default (see :data:`RECIPES`)."""
PRESET_NAMES = tuple(PRESET_RECIPES)
PRESET_GENERATIVE: dict[str, dict[str, dict[str, Any]]] = {
    "vae-2": {"variational": {}}, "vae-conv-16": {"variational": {}},
    "cvae-conv-16": {"variational": {"conditional": True}}, "vqvae-conv": {"quantizer": {}}}
"""The generative presets' ``variational`` / ``quantizer`` settings (fields of :class:`VariationalConfig` /
:class:`QuantizerConfig` that differ from their defaults). A model config that names such a preset and gives
some of these fields gets the preset's values for the rest, at validation time, so a stored config is complete."""
FRONTIER_CODE_SIZES = (2, 3, 10, 16, 32, 64)
"""The code sizes ``aelab frontier`` trains aelab's presets (``res-<size>``) and PCA at."""
COMPARE_PRESETS = ("linear-3", "conv-64")
"""What ``aelab compare`` trains when it is not told: the Covalent tutorial's linear and conv autoencoders."""
ANOMALY_PRESET = "conv-64"
"""What ``aelab anomaly`` trains (once per normal class) when it is not told."""
Activation = Literal["relu", "leaky_relu", "tanh", "sigmoid", "gelu", "silu", "elu", "identity"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)


def flag(name: str) -> dict:
    """Field metadata: the CLI flag of a field when it is not the field's own name (``--dataset`` for
    ``data.name``)."""
    return {"json_schema_extra": {"flag": name}}


# ----------------------------------------------------------------------------------------------- data
class DataConfig(_Strict):
    """Which images to train and evaluate on, and how to split them."""

    name: str = Field("fashion-mnist", **flag("dataset"))
    """Dataset: one of fashion-mnist, mnist, cifar10, digits, folder (images under ``data_dir``), array (vector
    data: the .npy/.npz/.csv file ``data_dir``, standardized with the training split's mean and std)."""
    data_dir: Optional[Path] = None
    """Where the files are (for array: the file). Searched first; then $AELAB_DATA or ~/.cache/aelab; then system
    copies."""
    label_column: str = "label"
    """array from a CSV: the column holding class labels (no labels if the header has no such column)."""
    val_fraction: float = Field(0.05, ge=0.0, lt=1.0)
    """Share of the training split held out for validation, chosen by the run's seed."""
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    """Share held out as test set for datasets without an official test split (digits, folder, array)."""
    train_limit: Optional[int] = Field(None, ge=1)
    """Use only the first N training images (before the validation split); None = all."""
    test_limit: Optional[int] = Field(None, ge=1)
    """Use only the first N test images; None = all."""
    resize: Optional[tuple[int, int]] = None
    """(height, width) to resize folder images to; required when they differ in size."""
    grayscale: bool = False
    """Convert folder images to one channel."""
    download: bool = True
    """Let torchvision download the dataset when no local copy is found and a network is there."""
    normal_classes: Optional[list[Annotated[int, Field(ge=0)]]] = Field(None, **flag("normal-class"))
    """One-class training (anomaly detection): train and validate only on these class indices (CLI: 0 or
    0,3); the test split keeps every class, and the run reports ROC-AUC of normal vs the other classes."""

    def split_key(self, seed: int) -> str:
        """Identifies the images and splits a run sees: this config and the seed that draws the splits."""
        return f"{self.model_dump_json()}|{seed}"

    @field_validator("name")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        if v not in DATASET_NAMES:
            raise ValueError(f"got {v!r}; allowed: {', '.join(DATASET_NAMES)}")
        return v

    @field_validator("normal_classes", mode="before")
    @classmethod
    def _class_list(cls, v):
        if isinstance(v, int) and not isinstance(v, bool):
            return [v]
        if isinstance(v, str):
            try:
                return [int(p) for p in v.split(",") if p.strip()]
            except ValueError:
                raise ValueError(f"got {v!r}; allowed: class indices, e.g. 0 or 0,3") from None
        return v

    @field_validator("normal_classes")
    @classmethod
    def _some_classes(cls, v):
        if v is not None and not v:
            raise ValueError("got an empty list; allowed: one or more class indices, e.g. 0 or 0,3")
        return sorted(set(v)) if v is not None else v

    @field_validator("resize")
    @classmethod
    def _positive_size(cls, v):
        if v is not None and (v[0] < 1 or v[1] < 1):
            raise ValueError(f"got {v}; allowed: two positive integers (height, width)")
        return v


# --------------------------------------------------------------------------------------------- models
class MLPSpec(_Strict):
    """A fully-connected autoencoder: input (C*H*W) -> hidden... -> code -> hidden... -> input.

    ::

        x (N,C,H,W) -> flatten -> [Linear -> act]*len(hidden) -> Linear -> code_act -> z (N, code_size)
        z -> [Linear -> act]* -> Linear -> output_act -> unflatten -> x_hat (N,C,H,W)
    """

    type: Literal["mlp"] = "mlp"
    """Spec kind: mlp."""
    hidden: list[Annotated[int, Field(ge=1)]] = [128, 64, 12]
    """Encoder hidden layer sizes, input side first."""
    code_size: int = Field(3, ge=1)
    """Size of the code (latent) vector."""
    decoder: Union[Literal["mirror"], list[Annotated[int, Field(ge=1)]]] = "mirror"
    """Decoder hidden sizes, code side first; 'mirror' reverses ``hidden``."""
    activation: Activation = "relu"
    """Activation after each hidden layer."""
    code_activation: Activation = "identity"
    """Applied to the code (end of the encoder); sigmoid gives codes in (0, 1)."""
    output_activation: Activation = "sigmoid"
    """Applied to the reconstruction; sigmoid keeps it in [0, 1]."""
    batchnorm: bool = False
    """BatchNorm1d after each hidden Linear (before the activation)."""
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout after each hidden activation."""


class ConvLayerSpec(_Strict):
    """One encoder stage: Conv2d(channels, kernel, stride, padding) [-> act] [-> MaxPool2d(pool)]."""

    channels: int = Field(ge=1)
    """Output channels."""
    kernel: int = Field(3, ge=1)
    """Square kernel size."""
    stride: int = Field(1, ge=1)
    """Stride."""
    padding: int = Field(0, ge=0)
    """Zero padding on each side."""
    pool: int = Field(1, ge=1)
    """Max-pooling window and stride after the conv; 1 = none."""


class DeconvLayerSpec(_Strict):
    """One decoder stage: ConvTranspose2d(channels, kernel, stride, padding, output_padding)."""

    channels: int = Field(ge=1)
    """Output channels."""
    kernel: int = Field(3, ge=1)
    """Square kernel size."""
    stride: int = Field(1, ge=1)
    """Stride."""
    padding: int = Field(0, ge=0)
    """Padding removed from each side of the output."""
    output_padding: int = Field(0, ge=0)
    """Extra rows/columns added on one side so the size comes back exactly."""


class ConvSpec(_Strict):
    """A convolutional encoder with a mirrored ConvTranspose decoder, an explicit one, or an FC one."""

    type: Literal["conv"] = "conv"
    """Spec kind: conv."""
    layers: list[ConvLayerSpec] = Field(min_length=1)
    """Encoder stages, input side first."""
    decoder: Union[Literal["mirror", "fc"], list[DeconvLayerSpec]] = "mirror"
    """'mirror': ConvTranspose layers mirroring ``layers``; 'fc': flatten -> Linear(s) -> image;
    or an explicit list of ConvTranspose stages (the last one must output the image channels)."""
    fc_hidden: list[Annotated[int, Field(ge=1)]] = []
    """Hidden sizes of the fully-connected decoder (decoder='fc')."""
    activation: Activation = "relu"
    """After each encoder stage but the last, and each decoder stage but the last."""
    decoder_activation: Optional[Activation] = None
    """Overrides ``activation`` in the decoder."""
    code_activation: Activation = "identity"
    """Applied to the code (end of the encoder)."""
    output_activation: Activation = "sigmoid"
    """Applied to the reconstruction; sigmoid keeps it in [0, 1]."""
    batchnorm: bool = False
    """BatchNorm2d after each hidden conv (before the activation)."""


class ResSpec(_Strict):
    """aelab's residual convolutional autoencoder: strided convs down to a small map, residual blocks at each
    resolution, a linear bottleneck to a code vector of any size, and the mirror image back up
    (see :mod:`aelab.models.resnet` for the sketch).
    """

    type: Literal["res"] = "res"
    """Spec kind: res."""
    channels: list[Annotated[int, Field(ge=1)]] = Field([32, 64], min_length=1)
    """Channels per resolution stage, input side first; each stage halves the height and width (a 28x28 image
    with two stages becomes a 7x7 map)."""
    blocks: Union[Annotated[int, Field(ge=0)], list[Annotated[int, Field(ge=0)]]] = 0
    """Residual blocks per stage (one number for every stage, or one per stage), in the encoder and the
    decoder alike; 0 = a plain strided-conv stage."""
    code_size: int = Field(64, ge=1)
    """Size of the code (latent) vector: a Linear layer from the last map."""
    hidden: list[Annotated[int, Field(ge=1)]] = []
    """Fully-connected layers (Linear + activation) between the flattened last map and the code, mirrored in the
    decoder; [] = one Linear layer each way."""
    norm: Literal["batch", "group", "none"] = "batch"
    """Normalization before each activation: BatchNorm2d, GroupNorm (8 groups or fewer) or none."""
    activation: Activation = "silu"
    """Activation after each normalization."""
    upsample: Literal["transpose", "nearest", "pixel_shuffle"] = "transpose"
    """How the decoder doubles the size: ConvTranspose2d (4x4, stride 2), nearest-neighbour upsampling + 3x3
    conv, or a 3x3 conv to 4x the channels + PixelShuffle(2)."""
    code_activation: Activation = "identity"
    """Applied to the code (end of the encoder)."""
    output_activation: Activation = "sigmoid"
    """Applied to the reconstruction; sigmoid keeps it in [0, 1]."""

    @model_validator(mode="after")
    def _blocks_per_stage(self) -> "ResSpec":
        if isinstance(self.blocks, list) and len(self.blocks) != len(self.channels):
            raise ValueError(f"blocks: got {len(self.blocks)} numbers for {len(self.channels)} stages; allowed: one "
                             "number, or one per entry of channels")
        return self

    @property
    def stage_blocks(self) -> list[int]:
        """Residual blocks of each stage."""
        return list(self.blocks) if isinstance(self.blocks, list) else [self.blocks] * len(self.channels)


class VariationalConfig(_Strict):
    """Make the autoencoder a variational one (Kingma & Welling 2014, "Auto-Encoding Variational Bayes").

    The encoder outputs a mean and a log-variance per latent unit; training samples ``z = mu + sigma * eps``
    (reparameterization) and minimizes the negative ELBO in nats per image: the decoder's negative
    log-likelihood of the image plus ``beta`` times KL(q(z|x) || N(0, I)). ``beta`` > 1 is the beta-VAE
    (Higgins et al. 2017); the warm-up ramps beta up from 0 (Bowman et al. 2016; cyclical: Fu et al. 2019);
    free bits keep each unit's KL at no less than ``free_bits`` nats in the optimized loss (Kingma et al. 2016).
    """

    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    """Decoder likelihood p(x|z): bernoulli (pixels in [0, 1] as probabilities; the common choice for MNIST-like
    data) or gaussian (mean = the decoder's output, standard deviation ``sigma``)."""
    sigma: Optional[float] = Field(None, gt=0)
    """gaussian: the fixed standard deviation in pixel units, e.g. 0.1; None = learned (one value for all pixels)."""
    beta: float = Field(1.0, ge=0)
    """Weight of the KL term (1 = the VAE; > 1 the beta-VAE), >= 0."""
    warmup_epochs: int = Field(0, ge=0)
    """KL warm-up: beta ramps linearly from 0 to ``beta`` over this many epochs (per cycle with the cyclical
    schedule); 0 = none."""
    schedule: Literal["linear", "cyclical"] = "linear"
    """linear (one ramp, then ``beta``) or cyclical (the training split into ``cycles`` cycles, each ramping over
    its first ``warmup_epochs`` epochs)."""
    cycles: int = Field(4, ge=1)
    """Cycles of the cyclical schedule."""
    free_bits: float = Field(0.0, ge=0)
    """Free bits per latent unit (nats): the optimized KL term uses max(KL_j, free_bits) for each unit j, with
    KL_j averaged over the batch; 0 = off. The reported ELBO always uses the true KL."""
    conditional: bool = False
    """Conditional VAE (Sohn et al. 2015): the one-hot class label enters the encoder (as extra input channels)
    and the decoder (appended to the code); generation of a chosen class. Needs labelled data."""

    @model_validator(mode="after")
    def _sigma_needs_gaussian(self) -> "VariationalConfig":
        if self.likelihood == "bernoulli" and self.sigma is not None:
            raise ValueError("sigma: a bernoulli likelihood has no sigma; allowed: set likelihood: gaussian, or "
                             "leave sigma out")
        return self


class QuantizerConfig(_Strict):
    """Make the autoencoder a VQ-VAE (van den Oord et al. 2017, "Neural Discrete Representation Learning").

    Each position of the encoder's last feature map (D channels) is replaced by the nearest of
    ``codebook_size`` codebook vectors; gradients pass straight through to the encoder. The loss adds the
    codebook term ||sg[z_e] - e||^2 (unless the codebook follows an EMA of its assigned vectors) and
    ``commitment`` * ||z_e - sg[e]||^2. The code is a grid of indices: exactly h * w * log2(K) bits per image.
    """

    codebook_size: int = Field(256, ge=2)
    """K, the number of codebook vectors (>= 2); each index costs log2(K) bits."""
    commitment: float = Field(0.25, ge=0)
    """beta, the weight of the commitment loss (0.25 in the paper)."""
    ema: bool = True
    """Update the codebook as an exponential moving average of the encoder vectors assigned to each entry
    (the paper's appendix; Razavi et al. 2019) instead of by gradients."""
    decay: float = Field(0.99, gt=0, lt=1)
    """EMA decay of the codebook and of the usage counts."""
    restart_threshold: float = Field(1.0, ge=0)
    """Dead-code restarts: an entry whose EMA usage falls below this many assignments per batch is moved onto
    a random encoder vector of the batch (training only); 0 = no restarts."""


ModelSpec = Annotated[Union[MLPSpec, ConvSpec, ResSpec], Field(discriminator="type")]


def _spec_string(value: Any, field: str, kinds: dict[str, list[str]]) -> Any:
    """Parse the short CLI form 'kind:a:b' into a mapping using the names in ``kinds[kind]``."""
    if not isinstance(value, str):
        return value
    kind, *args = value.split(":")
    if kind not in kinds:
        raise ValueError(f"got {value!r}; allowed kinds: {', '.join(kinds)}")
    names = kinds[kind]
    if len(args) != len(names):
        form = ":".join([kind, *(n.upper() for n in names)])
        raise ValueError(f"got {value!r}; the form is {form}")
    out: dict[str, Any] = {"kind": kind}
    for name, arg in zip(names, args):
        try:
            out[name] = int(arg) if name == "k" and arg.isdigit() else float(arg)
        except ValueError:
            raise ValueError(f"got {value!r}; {name} must be a number") from None
    if kind == "lifetime" and isinstance(out.get("k"), float):
        out["fraction"] = out.pop("k")
    return out


class SparsityConfig(_Strict):
    """Sparsity of the code (Jian Zhong, "Autoencoders with PyTorch: Full Code Guide").

    * ``topk``: keep the ``k`` largest units of each sample's code, zero the rest (CLI ``topk:K``).
    * ``lifetime``: winner-take-all across the batch: keep each unit's ``k`` largest values (or the top
      ``fraction`` of the batch), zero the rest; training only (CLI ``lifetime:K`` or ``lifetime:0.05``).
    * ``l1``: add ``weight * mean(|z|)`` to the loss (CLI ``l1:WEIGHT``).
    * ``kl``: add ``weight * mean_j KL(rho || rho_hat_j)``, rho_hat_j the batch mean of unit j; needs codes in
      (0, 1), e.g. ``code_activation: sigmoid`` (CLI ``kl:RHO:WEIGHT``).
    """

    kind: Literal["topk", "lifetime", "l1", "kl"]
    """topk, lifetime, l1 or kl."""
    k: Optional[int] = Field(None, ge=1)
    """Units kept per sample (topk) or per unit across the batch (lifetime)."""
    fraction: Optional[float] = None
    """Share of the batch kept per unit (lifetime), in (0, 1]."""
    weight: Optional[float] = Field(None, gt=0)
    """The penalty's lambda (l1, kl), > 0."""
    rho: Optional[float] = None
    """Target mean activation of each unit (kl), in (0, 1)."""

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return _spec_string(value, "sparsity", {"topk": ["k"], "lifetime": ["k"], "l1": ["weight"],
                                                "kl": ["rho", "weight"]})

    @model_validator(mode="after")
    def _complete(self) -> "SparsityConfig":
        if self.kind == "topk" and self.k is None:
            raise ValueError("topk needs k, the number of code units kept per sample (topk:16)")
        if self.kind == "lifetime":
            if (self.k is None) == (self.fraction is None):
                raise ValueError("lifetime needs k (a count, lifetime:10) or a fraction of the batch (lifetime:0.05)")
            if self.fraction is not None and not 0 < self.fraction <= 1:
                raise ValueError(f"lifetime fraction: got {self.fraction}; allowed: (0, 1]")
        if self.kind in ("l1", "kl") and self.weight is None:
            raise ValueError(f"{self.kind} needs weight, the penalty's lambda > 0")
        if self.kind == "kl" and (self.rho is None or not 0 < self.rho < 1):
            raise ValueError(f"kl rho: got {self.rho}; allowed: 0 < rho < 1")
        return self


class CorruptionConfig(_Strict):
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
        return _spec_string(value, "corruption", {"gaussian": ["std"], "masking": ["fraction"],
                                                  "salt_pepper": ["fraction"]})

    @model_validator(mode="after")
    def _complete(self) -> "CorruptionConfig":
        if self.kind == "gaussian" and (self.std is None or self.std < 0):
            raise ValueError(f"gaussian std: got {self.std}; allowed: std >= 0 (gaussian:0.5)")
        if self.kind != "gaussian" and (self.fraction is None or not 0 < self.fraction <= 1):
            raise ValueError(f"{self.kind} fraction: got {self.fraction}; allowed: (0, 1]")
        return self


class ModelConfig(_Strict):
    """A preset by name, or a spec. Exactly one of the two."""

    preset: Optional[str] = None
    """A preset name (see 'aelab models')."""
    spec: Optional[ModelSpec] = None
    """Your own architecture: {type: mlp, ...}, {type: conv, ...} or {type: res, ...}."""
    name: Optional[str] = None
    """Display name in tables and figures; defaults to the preset name or the spec type."""
    sparsity: Optional[SparsityConfig] = None
    """Code sparsity: topk:K, lifetime:K or lifetime:FRACTION, l1:WEIGHT, kl:RHO:WEIGHT."""
    tied: bool = False
    """Tie each decoder Linear to the transpose of its mirror encoder Linear (symmetric MLPs only)."""
    code_activation: Optional[Activation] = None
    """Overrides the code activation of the preset or spec (e.g. sigmoid for KL sparsity)."""
    variational: Optional[VariationalConfig] = None
    """A variational autoencoder (VAE, beta-VAE, conditional VAE): {beta: 4, warmup_epochs: 10, ...}; on a
    generative preset, the fields given replace the preset's."""
    quantizer: Optional[QuantizerConfig] = None
    """A vector-quantized autoencoder (VQ-VAE) on a conv spec: {codebook_size: 256, commitment: 0.25, ...}; on a
    generative preset, the fields given replace the preset's."""

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"preset": value}
        if isinstance(value, dict) and value.get("preset") in PRESET_GENERATIVE:
            value = dict(value)
            for key, base in PRESET_GENERATIVE[value["preset"]].items():
                given = value.get(key)
                if isinstance(given, BaseModel):
                    given = given.model_dump(exclude_unset=True)
                if isinstance(given, dict):  # the preset's settings, with the fields given over them
                    value[key] = {**base, **given}
        return value

    @model_validator(mode="after")
    def _one_of(self) -> "ModelConfig":
        if (self.preset is None) == (self.spec is None):
            raise ValueError("give exactly one of 'preset' or 'spec'")
        if self.preset is not None and self.preset not in PRESET_NAMES:
            raise ValueError(f"preset: got {self.preset!r}; allowed: {', '.join(PRESET_NAMES)}")
        if self.variational is not None and self.quantizer is not None:
            raise ValueError("give at most one of 'variational' (VAE) or 'quantizer' (VQ-VAE)")
        if (self.variational is not None or self.quantizer is not None) and (self.sparsity or self.tied):
            raise ValueError("sparsity and tied weights are for deterministic autoencoders; allowed with "
                             "variational / quantizer: neither")
        return self

    @property
    def label(self) -> str:
        """``name``, or the preset/spec type followed by what was added to it (e.g. ``fc-64 topk:16 tied``)."""
        if self.name:
            return self.name
        parts = [self.preset or self.spec.type]  # type: ignore[union-attr]
        if self.code_activation:
            parts.append(f"code:{self.code_activation}")
        if self.sparsity is not None:
            sp = self.sparsity
            arg = {"topk": sp.k, "lifetime": sp.k if sp.k is not None else sp.fraction, "l1": sp.weight,
                   "kl": f"{sp.rho}:{sp.weight}"}[sp.kind]
            parts.append(f"{sp.kind}:{arg}")
        if self.tied:
            parts.append("tied")
        preset = PRESET_GENERATIVE.get(self.preset or "", {})
        for key, kind, cls in (("variational", "vae", VariationalConfig), ("quantizer", "vq", QuantizerConfig)):
            given = getattr(self, key)
            if given is None:
                continue
            if key not in preset:
                parts.insert(1, kind)
            base = cls(**preset.get(key, {}))  # what the preset (or the field defaults) would give
            parts += [f"{k}:{getattr(given, k):g}" if isinstance(getattr(given, k), float) else f"{k}:{getattr(given, k)}"
                      for k in cls.model_fields if getattr(given, k) != getattr(base, k)]
        return " ".join(str(p) for p in parts)


# ------------------------------------------------------------------------------------------- training
class TrainingConfig(_Strict):
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
    """bf16 autocast (CUDA only; ignored with a warning on CPU)."""
    compile: bool = False
    """torch.compile the training step (GPU)."""
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

    @model_validator(mode="after")
    def _warmup_inside_training(self) -> "TrainingConfig":
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"warmup_epochs: got {self.warmup_epochs:g} but the training lasts {self.epochs} "
                             f"epochs; allowed: 0 <= warmup_epochs < epochs")
        return self


RECIPES: dict[str, dict[str, Any]] = {
    "tutorial": {},
    "aelab": {"epochs": 20, "batch_size": 128, "optimizer": "adamw", "lr": 3e-3, "weight_decay": 1e-4,
              "schedule": "cosine", "warmup_epochs": 0.5, "clip_grad_norm": 1.0},
}
"""Training recipes by name: the values a recipe gives the :class:`TrainingConfig` fields not set explicitly.
``tutorial`` is the field defaults (the Covalent tutorial's settings); ``aelab`` is the recipe of the ``res-*``
presets, chosen on the Fashion-MNIST validation split within conv-64's training time (see BENCHMARKS.md)."""


def recipe_of(model: "ModelConfig", training: dict[str, Any]) -> dict[str, Any]:
    """The training fields of a run: ``training`` (the fields set explicitly) over the defaults of its recipe:
    ``training['recipe']`` when set, else the preset's own (:data:`PRESET_RECIPES`), else tutorial."""
    name = training.get("recipe") or (PRESET_RECIPES.get(model.preset, "tutorial") if model.preset else "tutorial")
    if name not in RECIPES:
        return dict(training)  # validation names the bad recipe
    return {**RECIPES[name], **training}


class RunConfig(_Strict):
    """One run: one model trained on one dataset with one training setting and seed."""

    name: Optional[str] = None
    """Display name of the run; defaults to the model's label."""
    seed: int = 0
    """Seed for the splits, the initial weights and the batch order."""
    data: DataConfig = DataConfig()
    """Which images, and how they are split."""
    model: ModelConfig = ModelConfig(preset="linear-3")
    """The autoencoder."""
    training: TrainingConfig = TrainingConfig()
    """How it is trained."""

    @property
    def label(self) -> str:
        """The run's display name: ``name`` or the model's label."""
        return self.name or self.model.label


class ExperimentConfig(_Strict):
    """A set of runs: shared defaults, and the runs as a list of models, a list of overrides, a grid, or a
    mix (crossed). ``aelab compare`` is the ``models`` form; ``aelab train`` an experiment with one run."""

    name: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Experiment folder under the runs folder; default: the file's name, or the command and a hash of its
    runs (so the same command finds its runs again)."""
    seed: int = 0
    """Seed for the splits, the initial weights and the batch order."""
    data: DataConfig = DataConfig()
    """Which images, and how they are split (shared by every run)."""
    training: TrainingConfig = TrainingConfig()
    """How the runs are trained (shared by every run)."""
    model: ModelConfig = ModelConfig(preset="linear-3")
    """The model of runs that name none: a preset name or a mapping (preset or spec, sparsity, tied...)."""
    models: list[ModelConfig] = []
    """One run per model, all on the same data and training (the compare form)."""
    runs: list[dict[str, Any]] = []
    """Overrides per run, each a mapping like the defaults (name, seed, data, model, training)."""
    grid: dict[str, list[Any]] = {}
    """Dotted config keys -> lists of values; every combination is a run (crossed with models and runs)."""
    set: dict[str, Any] = {}
    """Dotted config keys -> values set on every run after everything else (what CLI flags and --set write)."""


class RunOptions(_Strict):
    """How an experiment is executed and reported (not part of any run's config or id)."""

    runs_dir: Path = Path("runs")
    """Runs folder: the run store (aelab.sqlite), experiment folders and run folders."""
    executor: Literal["inline", "local", "ray"] = "inline"
    """inline (this process, one run after another), local (one process per run, --workers at a time) or ray."""
    workers: Optional[int] = Field(None, ge=1)
    """Runs in parallel with the local or ray executor (default: one per core, at most the runs to do)."""
    address: Optional[str] = None
    """Ray cluster address (default: start a local Ray)."""
    retry_failed: bool = False
    """Run failed runs again (finished runs are never re-run)."""
    tensorboard: bool = False
    """Write TensorBoard event files into each run folder."""
    analyses: bool = Field(True, **flag("analysis"))
    """Run the analyses (interpolation, latent map, ..., probes) of every run for the report."""
    progress: bool = True
    """Progress bars (inline executor)."""


# ---------------------------------------------------------------------------------------- parsing
C = TypeVar("C", bound=BaseModel)


def _format_error(err: dict, model_cls: type[BaseModel]) -> str:
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("function-", "tagged-union")))
    kind = err["type"]
    if kind == "extra_forbidden":
        parent_loc, key = err["loc"][:-1], err["loc"][-1]
        allowed = _fields_at(model_cls, parent_loc)
        where = f"{'.'.join(map(str, parent_loc))}." if parent_loc else ""
        return f"unknown key '{where}{key}'; allowed keys here: {', '.join(allowed)}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if kind in ("literal_error", "enum"):
        expected = err.get("ctx", {}).get("expected", "")
        return f"{loc}: got {err.get('input')!r}; allowed: {expected}"
    got = err.get("input")
    if kind == "value_error" or isinstance(got, (dict, list)):
        return f"{loc}: {msg}" if loc else msg
    return f"{loc}: {msg} (got {got!r})"


def _fields_at(model_cls: type[BaseModel], loc: tuple) -> list[str]:
    cls: Any = model_cls
    for part in loc:
        if isinstance(part, int) or cls is None:
            continue
        field = cls.model_fields.get(part) if hasattr(cls, "model_fields") else None
        if field is None:
            if part in ("mlp", "conv", "res"):
                cls = {"mlp": MLPSpec, "conv": ConvSpec, "res": ResSpec}[part]
            continue
        cls = _model_type(field.annotation)
    return list(cls.model_fields) if hasattr(cls, "model_fields") else []


def _model_type(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_type(arg)
        if found is not None:
            return found
    return None


def parse_config(model_cls: type[C], data: dict, source: str = "config") -> C:
    """Validate ``data`` against ``model_cls``.

    Raises:
        ConfigError: one line naming the first bad key (``training.lr: ...``) and what is allowed.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(data).__name__}")
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_format_error(exc.errors()[0], model_cls)}") from None


def load_yaml(path: Path | str, model_cls: type[C]) -> C:
    """Read a YAML config file into ``model_cls``.

    Raises:
        ConfigError: the file is missing, is not YAML, or has a bad key or value.
    """
    return parse_config(model_cls, read_yaml_mapping(path), source=str(path))


def read_yaml_mapping(path: Path | str) -> dict:
    """The mapping in a YAML file.

    Raises:
        ConfigError: the file is missing, is not YAML, or does not hold a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys to values")
    return data


def check_key(key: str, root: type[BaseModel] = RunConfig) -> None:
    """Check that the dotted ``key`` (``training.lr``) names a field of ``root`` (or a field inside one).

    Raises:
        ConfigError: the key names no field; the message lists the fields allowed where it went wrong.
    """
    classes: list[Any] = [root]
    parts = key.split(".")
    for i, part in enumerate(parts):
        fields = {name: f for cls in classes for name, f in cls.model_fields.items()}
        if part not in fields:
            where = ".".join(parts[:i]) or "the top level"
            allowed = ", ".join(fields) if fields else "nothing below it"
            raise ConfigError(f"key {key!r} is not a config field; allowed at {where}: {allowed}")
        classes = _models_in(fields[part].annotation)


def _models_in(annotation: Any) -> list[type]:
    """The pydantic model classes inside a (possibly Optional / Union / Annotated / list) annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        found += _models_in(arg)
    return found


def set_dotted(data: dict, key: str, value: Any) -> None:
    """``data[a][b][c] = value`` for ``key`` ``a.b.c``, creating (or replacing non-mapping) parents."""
    *parents, last = key.split(".")
    for p in parents:
        if not isinstance(data.get(p), dict):
            data[p] = {"preset": data[p]} if p == "model" and isinstance(data.get(p), str) else {}
        data = data[p]
    data[last] = value


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"training.lr=3e-4"`` -> ``("training.lr", 0.0003)``: the value is read as YAML (numbers, true/false,
    null, lists, strings), and the key is checked against :class:`RunConfig`.

    Raises:
        ConfigError: no ``=``, or a key that is not a config field.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set: got {text!r}; the form is KEY=VALUE, e.g. training.lr=3e-4")
    check_key(key)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key, value


def dump_yaml(config: BaseModel) -> str:
    """The config as YAML text (round-trips through :func:`load_yaml`). An experiment's ``training`` keeps only
    the fields set explicitly, so its runs get the same recipe defaults when the file is run again."""
    data = config.model_dump(mode="json", exclude_none=True)
    if isinstance(config, ExperimentConfig):
        data["training"] = config.training.model_dump(mode="json", exclude_unset=True, exclude_none=True)
        if not data["training"]:
            del data["training"]
    return yaml.safe_dump(data, sort_keys=False)
