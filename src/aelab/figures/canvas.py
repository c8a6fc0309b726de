"""What every figure shares: the non-interactive backend, showing an image on an axis, tiling images into one
array, and saving a figure as PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def show(ax, img: torch.Tensor, cmap="gray", vmin=0.0, vmax=1.0) -> None:
    """Draw one float image ``(C, H, W)`` on ``ax`` without ticks."""
    arr = img.float().numpy()
    ax.imshow(arr[0] if arr.shape[0] == 1 else np.clip(arr.transpose(1, 2, 0), 0, 1), cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks([])
    ax.set_yticks([])


def tile(images: torch.Tensor, rows: int, cols: int) -> np.ndarray:
    """float ``(rows * cols, C, H, W)`` in [0, 1] (missing tiles blank) -> one ``(rows*H, cols*W[, C])`` array."""
    n, c, h, w = images.shape
    canvas = torch.zeros(rows * cols, c, h, w)
    canvas[:n] = images[: rows * cols].float()
    grid = canvas.view(rows, cols, c, h, w).permute(0, 3, 1, 4, 2).reshape(rows * h, cols * w, c).numpy()
    return grid[..., 0] if c == 1 else np.clip(grid, 0, 1)


def save_figure(fig: Figure, path: Path | str) -> Path:
    """Save as PNG (100 dpi) and close the figure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
