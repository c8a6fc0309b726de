"""Reconstruction metrics on a whole split, computed in batches on the model's device.

* MSE: mean squared error per pixel over the whole split, images in [0, 1] (the tutorials' number).
* PSNR (dB): torchmetrics ``PeakSignalNoiseRatio(data_range=1)`` per image, averaged over images.
* SSIM: torchmetrics ``StructuralSimilarityIndexMeasure(data_range=1)``, averaged over images (Gaussian
  window 11, or the largest odd size that fits smaller images).
"""

from __future__ import annotations

import torch
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from aelab.data.dataset import ImageSplit
from aelab.models.autoencoder import AutoEncoder


def _ssim_kernel(h: int, w: int) -> int:
    k = min(11, h, w)
    return k if k % 2 == 1 else k - 1


@torch.no_grad()
def evaluate(model: AutoEncoder, split: ImageSplit, batch_size: int = 1000) -> dict[str, float]:
    """Reconstruction quality of ``model`` on ``split``.

    Args:
        model: the autoencoder (put in eval mode here); its device is used.
        split: uint8 images ``(N, C, H, W)``.

    Returns:
        ``{"mse": float, "psnr": float (dB), "ssim": float in [-1, 1], "images": N}``.
    """
    model.eval()
    device = next(model.parameters()).device
    _, _, h, w = split.images.shape
    psnr = PeakSignalNoiseRatio(data_range=1.0, reduction="elementwise_mean", dim=(1, 2, 3)).to(device)
    ssim = StructuralSimilarityIndexMeasure(data_range=1.0, kernel_size=_ssim_kernel(h, w)).to(device)
    sq_err = torch.zeros((), dtype=torch.float64, device=device)
    for _, x in split.batches(batch_size, device):
        out = model(x).float().clamp(0, 1)
        sq_err += (out - x).pow(2).sum(dtype=torch.float64)
        psnr.update(out, x)
        ssim.update(out, x)
    n_values = split.images.numel()
    return {"mse": float(sq_err / n_values), "psnr": float(psnr.compute()), "ssim": float(ssim.compute()),
            "images": len(split)}


def mean_image_mse(train: ImageSplit, test: ImageSplit) -> float:
    """MSE per pixel on ``test`` of always predicting the mean training image (the trivial baseline)."""
    mean = train.floats().mean(0, keepdim=True)
    return float((test.floats() - mean).pow(2).mean())
