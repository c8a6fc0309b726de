"""Matplotlib figures and the self-contained HTML report."""

from aelab.figures.plots import layerwise_curves, loss_curves, reconstruction_grid, save_figure

__all__ = ["layerwise_curves", "loss_curves", "reconstruction_grid", "save_figure"]
