"""Matplotlib figures and the self-contained HTML report."""

from aelab.figures.plots import loss_curves, reconstruction_grid, save_figure

__all__ = ["loss_curves", "reconstruction_grid", "save_figure"]
