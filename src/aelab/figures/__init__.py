"""Matplotlib figures, the analysis registry and the self-contained HTML report.

Names are imported on first use, so importing :mod:`aelab.figures.analyses` (the registry, read by the CLI
at start-up) does not import matplotlib.
"""

_LAZY = {"layerwise_curves": "plots", "loss_curves": "plots", "rate_distortion": "plots", "reconstruction_grid": "plots",
         "save_figure": "plots"}
__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"aelab.figures.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'aelab.figures' has no attribute {name!r}")
