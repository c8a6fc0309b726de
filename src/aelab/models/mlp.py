"""Fully-connected encoders and decoders from an :class:`~aelab.config.MLPSpec`."""

from __future__ import annotations

import math

from torch import nn

from aelab.config import MLPSpec
from aelab.models.layers import activation


def _stack(sizes: list[int], act: str, batchnorm: bool, dropout: float, last_act: str) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            if batchnorm:
                layers.append(nn.BatchNorm1d(n_out))
            layers += activation(act)
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        else:
            layers += activation(last_act)
    return layers


def build_mlp(spec: MLPSpec, input_shape: tuple[int, int, int]) -> tuple[nn.Sequential, nn.Sequential, tuple]:
    """Encoder, decoder and code shape for images of ``input_shape`` ``(C, H, W)``.

    The encoder flattens ``(N, C, H, W)`` to ``(N, C*H*W)``; the decoder unflattens its output back.
    """
    n_in = math.prod(input_shape)
    dec_hidden = list(reversed(spec.hidden)) if spec.decoder == "mirror" else list(spec.decoder)
    encoder = nn.Sequential(
        nn.Flatten(1),
        *_stack(
            [n_in, *spec.hidden, spec.code_size], spec.activation, spec.batchnorm, spec.dropout, spec.code_activation
        ),
    )
    decoder = nn.Sequential(
        *_stack(
            [spec.code_size, *dec_hidden, n_in], spec.activation, spec.batchnorm, spec.dropout, spec.output_activation
        ),
        nn.Unflatten(1, tuple(input_shape)),
    )
    return encoder, decoder, (spec.code_size,)
