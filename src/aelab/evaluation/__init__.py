"""Test-set metrics: MSE, PSNR, SSIM, and the mean-image baseline."""

from aelab.evaluation.metrics import evaluate, mean_image_mse

__all__ = ["evaluate", "mean_image_mse"]
