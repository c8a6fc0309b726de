"""The body of a model: the encoder and decoder a spec describes, built by :mod:`.mlp`, :mod:`.conv` or
:mod:`.resnet`, and what model families change on a spec (the size of its code)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from aelab.config import ConvSpec, MLPSpec, ResSpec
from aelab.models.conv import build_conv
from aelab.models.mlp import build_mlp
from aelab.models.resnet import build_res

Spec = MLPSpec | ConvSpec | ResSpec
Builder = Callable[..., tuple[nn.Sequential, nn.Sequential, tuple]]
BUILDERS: dict[str, Builder] = {"mlp": build_mlp, "conv": build_conv, "res": build_res}
"""Spec type -> ``builder(spec, input_shape) -> (encoder, decoder, code_shape)``."""


def build_body(spec: Spec, input_shape: tuple[int, int, int]) -> tuple[nn.Sequential, nn.Sequential, tuple]:
    """Encoder, decoder and code shape of ``spec`` for images of ``input_shape`` ``(C, H, W)``.

    Raises:
        ModelError: the spec does not fit the input shape (see each builder).
    """
    return BUILDERS[spec.type](spec, input_shape)


def code_channels(spec: Spec) -> int:
    """The code's channels (a conv spec: its last stage's) or values (mlp, res)."""
    return spec.layers[-1].channels if isinstance(spec, ConvSpec) else spec.code_size


def with_code(spec: Spec, n: int) -> Spec:
    """``spec`` with a code of ``n`` values (conv: ``n`` channels in the last encoder stage) and no code
    activation (a VAE's encoder outputs means and log-variances)."""
    if isinstance(spec, ConvSpec):
        layers = list(spec.layers)
        layers[-1] = layers[-1].model_copy(update={"channels": n})
        return spec.model_copy(update={"layers": layers, "code_activation": "identity"})
    return spec.model_copy(update={"code_activation": "identity", "code_size": n})


def decodes_a_map(spec: Spec) -> bool:
    """True when the spec's code is a feature map decoded by conv layers (what a VQ-VAE quantizes)."""
    return isinstance(spec, ConvSpec) and spec.decoder != "fc"


def ends_in_sigmoid(encoder: nn.Module) -> bool:
    """True when the encoder's last layer is a sigmoid (codes in (0, 1), as the KL sparsity penalty needs)."""
    layers = list(encoder.children()) if isinstance(encoder, nn.Sequential) else [encoder]
    return bool(layers) and isinstance(layers[-1], nn.Sigmoid)
