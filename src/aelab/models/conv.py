"""Convolutional encoders and decoders from a :class:`~aelab.config.ConvSpec`.

The mirrored decoder undoes the encoder stage by stage, last stage first:

* a strided or unpadded conv ``Conv2d(c_in -> c_out, k, s, p)`` becomes
  ``ConvTranspose2d(c_out -> c_in, k, s, p, output_padding)``, with ``output_padding`` chosen so the
  spatial size comes back exactly (e.g. 7 -> 14 with k=3, s=2, p=1 needs output_padding 1);
* a size-preserving conv followed by max-pooling ``pool`` becomes ``ConvTranspose2d(c_out -> c_in,
  kernel=pool, stride=pool)`` (the "Convolutional Autoencoders" post's decoder).
"""

from __future__ import annotations

import math

from torch import nn

from aelab.config import ConvSpec
from aelab.errors import ModelError
from aelab.models.layers import Conv2d, ConvTranspose2d, activation


def _conv_out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def _encoder(spec: ConvSpec, input_shape: tuple[int, int, int]) -> tuple[list[nn.Module], list[tuple]]:
    """The encoder's layers and the shape before each stage (then the code shape).

    Raises:
        ModelError: a stage shrinks the image to nothing.
    """
    c, h, w = input_shape
    enc: list[nn.Module] = []
    shapes = [(c, h, w)]
    n = len(spec.layers)
    for i, layer in enumerate(spec.layers):
        c_in, h_in, w_in = shapes[-1]
        enc.append(Conv2d(c_in, layer.channels, layer.kernel, layer.stride, layer.padding))
        h_out, w_out = (_conv_out(v, layer.kernel, layer.stride, layer.padding) for v in (h_in, w_in))
        last = i == n - 1
        if not last:
            if spec.batchnorm:
                enc.append(nn.BatchNorm2d(layer.channels))
            enc += activation(spec.activation)
        if layer.pool > 1:
            enc.append(nn.MaxPool2d(layer.pool, layer.pool))
            h_out, w_out = h_out // layer.pool, w_out // layer.pool
        if last:
            enc += activation(spec.code_activation)
        if h_out < 1 or w_out < 1:
            raise ModelError(
                f"conv stage {i + 1} (kernel {layer.kernel}, stride {layer.stride}, pool {layer.pool}) "
                f"shrinks a {h_in}x{w_in} input to nothing; input images are {h}x{w}"
            )
        shapes.append((layer.channels, h_out, w_out))
    return enc, shapes


def _mirror(spec: ConvSpec, shapes: list[tuple]) -> list[tuple]:
    """``(c_in, c_out, k, s, p, output_padding)`` of each decoder stage that undoes the encoder, last stage first.

    Raises:
        ModelError: a stage that cannot be mirrored exactly.
    """
    stages = []
    for i in reversed(range(len(spec.layers))):
        layer = spec.layers[i]
        (c_prev, h_prev, w_prev), (c_here, h_here, w_here) = shapes[i], shapes[i + 1]
        if layer.pool > 1:
            if layer.stride != 1 or 2 * layer.padding != layer.kernel - 1:
                raise ModelError(
                    f"conv stage {i + 1}: a mirrored decoder needs pooled stages to keep the size "
                    "(stride 1, padding (kernel-1)/2); use decoder: fc or an explicit decoder"
                )
            k, s, p = layer.pool, layer.pool, 0
        else:
            k, s, p = layer.kernel, layer.stride, layer.padding
        op = h_prev - ((h_here - 1) * s - 2 * p + k)
        op_w = w_prev - ((w_here - 1) * s - 2 * p + k)
        if op != op_w or op < 0 or (op > 0 and op >= s):
            raise ModelError(
                f"conv stage {i + 1} cannot be mirrored exactly (output padding {op}); "
                "use decoder: fc or an explicit decoder"
            )
        stages.append((c_here, c_prev, k, s, p, op))
    return stages


def _fc_decoder(spec: ConvSpec, code_shape: tuple, image: tuple[int, int, int]) -> list[nn.Module]:
    sizes = [math.prod(code_shape), *spec.fc_hidden, math.prod(image)]
    dec: list[nn.Module] = [nn.Flatten(1)]
    for j, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        dec.append(nn.Linear(a, b))
        dec += activation(
            (spec.decoder_activation or spec.activation) if j < len(sizes) - 2 else spec.output_activation
        )
    return dec + [nn.Unflatten(1, image)]


def build_conv(spec: ConvSpec, input_shape: tuple[int, int, int]) -> tuple[nn.Sequential, nn.Sequential, tuple]:
    """Encoder, decoder and code shape ``(C', H', W')`` for images of ``input_shape`` ``(C, H, W)``.

    Raises:
        ModelError: a stage shrinks the image to nothing, or the spec cannot be mirrored.
    """
    enc, shapes = _encoder(spec, input_shape)
    code_shape = shapes[-1]
    if spec.decoder == "fc":
        return nn.Sequential(*enc), nn.Sequential(*_fc_decoder(spec, code_shape, input_shape)), code_shape
    if spec.decoder == "mirror":
        stages = _mirror(spec, shapes)
    else:
        stages, c_in = [], code_shape[0]
        for layer in spec.decoder:
            stages.append((c_in, layer.channels, layer.kernel, layer.stride, layer.padding, layer.output_padding))
            c_in = layer.channels
    dec: list[nn.Module] = []
    for j, (a, b, k, s, p, op) in enumerate(stages):
        dec.append(ConvTranspose2d(a, b, k, stride=s, padding=p, output_padding=op))
        if j < len(stages) - 1:
            if spec.batchnorm:
                dec.append(nn.BatchNorm2d(b))
            dec += activation(spec.decoder_activation or spec.activation)
        else:
            dec += activation(spec.output_activation)
    return nn.Sequential(*enc), nn.Sequential(*dec), code_shape
