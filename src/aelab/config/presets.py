"""The preset table: every named architecture in one place, torch-free.

A preset is a spec (the body), the image shape it was published for, the training recipe it gets by default,
the model-config fields it fills (a generative preset's ``variational`` / ``quantizer`` settings, or another
family's ``family`` and ``settings``), its source and a description with the layer sketch. :mod:`aelab.models`
builds every preset from this table; ``aelab models`` lists it. Sources are the tutorials in
``shared/references`` (see its README) and the papers named in each entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from textwrap import fill
from typing import Any

from aelab.config.specs import ConvLayerSpec as L
from aelab.config.specs import ConvSpec, MLPSpec, ResSpec

FRONTIER_CODE_SIZES = (2, 3, 10, 16, 32, 64)
"""The code sizes of aelab's ``res-<size>`` presets (what ``aelab frontier`` trains, with PCA at each)."""


@dataclass(frozen=True)
class Preset:
    """A named architecture."""

    spec: MLPSpec | ConvSpec | ResSpec
    """The body: encoder and decoder layers."""
    input_shape: tuple[int, int, int]
    """``(C, H, W)`` of the images it was published for."""
    source: str
    description: str
    """The architecture in words, with a sketch of the shapes."""
    recipe: str = "tutorial"
    """The training recipe it gets by default (:data:`aelab.config.RECIPES`)."""
    model: dict[str, Any] = field(default_factory=dict)
    """Model-config fields the preset fills when a config does not set them: ``variational`` / ``quantizer``
    settings, or ``family`` and ``settings`` (the fields a config gives replace these, key by key)."""
    training: dict[str, Any] = field(default_factory=dict)
    """Training fields the preset sets within its own recipe (a learning rate, a number of epochs), applied
    after the recipe's defaults when it trains with that recipe; the fields a config sets replace these."""

    def written_out(self) -> dict[str, Any]:
        """This preset as the ``model`` and ``training`` sections of a config that does not name it:
        ``{"model": {"spec": {"type": ..., <the fields the preset sets>}, <the model fields it
        fills>}, "training": {"recipe": ..., <its own training fields>}}`` (JSON values). Built at the preset's
        input shape, it is the same model (the same weights at the same seed) with the same training fields, under
        another run id; the start of a variant (``aelab models NAME`` prints it)."""
        spec = {"type": self.spec.type, **self.spec.model_dump(mode="json", exclude_unset=True)}
        return {
            "model": {"spec": spec, **self.model},
            "training": {"recipe": self.recipe, **self.training},
        }


def tutorial_conv(code_channels: int) -> ConvSpec:
    """The Covalent tutorial's conv body, Conv 1->16 (3x3 s2 p1) -> 32 (3x3 s2 p1) -> ``code_channels`` (7x7): the
    code is ``(code_channels, 1, 1)``."""
    return ConvSpec(
        layers=[
            L(channels=16, kernel=3, stride=2, padding=1),
            L(channels=32, kernel=3, stride=2, padding=1),
            L(channels=code_channels, kernel=7),
        ]
    )


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
        tutorial_conv(64),
        (1, 28, 28),
        "Covalent tutorial 'Linear and convolutional autoencoders'; 'AutoEncoders: minimal working examples'",
        """Conv 1->16 (3x3 s2 p1) -> 32 (3x3 s2 p1) -> 64 (7x7), ReLU between, mirrored ConvTranspose
        decoder (output_padding 1 on the strided stages), sigmoid.

        1x28x28 -> 16x14x14 -> 32x7x7 -> z 64x1x1 -> 32x7x7 -> 16x14x14 -> 1x28x28
        210,369 parameters; the tutorial reports test MSE 0.0053 after 50 epochs.""",
    ),
    "conv-16": Preset(
        tutorial_conv(16),
        (1, 28, 28),
        "aelab (conv-64's body with a 16-value code; the default of aelab anomaly)",
        """conv-64 with a 16-channel last layer: Conv 1->16 (3x3 s2 p1) -> 32 (3x3 s2 p1) -> 16 (7x7), ReLU
        between, mirrored ConvTranspose decoder, sigmoid. The narrower code makes other classes harder to
        reconstruct; chosen for one-class anomaly detection on the validation split (the anomaly guide).

        1x28x28 -> 16x14x14 -> 32x7x7 -> z 16x1x1 -> 32x7x7 -> 16x14x14 -> 1x28x28""",
    ),
    "cifar-conv": Preset(
        ConvSpec(
            layers=[
                L(channels=8, kernel=4, stride=2, padding=1),
                L(channels=16, kernel=4, stride=2, padding=1),
                L(channels=32, kernel=4, stride=2, padding=1),
            ]
        ),
        (3, 32, 32),
        "COMP90051 Workshop 8 (CIFAR-10)",
        """3 convs 4x4 s2 p1 (8, 16, 32 channels), ReLU between, mirrored ConvTranspose, sigmoid.

        3x32x32 -> 8x16x16 -> 16x8x8 -> z 32x4x4 -> 16x8x8 -> 8x16x16 -> 3x32x32""",
    ),
    "fc-64": Preset(
        MLPSpec(
            hidden=[],
            code_size=64,
            activation="leaky_relu",
            code_activation="leaky_relu",
            output_activation="leaky_relu",
        ),
        (1, 28, 28),
        "Jian Zhong, 'Autoencoders with PyTorch: Full Code Guide' (2024)",
        "784-64 with LeakyReLU, decoder 64-784 with LeakyReLU (the guide's simple FC autoencoder).",
    ),
    "conv-pool": Preset(
        ConvSpec(
            layers=[L(channels=16, kernel=3, padding=1, pool=2), L(channels=4, kernel=3, padding=1, pool=2)],
            activation="identity",
            decoder_activation="relu",
        ),
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


def _res_preset(size: int) -> Preset:
    hidden = RES_HIDDEN.get(size, [256])
    fc = " -> ".join(map(str, hidden))
    return Preset(
        ResSpec(channels=RES_CHANNELS, blocks=RES_BLOCKS, hidden=hidden, code_size=size),
        (1, 28, 28),
        "aelab (res family: conv body, fully-connected bottleneck; aelab recipe)",
        f"""Conv 3x3 s2 1->16, BN/SiLU, Conv 3x3 s2 16->32, BN/SiLU, flatten 1568, Linear/SiLU {fc},
        Linear -> {size}; mirrored decoder (Linears, ConvTranspose 4x4 s2 with BN/SiLU), sigmoid. Trained by
        default with the aelab recipe: AdamW, warm-up + cosine decay, gradient clipping, batch 128, 20 epochs
        (within the training time of the tutorial's conv-64). The res family has residual blocks too
        (``blocks``); one per stage was 4% better at code 64 in the same time (BENCHMARKS.md).

        1x28x28 -> 16x14x14 -> 32x7x7 -> {fc} -> z {size} -> {" -> ".join(map(str, hidden[::-1]))}
        -> 32x7x7 -> 16x14x14 -> 1x28x28""",
        recipe="aelab",
    )


PRESETS.update({f"res-{size}": _res_preset(size) for size in FRONTIER_CODE_SIZES})

RES_V2_SMALL_CODE = 3
"""res-v2: codes up to this size get a wider fully-connected bottleneck; larger ones get residual blocks."""


def _res_v2_preset(size: int) -> Preset:
    """The second res generation, chosen on the validation split within conv-64's training time (BENCHMARKS.md,
    'res-v2'): a wider bottleneck at lr 1.5e-3 for tiny codes, one residual block per stage for the others."""
    if size <= RES_V2_SMALL_CODE:
        hidden, blocks, training = [512, 512, 64], 0, {"lr": 1.5e-3}
        change = (
            f"res-{size} with a wider bottleneck (Linear 512 -> 512 -> 64 instead of 256 -> 64), trained at lr 1.5e-3"
        )
        enc, dec = "16x14x14 -> 32x7x7", "32x7x7 -> 16x14x14"
    else:
        hidden, blocks, training = [256], 1, {"epochs": 12}
        change = (
            f"res-{size} with one residual block per stage (x + Conv 3x3(SiLU(BN(Conv 3x3(SiLU(BN(x)))))), He et "
            "al. 2016) in the encoder and the decoder, trained for 12 epochs instead of 20 (the blocks cost time)"
        )
        enc, dec = "16x14x14 -> block -> 32x7x7 -> block", "32x7x7 -> block -> 16x14x14 -> block"
    fc = " -> ".join(map(str, hidden))
    return Preset(
        ResSpec(channels=RES_CHANNELS, blocks=blocks, hidden=hidden, code_size=size),
        (1, 28, 28),
        "aelab (res family, second generation, chosen on the validation split)",
        fill(
            f"{change}; otherwise res-{size}'s body and the aelab recipe, within the training "
            "time of the tutorial's conv-64.",
            110,
            subsequent_indent=" " * 8,
        )
        + f"""

        1x28x28 -> {enc} -> {fc} -> z {size}
        -> {" -> ".join(map(str, hidden[::-1]))} -> {dec} -> 1x28x28""",
        recipe="aelab",
        training=training,
    )


PRESETS.update({f"res-v2-{size}": _res_v2_preset(size) for size in FRONTIER_CODE_SIZES})


def _res_v3_preset(size: int) -> Preset:
    """The third res generation's own presets, at the small codes (BENCHMARKS.md, 'res-v3'): res-v2-<size> with
    GELU instead of SiLU, chosen on the validation split."""
    v2 = PRESETS[f"res-v2-{size}"]
    spec = v2.spec.model_copy(update={"activation": "gelu"})
    sketch = v2.description.split("\n\n", 1)[1]  # res-v2's layer sketch: the same layers
    return Preset(
        spec,
        v2.input_shape,
        "aelab (res family, third generation: GELU, Hendrycks & Gimpel 2016; chosen on the validation split)",
        f"""res-v2-{size} with GELU instead of SiLU after every normalization and hidden Linear layer (the same
        layers, parameters and recipe: lr 1.5e-3, 20 epochs); better on validation at codes 2 and 3, worse at 64.

{sketch}""",
        recipe=v2.recipe,
        training=v2.training,
    )


PRESETS.update({f"res-v3-{size}": _res_v3_preset(size) for size in FRONTIER_CODE_SIZES if size <= RES_V2_SMALL_CODE})

FRONTIER_GENERATIONS: dict[str, dict[int, str]] = {
    "res-v3": {d: f"res-v3-{d}" if f"res-v3-{d}" in PRESETS else f"res-v2-{d}" for d in FRONTIER_CODE_SIZES},
    "res-v2": {d: f"res-v2-{d}" for d in FRONTIER_CODE_SIZES},
    "res": {d: f"res-{d}" for d in FRONTIER_CODE_SIZES},
}
"""The res generations ``aelab frontier`` can train, newest (its default) first: code size -> preset. A generation
keeps the last one's preset at the sizes it did not change (res-v3: ``res-v3-2``, ``res-v3-3`` and
``res-v2-10`` to ``res-v2-64``)."""

FRONTIER_PRESETS = tuple(FRONTIER_GENERATIONS)
"""The names of :data:`FRONTIER_GENERATIONS`, newest (the default of ``aelab frontier``) first."""

RES16_BODY = ResSpec(channels=RES_CHANNELS, blocks=RES_BLOCKS, hidden=[256], code_size=16)
"""The res-16 body, shared by the 16-D generative presets."""

PRESETS["vae-2"] = Preset(
    MLPSpec(hidden=[512, 256], code_size=2),
    (1, 28, 28),
    "aelab (VAE: Kingma & Welling 2014, their MNIST MLP with a 2-D latent for the manifold plot)",
    """VAE, Bernoulli likelihood. Encoder 784-512-256 -> 4 (mean and log-variance of a 2-D latent), ReLU;
    decoder 2-256-512-784, sigmoid.

        x(784) -> 512 -> 256 -> (mu, log sigma^2)(2) -> z(2) -> 256 -> 512 -> 784 -> sigmoid""",
    recipe="aelab",
    model={"variational": {}},
)
PRESETS["vae-conv-16"] = Preset(
    RES16_BODY,
    (1, 28, 28),
    "aelab (VAE on the res-16 body; Kingma & Welling 2014)",
    """VAE, Bernoulli likelihood, 16-D latent, on the res-16 body: Conv 3x3 s2 1->16, BN/SiLU, Conv 3x3 s2 16->32,
    BN/SiLU, Linear 1568 -> 256 -> 32 (mean and log-variance); decoder 16 -> 256 -> 1568 -> ConvTranspose x2, sigmoid.

        1x28x28 -> 16x14x14 -> 32x7x7 -> 256 -> (mu, log sigma^2)(16) -> z(16) -> 256 -> 32x7x7 -> 16x14x14 -> 1x28x28""",
    recipe="aelab",
    model={"variational": {}},
)
PRESETS["cvae-conv-16"] = Preset(
    RES16_BODY,
    (1, 28, 28),
    "aelab (conditional VAE, Sohn et al. 2015, on the res-16 body)",
    """As vae-conv-16, conditioned on the class: the one-hot label enters the encoder as 10 extra input channels
    and the decoder appended to the latent (16 + 10 values). Generates a chosen class.

        [x 1x28x28 ; y 10x28x28] -> ... -> (mu, log sigma^2)(16) -> [z(16) ; y(10)] -> 256 -> ... -> 1x28x28""",
    recipe="aelab",
    model={"variational": {"conditional": True}},
)
PRESETS["vqvae-conv"] = Preset(
    ConvSpec(
        layers=[
            L(channels=32, kernel=4, stride=2, padding=1),
            L(channels=64, kernel=4, stride=2, padding=1),
            L(channels=64, kernel=3, padding=1),
            L(channels=16, kernel=1),
        ],
        batchnorm=True,
    ),
    (1, 28, 28),
    "aelab (VQ-VAE: van den Oord et al. 2017, EMA codebook, dead-code restarts)",
    """VQ-VAE with K = 256 codebook vectors of D = 16 on a 7x7 grid: 49 indices of 8 bits = 49 bytes per image.
    Encoder Conv 4x4 s2 1->32, Conv 4x4 s2 32->64, Conv 3x3 64->64, Conv 1x1 64->16 (BN/ReLU between);
    mirrored ConvTranspose decoder, sigmoid.

        1x28x28 -> 32x14x14 -> 64x7x7 -> 64x7x7 -> z_e 16x7x7 -> nearest of 256 -> z_q 16x7x7 -> ... -> 1x28x28""",
    recipe="aelab",
    model={"quantizer": {}},
)
PRESETS["wae-conv-16"] = Preset(
    RES16_BODY,
    (1, 28, 28),
    "aelab (WAE-MMD: Tolstikhin et al. 2018, inverse multiquadratic kernel, on the res-16 body)",
    """Wasserstein autoencoder with an MMD penalty, 16-D code, on the res-16 body: a deterministic encoder whose
    codes are pulled to N(0, I) by lambda * MMD (lambda 10, IMQ kernel at 7 scales); squared error per image.

        1x28x28 -> 16x14x14 -> 32x7x7 -> 256 -> z(16) ~ N(0, I) -> 256 -> 32x7x7 -> 16x14x14 -> 1x28x28""",
    recipe="aelab",
    model={"family": "wae", "settings": {}},
)
PRESET_NAMES = tuple(PRESETS)
