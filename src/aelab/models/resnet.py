"""aelab's residual convolutional autoencoder, from a :class:`~aelab.config.ResSpec`.

Each stage halves the image with a strided 3x3 conv and adds residual blocks at that size; a Linear layer
maps the last map to a code vector of any size. The decoder is the mirror image. With
``channels=[32, 64], blocks=[0, 1]`` on 1x28x28 images::

    x 1x28x28 -> Conv 3x3 s2 -> 32x14x14 -> norm/act -> Conv 3x3 s2 -> 64x7x7 -> ResBlock -> norm/act
      -> flatten 3136 -> [Linear -> act]* (hidden) -> Linear -> z (code_size)
    z -> [Linear -> act]* -> Linear -> 64x7x7 -> ResBlock -> norm/act -> Up -> 32x14x14 -> norm/act -> Up -> 1x28x28 -> sigmoid

    ResBlock(c):  x + Conv3x3(act(norm(Conv3x3(act(norm(x))))))     (pre-activation, He et al. 2016)
    Up(a -> b):   ConvTranspose 4x4 s2 | nearest x2 + Conv 3x3 | Conv 3x3 to 4b + PixelShuffle(2)

The linear bottleneck is what lets the code size be any number, as in the tutorials' fully-connected codes,
while the convolutions see the image's 2-D structure.

Other image sizes: a res spec (and so every ``res-*`` preset and the generative presets on the res body) builds
for any ``C x H x W`` whose height and width are divisible by ``2 ** len(channels)``. The convolutions and
residual blocks are the same for every size; what changes is the first and last convolution's channels (C) and
the flattened map between the convolutions and the bottleneck: ``channels[-1] * H/2^n * W/2^n`` values, so the
first Linear layer (and its mirror) has more weights on larger images (48x48 RGB with two stages: a 32x12x12
map, 4,608 values, instead of 1,568 for 28x28 grayscale).
"""

from __future__ import annotations

from torch import nn

from aelab.config import ResSpec
from aelab.errors import ModelError
from aelab.models.layers import Conv2d, ConvTranspose2d, activation


def _norm(kind: str, channels: int) -> list[nn.Module]:
    if kind == "batch":
        return [nn.BatchNorm2d(channels)]
    if kind == "group":
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return [nn.GroupNorm(groups, channels)]
    return []


class ResBlock(nn.Module):
    """``x + conv(act(norm(conv(act(norm(x))))))`` with two 3x3 convs that keep ``(N, C, H, W)``."""

    def __init__(self, channels: int, norm: str, act: str) -> None:
        super().__init__()
        first = activation(act)
        for m in first:  # without a norm the first activation sees x itself, which the skip still needs
            if hasattr(m, "inplace"):
                m.inplace = False  # type: ignore[assignment]
        self.body = nn.Sequential(
            *_norm(norm, channels),
            *first,
            Conv2d(channels, channels, 3, padding=1),
            *_norm(norm, channels),
            *activation(act),
            Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x):
        return x + self.body(x)


def _up(kind: str, c_in: int, c_out: int) -> list[nn.Module]:
    if kind == "transpose":
        return [ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)]
    if kind == "nearest":
        return [nn.Upsample(scale_factor=2, mode="nearest"), Conv2d(c_in, c_out, 3, padding=1)]
    return [Conv2d(c_in, 4 * c_out, 3, padding=1), nn.PixelShuffle(2)]


def build_res(spec: ResSpec, input_shape: tuple[int, int, int]) -> tuple[nn.Sequential, nn.Sequential, tuple]:
    """Encoder, decoder and code shape ``(code_size,)`` for images of ``input_shape`` ``(C, H, W)``.

    Raises:
        ModelError: the height or width is not divisible by 2 ** (number of stages).
    """
    c, h, w = input_shape
    n = len(spec.channels)
    if h % 2**n or w % 2**n:
        raise ModelError(
            f"a res model with {n} stages halves the image {n} times, so its height and width must be "
            f"divisible by {2**n}; the images are {h}x{w} (use fewer channels entries, or --resize)"
        )
    blocks, act, norm = spec.stage_blocks, spec.activation, spec.norm
    hc, wc = h // 2**n, w // 2**n
    last = spec.channels[-1]

    enc: list[nn.Module] = []
    c_in = c
    for i, ch in enumerate(spec.channels):
        if i:
            enc += [*_norm(norm, c_in), *activation(act)]
        enc.append(Conv2d(c_in, ch, 3, stride=2, padding=1))
        enc += [ResBlock(ch, norm, act) for _ in range(blocks[i])]
        c_in = ch
    sizes = [last * hc * wc, *spec.hidden, spec.code_size]
    enc += [*_norm(norm, last), *activation(act), nn.Flatten(1)]
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        enc += [nn.Linear(a, b), *activation(act)]
    enc += [nn.Linear(sizes[-2], spec.code_size), *activation(spec.code_activation)]

    dec: list[nn.Module] = []
    back = sizes[::-1]
    for a, b in zip(back[:-2], back[1:-1]):
        dec += [nn.Linear(a, b), *activation(act)]
    dec += [nn.Linear(back[-2], back[-1]), nn.Unflatten(1, (last, hc, wc))]
    for i in reversed(range(n)):
        dec += [ResBlock(spec.channels[i], norm, act) for _ in range(blocks[i])]
        c_out = spec.channels[i - 1] if i else c
        dec += [*_norm(norm, spec.channels[i]), *activation(act), *_up(spec.upsample, spec.channels[i], c_out)]
    dec += activation(spec.output_activation)
    return nn.Sequential(*enc), nn.Sequential(*dec), (spec.code_size,)
