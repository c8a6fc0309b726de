"""Drawing only: matplotlib figures of what :mod:`aelab.evaluation` computes, and the self-contained HTML report.

* :mod:`.canvas`: the backend, image helpers, saving;
* :mod:`.curves`: loss curves, layer-wise stages, rate-distortion;
* :mod:`.grids`: figures made of images (interpolation, samples, traversals, reconstructions, ...);
* :mod:`.charts`: latent map, code heatmap, failures, compression, probes, anomaly scores;
* :mod:`.report`: the HTML report.

Names are imported on first use, so importing this package does not import matplotlib.
"""

_LAZY = {
    "layerwise_curves": "curves",
    "loss_curves": "curves",
    "rate_distortion": "curves",
    "reconstruction_grid": "grids",
    "save_figure": "canvas",
}
__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"aelab.figures.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'aelab.figures' has no attribute {name!r}")
