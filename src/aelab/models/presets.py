"""The published tutorial architectures, reproduced layer for layer.

Sources are the tutorials in ``shared/references`` (see its README). Parameter counts are checked in
``tests/test_models.py`` against counts worked out by hand from the tutorials' layer lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from aelab.config import ConvLayerSpec as L
from aelab.config import FRONTIER_CODE_SIZES, PRESET_NAMES, PRESET_RECIPES, ConvSpec, MLPSpec, ResSpec


@dataclass(frozen=True)
class Preset:
    """A named architecture: its spec, the image shape it was published for, and its source."""

    spec: MLPSpec | ConvSpec | ResSpec
    input_shape: tuple[int, int, int]
    source: str
    description: str

    @property
    def recipe(self) -> str:
        """The training recipe it gets by default (:data:`aelab.config.RECIPES`)."""
        return PRESET_RECIPES[self.name]

    @property
    def name(self) -> str:
        return next(n for n, p in PRESETS.items() if p is self)


PRESETS: dict[str, Preset] = {
    "linear-3": Preset(
        MLPSpec(hidden=[128, 64, 12], code_size=3),
        (1, 28, 28),
        "Covalent tutorial 'Linear and convolutional autoencoders' (Fashion-MNIST)",
        """784-128-64-12-3, ReLU between layers, mirrored decoder, sigmoid output.

        x(784) -> 128 -> 64 -> 12 -> z(3) -> 12 -> 64 -> 128 -> 784 -> sigmoid
        219,891 parameters; the tutorial reports test MSE 0.0214 after 50 epochs.""",
    ),
    "linear-10": Preset(
        MLPSpec(hidden=[128, 64, 12], code_size=10),
        (1, 28, 28),
        "'AutoEncoders: minimal working examples' (2023, MNIST)",
        "As linear-3 with a 10-value code: 784-128-64-12-10, mirrored, sigmoid output.",
    ),
    "conv-64": Preset(
        ConvSpec(layers=[L(channels=16, kernel=3, stride=2, padding=1), L(channels=32, kernel=3, stride=2, padding=1),
                         L(channels=64, kernel=7)]),
        (1, 28, 28),
        "Covalent tutorial 'Linear and convolutional autoencoders'; 'AutoEncoders: minimal working examples'",
        """Conv 1->16 (3x3 s2 p1) -> 32 (3x3 s2 p1) -> 64 (7x7), ReLU between, mirrored ConvTranspose
        decoder (output_padding 1 on the strided stages), sigmoid.

        1x28x28 -> 16x14x14 -> 32x7x7 -> z 64x1x1 -> 32x7x7 -> 16x14x14 -> 1x28x28
        210,369 parameters; the tutorial reports test MSE 0.0053 after 50 epochs.""",
    ),
    "cifar-conv": Preset(
        ConvSpec(layers=[L(channels=8, kernel=4, stride=2, padding=1), L(channels=16, kernel=4, stride=2, padding=1),
                         L(channels=32, kernel=4, stride=2, padding=1)]),
        (3, 32, 32),
        "COMP90051 Workshop 8 (CIFAR-10)",
        """3 convs 4x4 s2 p1 (8, 16, 32 channels), ReLU between, mirrored ConvTranspose, sigmoid.

        3x32x32 -> 8x16x16 -> 16x8x8 -> z 32x4x4 -> 16x8x8 -> 8x16x16 -> 3x32x32""",
    ),
    "fc-64": Preset(
        MLPSpec(hidden=[], code_size=64, activation="leaky_relu", code_activation="leaky_relu",
                output_activation="leaky_relu"),
        (1, 28, 28),
        "Jian Zhong, 'Autoencoders with PyTorch: Full Code Guide' (2024)",
        "784-64 with LeakyReLU, decoder 64-784 with LeakyReLU (the guide's simple FC autoencoder).",
    ),
    "conv-pool": Preset(
        ConvSpec(layers=[L(channels=16, kernel=3, padding=1, pool=2), L(channels=4, kernel=3, padding=1, pool=2)],
                 activation="identity", decoder_activation="relu"),
        (1, 28, 28),
        "'Convolutional Autoencoders' (2020, Fashion-MNIST, compression)",
        """Conv 1->16 (3x3 p1) + maxpool 2, Conv 16->4 (3x3 p1) + maxpool 2 (no activation in the encoder);
        ConvTranspose 4->16 (2x2 s2) + ReLU, ConvTranspose 16->1 (2x2 s2) + sigmoid.

        1x28x28 -> 16x14x14 -> z 4x7x7 -> 16x14x14 -> 1x28x28""",
    ),
}
RES_CHANNELS, RES_BLOCKS = [16, 32], 0
RES_HIDDEN = {2: [256, 64], 3: [256, 64]}
"""The body of aelab's res-* presets and their fully-connected layers (default [256]), chosen by short
screening runs and an ablation on Fashion-MNIST (BENCHMARKS.md, 'aelab's presets and recipe')."""
for _size in FRONTIER_CODE_SIZES:
    _hidden = RES_HIDDEN.get(_size, [256])
    _fc = " -> ".join(map(str, _hidden))
    PRESETS[f"res-{_size}"] = Preset(
        ResSpec(channels=RES_CHANNELS, blocks=RES_BLOCKS, hidden=_hidden, code_size=_size),
        (1, 28, 28),
        "aelab (res family: conv body, fully-connected bottleneck; aelab recipe)",
        f"""Conv 3x3 s2 1->16, BN/SiLU, Conv 3x3 s2 16->32, BN/SiLU, flatten 1568, Linear/SiLU {_fc},
        Linear -> {_size}; mirrored decoder (Linears, ConvTranspose 4x4 s2 with BN/SiLU), sigmoid. Trained by
        default with the aelab recipe: AdamW, warm-up + cosine decay, gradient clipping, batch 128, 20 epochs
        (within the training time of the tutorial's conv-64). The res family has residual blocks too
        (``blocks``); one per stage was 4% better at code 64 in the same time (BENCHMARKS.md).

        1x28x28 -> 16x14x14 -> 32x7x7 -> {_fc} -> z {_size} -> {" -> ".join(map(str, _hidden[::-1]))}
        -> 32x7x7 -> 16x14x14 -> 1x28x28""",
    )

assert tuple(PRESETS) == PRESET_NAMES, "aelab.config.PRESET_NAMES must list the presets of this table"
