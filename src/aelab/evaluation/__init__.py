"""Test-set metrics: MSE, PSNR, SSIM, the mean-image baseline, code sparsity and denoising."""

from aelab.evaluation.codes import code_sparsity, denoising_metrics, encode_split
from aelab.evaluation.metrics import evaluate, mean_image_mse

__all__ = ["evaluate", "mean_image_mse", "code_sparsity", "denoising_metrics", "encode_split"]
