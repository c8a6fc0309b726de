"""Autoencoders: the model protocol (:class:`AutoEncoder`), its families (deterministic, VAE, VQ-VAE, ... in
:data:`FAMILIES`), their bodies built from specs (:mod:`.bodies`), the metrics row (:mod:`.measures`) and the
presets (the table is :data:`aelab.config.PRESETS`). Names are imported on first use, so the torch-free modules
(:mod:`.measures`) import without torch."""

_LAZY = {
    "PRESETS": "aelab.config",
    "Preset": "aelab.config",
    "NEEDS": "aelab.models.needs",
    "AEOutput": "aelab.models.autoencoder",
    "AutoEncoder": "aelab.models.autoencoder",
    "build_model": "aelab.models.build",
    "load": "aelab.models.build",
    "FAMILIES": "aelab.models.families",
    "family_of": "aelab.models.families",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aelab.models' has no attribute {name!r}")
