"""Autoencoders built from specs, and the published tutorial architectures as presets."""

from aelab.models.autoencoder import AutoEncoder
from aelab.models.build import build_model
from aelab.models.presets import PRESETS, Preset

__all__ = ["AutoEncoder", "build_model", "PRESETS", "Preset"]
