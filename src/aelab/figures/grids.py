"""Figures made of images: interpolation rows, the feature dictionary, sample grids, traversals, the decoded
manifold, and originals above reconstructions."""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure

from aelab.figures.canvas import plt, show, tile


def interpolation_figure(interp, title: str = "") -> Figure:
    """Two rows: data-space (1-a) x + a x', latent-space g((1-a) f(x) + a f(x'))."""
    steps = len(interp.alphas)
    fig, axes = plt.subplots(2, steps, figsize=(1.2 * steps + 1.5, 3.2), squeeze=False)
    for r, (label, row) in enumerate([("data space", interp.data_space), ("latent space", interp.latent_space)]):
        for c in range(steps):
            show(axes[r][c], row[c])
            if r == 0:
                axes[r][c].set_title(f"a={float(interp.alphas[c]):.2f}", fontsize=8)
        axes[r][0].set_ylabel(label, rotation=0, ha="right", va="center")
    fig.suptitle(title or f"Interpolation between test images {interp.index_a} and {interp.index_b}")
    fig.tight_layout()
    return fig


def feature_dictionary_figure(
    tiles: torch.Tensor, title: str = "", max_tiles: int = 256, vectors: bool = False
) -> Figure:
    """One tile per code unit: g(a e_j) - g(0), each scaled to its own range (blue negative, red positive).
    For vector data, one row per code unit (units x features)."""
    n = min(len(tiles), max_tiles)
    if vectors:
        rows = tiles[:n].flatten(1).numpy()
        m = float(np.abs(rows).max()) or 1.0
        fig, ax = plt.subplots(figsize=(8, min(2 + 0.12 * n, 14)))
        im = ax.imshow(rows, aspect="auto", cmap="bwr", vmin=-m, vmax=m, interpolation="nearest")
        ax.set_xlabel("feature")
        ax.set_ylabel("code unit")
        fig.colorbar(im, ax=ax, label="g(a e_j) - g(0)")
        ax.set_title(title or f"Feature dictionary ({len(tiles)} code units)")
        fig.tight_layout()
        return fig
    cols = math.ceil(math.sqrt(n))
    lines = math.ceil(n / cols)
    fig, axes = plt.subplots(lines, cols, figsize=(cols * 0.9 + 0.5, lines * 0.9 + 0.8), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < n:
            t = tiles[i].mean(0, keepdim=True) if tiles.shape[1] == 3 else tiles[i]
            m = float(t.abs().max()) or 1.0
            show(ax, t, cmap="bwr", vmin=-m, vmax=m)
        else:
            ax.axis("off")
    fig.suptitle(
        title or f"Feature dictionary ({len(tiles)} code units{', first ' + str(n) if n < len(tiles) else ''})"
    )
    fig.tight_layout()
    return fig


def samples_figure(images: torch.Tensor, rows: int, title: str = "", row_names: list[str] | None = None) -> Figure:
    """Generated images ``(N, C, H, W)`` in [0, 1] as a grid of ``rows`` rows (one per class with ``row_names``)."""
    cols = math.ceil(len(images) / rows)
    fig, ax = plt.subplots(figsize=(0.75 * cols + (1.6 if row_names else 0.4), 0.75 * rows + 0.8))
    ax.imshow(tile(images, rows, cols), cmap="gray", vmin=0, vmax=1)
    h = images.shape[2]
    ax.set_xticks([])
    ax.set_yticks([h * (r + 0.5) for r in range(rows)] if row_names else [])
    if row_names:
        ax.set_yticklabels(row_names[:rows], fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def traversal_figure(images: torch.Tensor, units: list[int], values: np.ndarray, title: str = "") -> Figure:
    """Traversals ``(U, S, C, H, W)``: one row per latent unit (labelled with its index and range)."""
    u, s = images.shape[:2]
    fig, ax = plt.subplots(figsize=(0.75 * s + 1.8, 0.75 * u + 0.8))
    ax.imshow(tile(images.reshape(u * s, *images.shape[2:]), u, s), cmap="gray", vmin=0, vmax=1)
    h = images.shape[3]
    ax.set_xticks([])
    ax.set_yticks([h * (r + 0.5) for r in range(u)])
    ax.set_yticklabels(
        [f"z{unit} [{values[r][0]:.1f}, {values[r][-1]:.1f}]" for r, unit in enumerate(units)], fontsize=7
    )
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def manifold_figure(images: torch.Tensor, u: np.ndarray, v: np.ndarray, title: str = "") -> Figure:
    """A decoded latent grid ``(S, S, C, H, W)``; x: the first unit's values, y: the second's (top = largest)."""
    s = images.shape[0]
    fig, ax = plt.subplots(figsize=(7.5, 7.5))
    ax.imshow(tile(images.reshape(s * s, *images.shape[2:]), s, s), cmap="gray", vmin=0, vmax=1)
    h = images.shape[3]
    ticks = [h * (i + 0.5) for i in range(s)]
    ax.set_xticks(ticks[::2])
    ax.set_xticklabels([f"{x:.1f}" for x in u[::2]], fontsize=7)
    ax.set_yticks(ticks[::2])
    ax.set_yticklabels([f"{y:.1f}" for y in v[::2]], fontsize=7)
    ax.set_xlabel("z0")
    ax.set_ylabel("z1")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def _image(t: torch.Tensor):
    """uint8 (C, H, W) -> array for imshow."""
    arr = t.cpu().numpy()
    return arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)


def reconstruction_grid(originals: torch.Tensor, rows: dict[str, torch.Tensor], title: str = "") -> Figure:
    """A grid: first row the originals, then one row of reconstructions per model (one image, white gaps).

    Args:
        originals: uint8 ``(S, C, H, W)``.
        rows: label -> uint8 ``(S, C, H, W)`` reconstructions of the same images.
    """
    labels = ["original", *rows]
    n_rows, n_cols = len(labels), originals.shape[0]
    gap = 2
    stacked = torch.cat([originals, *rows.values()]).float() / 255
    padded = torch.nn.functional.pad(stacked, (gap, gap, gap, gap), value=1.0)  # one drawing: 30x faster than axes
    fig, ax = plt.subplots(figsize=(1.3 * n_cols + 1.2, 1.3 * n_rows + 0.5))
    ax.imshow(tile(padded, n_rows, n_cols), cmap="gray", vmin=0, vmax=1)
    h = padded.shape[2]
    ax.set_xticks([])
    ax.set_yticks([h * (r + 0.5) for r in range(n_rows)])
    ax.set_yticklabels(labels, fontsize=10)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
