"""Curves over epochs and over code sizes: training and validation loss, layer-wise stages, rate-distortion."""

from __future__ import annotations

from matplotlib.figure import Figure

from aelab.figures.canvas import plt


def loss_curves(histories: dict, loss_name: str = "MSE per pixel", units: dict[str, str] | None = None) -> Figure:
    """Train (solid) and validation (dashed) loss per epoch of each model, log scale; one panel per unit when
    the models' losses have different units (e.g. a VAE's nats per image beside MSE per pixel).

    Args:
        histories: label -> :class:`aelab.training.History`.
        units: label -> the unit of that model's loss (default: ``loss_name`` for all).
    """
    units = {label: (units or {}).get(label, loss_name) for label in histories}
    panels = list(dict.fromkeys(units.values()))
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 4.2), squeeze=False)
    for i, (label, h) in enumerate(histories.items()):
        ax = axes[0][panels.index(units[label])]
        color = f"C{i}"
        epochs = range(1, len(h.train_loss) + 1)
        ax.plot(epochs, h.train_loss, color=color, label=f"{label} train")
        if any(v == v for v in h.val_loss):  # not all NaN
            ax.plot(epochs, h.val_loss, color=color, linestyle="--", label=f"{label} validation")
    for ax, unit in zip(axes[0], panels):
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"loss ({unit})")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        ax.set_title("Training and validation loss")
    fig.tight_layout()
    return fig


def layerwise_curves(histories: list, label: str) -> Figure:
    """Training loss of each layer-wise stage, one after the other on the epoch axis; the last is fine-tuning."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    start = 0
    for i, h in enumerate(histories):
        epochs = range(start + 1, start + len(h.train_loss) + 1)
        name = "fine-tune (all layers)" if i == len(histories) - 1 else f"stage {i + 1}"
        ax.plot(epochs, h.train_loss, marker="o", markersize=3, label=name)
        start += len(h.train_loss)
    ax.set_xlabel("epoch (all stages)")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title(f"{label}: greedy layer-wise pretraining")
    fig.tight_layout()
    return fig


def rate_distortion(families: dict[str, list[dict]]) -> Figure:
    """Test MSE (left) and PSNR (right) against code size, one line per family, log-scaled code size (and MSE).

    Args:
        families: family name (e.g. "PCA", "tutorial presets", "aelab presets") -> rows with ``code_size``,
            ``test_mse``, optionally ``test_psnr`` and ``model`` (the point's label).
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"PCA": dict(color="0.45", linestyle="--", marker="s")}
    for i, (family, rows) in enumerate(families.items()):
        rows = sorted(rows, key=lambda r: r["code_size"])
        style = styles.get(family, dict(color=f"C{i}", marker="o"))
        sizes = [r["code_size"] for r in rows]
        left.plot(sizes, [r["test_mse"] for r in rows], label=family, **style)
        with_psnr = [r for r in rows if r.get("test_psnr") is not None]
        if with_psnr:
            right.plot([r["code_size"] for r in with_psnr], [r["test_psnr"] for r in with_psnr], label=family, **style)
    all_sizes = sorted({r["code_size"] for rows in families.values() for r in rows})
    for ax, label in ((left, "test MSE per pixel (log)"), (right, "test PSNR (dB)")):
        ax.set_xscale("log")
        ax.set_xticks(all_sizes)
        ax.set_xticklabels([str(s) for s in all_sizes])
        ax.minorticks_off()
        ax.set_xlabel("code size (values per image, log)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    left.set_yscale("log")
    left.legend()
    fig.suptitle("Rate-distortion: reconstruction error vs code size (test set)")
    fig.tight_layout()
    return fig
