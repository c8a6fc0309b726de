"""Architecture specs: a fully-connected (:class:`MLPSpec`), convolutional (:class:`ConvSpec`) or residual
(:class:`ResSpec`) encoder with its decoder. A spec is the body every model family is built on."""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import Field, model_validator

from aelab.config.base import Activation, Strict


class MLPSpec(Strict):
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


class ConvLayerSpec(Strict):
    """One encoder stage: ``Conv2d(channels, kernel, stride, padding)``, then an activation and ``MaxPool2d(pool)``
    when asked."""

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


class DeconvLayerSpec(Strict):
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


class ConvSpec(Strict):
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


class ResSpec(Strict):
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
    def _blocks_per_stage(self) -> ResSpec:
        if isinstance(self.blocks, list) and len(self.blocks) != len(self.channels):
            raise ValueError(
                f"blocks: got {len(self.blocks)} numbers for {len(self.channels)} stages; allowed: one "
                "number, or one per entry of channels"
            )
        return self

    @property
    def stage_blocks(self) -> list[int]:
        """Residual blocks of each stage."""
        return list(self.blocks) if isinstance(self.blocks, list) else [self.blocks] * len(self.channels)


ModelSpec = Annotated[Union[MLPSpec, ConvSpec, ResSpec], Field(discriminator="type")]
SPEC_CLASSES = {"mlp": MLPSpec, "conv": ConvSpec, "res": ResSpec}
"""Spec kind -> its class (the ``type`` key of a spec)."""
