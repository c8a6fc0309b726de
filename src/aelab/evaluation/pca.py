"""The PCA baseline: a linear autoencoder in closed form, at the autoencoder's code size.

PCA (scikit-learn) is fitted on the training images (flattened, in [0, 1]); the test reconstruction is
``inverse_transform(transform(x))``. With as many components as pixels it reconstructs exactly. Training sets of
more than :data:`FIT_VALUES` pixel values are fitted on a seeded random subset of that size (Fashion-MNIST's
57,000 x 784 = 44.7 M values are all used); the test split is reconstructed in batches.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.decomposition import PCA

from aelab.data.dataset import ImageSplit
from aelab.errors import AelabError
from aelab.evaluation.reconstruction import psnr_per_image

FIT_VALUES = 50_000_000
"""PCA is fitted on at most this many pixel values (200 MB as float32): a seeded random subset of the images of
larger training sets."""
BATCH = 2_000


def _flat(split: ImageSplit) -> np.ndarray:
    return split.floats().reshape(len(split), -1).numpy()


def fit_pca(train: ImageSplit, n_components: int, seed: int = 0) -> PCA:
    """PCA with ``n_components`` fitted on ``train``.

    Raises:
        AelabError: more components than pixels or than training images.
    """
    n, d = len(train), train.pixels
    if not 1 <= n_components <= min(n, d):
        raise AelabError(
            f"PCA: {n_components} components requested; allowed: 1..{min(n, d)} ({n} training images of {d} pixels)"
        )
    # 'auto' picks the covariance eigendecomposition when there are many more images than pixels (the usual
    # case here: exact, and ~5x faster than randomized SVD at 64 components on Fashion-MNIST), else an SVD.
    if n * d > FIT_VALUES:
        keep = max(FIT_VALUES // d, n_components)
        train = train.take(torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:keep].sort().values)
    return PCA(n_components=n_components, svd_solver="auto", random_state=seed).fit(_flat(train))


def pca_reconstruct(pca: PCA, split: ImageSplit) -> torch.Tensor:
    """Reconstructions ``(N, C, H, W)`` float32 of ``split`` (clipped to [0, 1] for images)."""
    x = _flat(split)
    out = pca.inverse_transform(pca.transform(x))
    if split.dtype == torch.uint8:
        out = np.clip(out, 0.0, 1.0)
    return torch.from_numpy(out.astype(np.float32)).view(split.shape)


def pca_baseline(train: ImageSplit, test: ImageSplit, n_components: int, seed: int = 0) -> dict:
    """Test MSE (per pixel) and PSNR (dB, per image, averaged) of PCA at ``n_components``."""
    pca = fit_pca(train, n_components, seed)
    sq_err = psnr_sum = 0.0
    for start in range(0, len(test), BATCH):
        part = test.take(torch.arange(start, min(start + BATCH, len(test))))
        recon, x = pca_reconstruct(pca, part), part.floats()
        sq_err += float((recon - x).pow(2).sum(dtype=torch.float64))
        if test.dtype == torch.uint8:
            psnr_sum += float(psnr_per_image(recon, x).sum(dtype=torch.float64))
    return {
        "model": f"PCA ({n_components} components)",
        "kind": "pca",
        "code_size": n_components,
        "compression_ratio": test.pixels / n_components,
        "parameters": int(pca.components_.size + pca.mean_.size),
        "test_mse": sq_err / (len(test) * test.pixels),
        "test_psnr": psnr_sum / len(test) if test.dtype == torch.uint8 else None,
        "explained_variance": float(pca.explained_variance_ratio_.sum()),
    }
