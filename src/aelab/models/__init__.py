"""Autoencoders built from specs, and the published tutorial architectures as presets."""

from aelab.models.autoencoder import AEOutput, AutoEncoder
from aelab.models.build import build_model, load
from aelab.models.presets import PRESETS, Preset

__all__ = ["AEOutput", "AutoEncoder", "load", "build_model", "PRESETS", "Preset"]
