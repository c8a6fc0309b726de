"""The model families: which class a model config builds. Adding a family is a module in :mod:`aelab.models`
whose class subclasses :class:`~aelab.models.AutoEncoder`, and one entry in :data:`FAMILIES`."""

from __future__ import annotations

from aelab.config import ModelConfig
from aelab.errors import ConfigError
from aelab.models.autoencoder import AutoEncoder
from aelab.models.prior import PixelCNNPriorVQ
from aelab.models.quantizer import VQAutoEncoder
from aelab.models.variational import VariationalAutoEncoder
from aelab.models.wae import WassersteinAutoEncoder

FAMILIES: dict[str, type[AutoEncoder]] = {
    AutoEncoder.family: AutoEncoder,
    VariationalAutoEncoder.family: VariationalAutoEncoder,
    VQAutoEncoder.family: VQAutoEncoder,
    PixelCNNPriorVQ.family: PixelCNNPriorVQ,
    WassersteinAutoEncoder.family: WassersteinAutoEncoder,
}
"""Family name -> class. A model config names one with ``family``; ``variational`` and ``quantizer`` name the
VAE and the VQ-VAE (``quantizer.prior``: a VQ-VAE with a PixelCNN prior); none of them, the (deterministic)
autoencoder."""


def family_of(config: ModelConfig | str) -> type[AutoEncoder]:
    """The class a model config (or a preset name) builds, with its preset's fields filled in.

    Raises:
        ConfigError: an unknown family name (the message lists the families).
    """
    if isinstance(config, str):
        config = ModelConfig(preset=config)
    config = config.filled()
    if config.family is not None:
        if config.family not in FAMILIES:
            raise ConfigError(f"model.family: got {config.family!r}; allowed: {', '.join(FAMILIES)}")
        return FAMILIES[config.family]
    if config.variational is not None:
        return VariationalAutoEncoder
    if config.quantizer is not None:
        return VQAutoEncoder if config.quantizer.prior is None else PixelCNNPriorVQ
    return AutoEncoder
