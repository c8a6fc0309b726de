"""Charts of what the analyses measure: the latent map, the code heatmap, per-class errors with the worst
images, compression, probes, code refinement and anomaly-score histograms."""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure

from aelab.figures.canvas import plt, show


def latent_map_figure(lm, class_names: list[str], title: str = "") -> Figure:
    """Scatter of 2-D codes coloured by class, with a legend of class names."""
    fig, ax = plt.subplots(figsize=(7.5, 6))
    cmap = plt.get_cmap("tab10")
    for c in np.unique(lm.labels):
        pts = lm.points[lm.labels == c]
        name = class_names[c] if c < len(class_names) else str(c)
        ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.6, color=cmap(int(c) % 10), label=name)
    axis = {"code": "code unit", "pca": "PC", "tsne": "t-SNE"}[lm.method]
    ax.set_xlabel(f"{axis} 1")
    ax.set_ylabel(f"{axis} 2")
    ax.legend(markerscale=4, fontsize=8, loc="best")
    ax.set_title(title or f"Latent map ({lm.method}, {len(lm.labels)} test images)")
    fig.tight_layout()
    return fig


def code_heatmap_figure(h, title: str = "") -> Figure:
    """Codes (samples x units) as an image, with the per-unit activity frequency below; dead units in red."""
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(8, 7), gridspec_kw={"height_ratios": [4, 1]}, sharex=True)
    im = ax.imshow(h.codes, aspect="auto", cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=ax, label="code value")
    ax.set_ylabel("sample")
    units = np.arange(h.codes.shape[1])
    ax2.bar(units, h.frequency, color=np.where(h.dead, "red", "C0"), width=1.0)
    for u in units[h.dead]:
        ax.axvline(u, color="red", linewidth=0.5, alpha=0.5)
    ax2.set_ylabel("active share")
    ax2.set_xlabel(f"code unit ({int(h.dead.sum())} dead, in red)")
    ax2.set_ylim(0, 1)
    ax.set_title(title or f"Codes of {h.codes.shape[0]} test images")
    fig.tight_layout()
    return fig


def failures_figure(f, title: str = "") -> Figure:
    """Per-class MSE bars, and the worst-reconstructed images (original above, reconstruction below)."""
    k = len(f.worst)
    fig = plt.figure(figsize=(max(8, 1.2 * k), 6.5))
    grid = fig.add_gridspec(3, k, height_ratios=[2.2, 1, 1])
    ax = fig.add_subplot(grid[0, :])
    names = [n for n, _, _ in f.per_class]
    ax.bar(range(len(names)), [m for _, _, m in f.per_class], color="C1")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("test MSE")
    ax.set_title(title or "Where it fails: per-class test MSE and the worst reconstructions")
    for i in range(k):
        a1, a2 = fig.add_subplot(grid[1, i]), fig.add_subplot(grid[2, i])
        show(a1, f.originals[i].float() / 255)
        show(a2, f.reconstructions[i].float() / 255)
        a1.set_title(f"#{f.worst[i]}\nMSE {f.worst_mse[i]:.3f}", fontsize=7)
        if i == 0:
            a1.set_ylabel("original", fontsize=8)
            a2.set_ylabel("reconstruction", fontsize=8)
    fig.tight_layout()
    return fig


def refinement_figure(r, title: str = "") -> Figure:
    """Test MSE against the steps of the code search (0 = the encoder's code), and images: original, the
    reconstruction of the encoder's code, the reconstruction of the refined code."""
    k = len(r.originals)
    fig = plt.figure(figsize=(max(8, 1.2 * k), 6.5))
    grid = fig.add_gridspec(4, k, height_ratios=[2.2, 1, 1, 1])
    ax = fig.add_subplot(grid[0, :])
    ax.plot([max(s, 0.5) for s in r.steps], r.mse, "o-", color="C0")
    ax.set_xscale("log")
    ax.set_xlabel("search steps (the first point: the encoder's code)")
    ax.set_ylabel("test MSE")
    ax.grid(True, alpha=0.3)
    ax.set_title(title or "Code refinement")
    rows = (("original", r.originals), ("encoder's code", r.encoded), ("refined code", r.refined))
    for i in range(k):
        for j, (name, images) in enumerate(rows):
            a = fig.add_subplot(grid[j + 1, i])
            show(a, images[i])
            if i == 0:
                a.set_ylabel(name, fontsize=8)
    fig.tight_layout()
    return fig


def compression_figure(rows: list[dict], title: str = "") -> Figure:
    """PSNR of the decoded image vs bytes per image: the code's storage types as labelled points, the classical
    codecs (rows with a ``codec``) as one line each (lossless PNG, with no finite PSNR, is left out)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for codec in sorted({r["codec"] for r in rows if "codec" in r}):
        sweep = sorted(
            (r["code_bytes"], r["psnr"])
            for r in rows
            if r.get("codec") == codec and math.isfinite(r["psnr"]) and "interpolated" not in r["storage"]
        )
        if sweep:
            ax.plot(*zip(*sweep), "--.", alpha=0.7, label=f"{codec} (files)")
    for i, r in enumerate(r for r in rows if "codec" not in r):
        ax.scatter(r["code_bytes"], r["psnr"], s=50)
        ax.annotate(  # the storage types share a PSNR: their labels are stacked, each with a line to its point
            f"{r['storage'].split(' (')[0]} ({r['compression_ratio']:.1f}x)",
            (r["code_bytes"], r["psnr"]),
            textcoords="offset points",
            xytext=(6, 10 + 14 * i),
            fontsize=8,
            arrowprops={"arrowstyle": "-", "alpha": 0.4},
        )
    ax.set_xscale("log")
    ax.set_xlabel(f"bytes per image (raw image: {rows[0]['image_bytes']} bytes)")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(True, alpha=0.3)
    if any("codec" in r for r in rows):
        ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title or "Compression: code storage vs reconstruction quality")
    fig.tight_layout()
    return fig


def codecs_figure(rows: list[dict], points: list[dict], raw_bytes: int) -> Figure:
    """Rate-distortion: bits per image vs PSNR (left) and SSIM (right); the lossy codecs' sweeps as lines, each
    model's (and PCA's) entropy-coded code as a labelled point."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, name in ((axes[0], "psnr", "PSNR (dB)"), (axes[1], "ssim", "SSIM")):
        for codec in ("JPEG", "WebP"):
            sweep = sorted((8 * p["bytes_per_image"], p[key]) for p in points if p["codec"] == codec)
            if sweep:
                ax.plot(*zip(*sweep), "--.", alpha=0.7, label=f"{codec} (files)")
        for r in rows:
            if r.get(key) is not None:
                ax.scatter(r["bits_per_image"], r[key], s=40, marker="s" if r["model"].startswith("PCA") else "o")
                ax.annotate(
                    r["model"], (r["bits_per_image"], r[key]), textcoords="offset points", xytext=(5, 5), fontsize=8
                )
        ax.set_xscale("log")
        ax.set_xlabel(f"bits per image (raw image: {8 * raw_bytes:,} bits)")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle("Entropy-coded codes vs image codecs (test images; codecs: real files, headers included)")
    fig.tight_layout()
    return fig


def probes_figure(rows: list[dict], title: str = "") -> Figure:
    """Test accuracy vs labels per class for the probes and the from-scratch classifiers."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    xs = [str(r["labels_per_class"]) for r in rows]
    for key, label, style in [
        ("logistic", "linear probe on codes", "-o"),
        ("knn", "kNN on codes", "-s"),
        ("mlp", "MLP from scratch", "--^"),
        ("cnn", "CNN from scratch", "--v"),
    ]:
        ys = [r.get(key) for r in rows]
        if any(y is not None for y in ys):
            ax.plot(xs, [np.nan if y is None else y for y in ys], style, label=label)
    ax.set_xlabel("labelled images per class")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title(title or "Features with few labels")
    fig.tight_layout()
    return fig


def anomaly_figure(
    result, images: torch.Tensor | None, class_names: list[str], labels: torch.Tensor, k: int = 8, title: str = ""
) -> Figure:
    """Histogram of the anomaly scores of normal vs anomalous test images (the threshold as a line), and the
    ``k`` most and least anomalous test images with their class and score (not for vector data: ``images``
    None)."""
    scores, anomalous = result.scores.numpy(), result.anomalous.numpy()
    fig = plt.figure(figsize=(max(8, 1.2 * k), 7 if images is not None else 4))
    grid = fig.add_gridspec(3 if images is not None else 1, k, height_ratios=[2.4, 1, 1] if images is not None else [1])
    ax = fig.add_subplot(grid[0, :])
    bins = np.logspace(np.log10(max(scores.min(), 1e-6)), np.log10(max(scores.max(), 1e-5)), 60)
    ax.hist(scores[~anomalous], bins=list(bins), alpha=0.6, density=True, label=f"normal ({(~anomalous).sum():,})")
    ax.hist(scores[anomalous], bins=list(bins), alpha=0.6, density=True, label=f"anomalous ({anomalous.sum():,})")
    ax.axvline(result.threshold, color="k", ls="--", lw=1, label="threshold (validation)")
    ax.set_xscale("log")
    ax.set_xlabel(f"anomaly score: {result.score_name}")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    ax.set_title(title or f"ROC-AUC {result.roc_auc:.3f}, PR-AUC {result.pr_auc:.3f}")
    order = np.argsort(scores)
    shown = images if images is not None else torch.zeros(0)
    for row, picks, name in ((1, order[::-1][:k], "most"), (2, order[:k], "least")) if len(shown) else ():
        for i, idx in enumerate(picks):
            a = fig.add_subplot(grid[row, i])
            show(a, shown[idx].float() / 255)
            a.set_title(f"{class_names[int(labels[idx])]}\n{scores[idx]:.4g}", fontsize=7)
            if i == 0:
                a.set_ylabel(f"{name}\nanomalous", fontsize=8)
    fig.tight_layout()
    return fig
