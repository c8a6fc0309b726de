"""Code statistics (how sparse the codes are), code quantization, and denoising quality on a corrupted test set."""

from __future__ import annotations

import torch

from aelab.config import CorruptionConfig
from aelab.data.corruption import corrupt
from aelab.data.dataset import ImageSplit, to_unit_float
from aelab.evaluation.metrics import psnr_per_image
from aelab.models.autoencoder import AutoEncoder


@torch.no_grad()
def encode_split(model: AutoEncoder, split: ImageSplit, batch_size: int = 1000) -> torch.Tensor:
    """Codes of every image of ``split`` in eval mode, flattened: float32 ``(N, D)`` on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    codes = [model.encode(x).flatten(1).float().cpu() for _, x in split.batches(batch_size, device)]
    return torch.cat(codes)


QUANT_BITS = (8, 16, 32)
"""Bits per code value: 8 / 16 (affine per unit to uint8 / uint16) or 32 (float32 as is)."""


def quantize(codes: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Quantize codes ``(N, D)`` per code unit: ``q = round((z - low_j) / scale_j)`` with ``low_j`` and ``high_j``
    the unit's min and max over these N codes and ``scale_j = (high_j - low_j) / (2^bits - 1)``, so every value
    comes back within ``scale_j / 2`` (the 2 x D float32 ``low``/``scale`` are stored once per set of codes).

    Args:
        codes: float ``(N, D)``.
        bits: 8 (uint8), 16 (uint16) or 32 (float32 kept as is; ``low`` 0 and ``scale`` 1).

    Returns:
        (q ``(N, D)`` uint8 / uint16 (as int32 for 16: torch has no uint16 arithmetic) / float32, low float32
        ``(D,)``, scale float32 ``(D,)``).

    Raises:
        ConfigError: bits not in 8, 16, 32.
    """
    from aelab.errors import ConfigError

    if bits not in QUANT_BITS:
        raise ConfigError(f"--bits: got {bits}; allowed: {', '.join(map(str, QUANT_BITS))}")
    codes = codes.float()
    d = codes.shape[1]
    if bits == 32:
        return codes.clone(), torch.zeros(d), torch.ones(d)
    levels = 2 ** bits - 1
    low = codes.min(0).values if len(codes) else torch.zeros(d)
    high = codes.max(0).values if len(codes) else torch.zeros(d)
    scale = ((high - low) / levels).clamp_min(1e-12)
    q = ((codes - low) / scale).round().clamp_(0, levels)
    return q.to(torch.uint8 if bits == 8 else torch.int32), low, scale


def dequantize(q: torch.Tensor, low: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Codes float32 ``(N, D)`` back from :func:`quantize`'s ``(q, low, scale)``: ``q * scale + low``."""
    return q.float() * scale.float() + low.float()


@torch.no_grad()
def decoded_psnr(model: AutoEncoder, images: torch.Tensor, codes: torch.Tensor, batch_size: int = 1000) -> float:
    """PSNR (dB, per image, averaged) of ``model.decode(codes)`` (clamped to [0, 1]) against uint8 ``images``
    ``(N, C, H, W)``; ``codes`` float ``(N, D)`` or ``(N, *code_shape)``, e.g. dequantized: what storing the
    codes that way costs."""
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    for i in range(0, len(images), batch_size):
        x = to_unit_float(images[i:i + batch_size], device)
        z = codes[i:i + batch_size].to(device).float().view(-1, *model.code_shape)
        total += float(psnr_per_image(model.decode(z).float().clamp(0, 1), x).sum())
    return total / max(len(images), 1)


def code_sparsity(codes: torch.Tensor, threshold: float = 1e-6) -> dict[str, float]:
    """Sparsity of codes ``(N, D)``.

    A value is *active* when ``|z| > threshold`` (default: numerically non-zero).

    Returns:
        ``l0``: mean number of active units per sample; ``l0_fraction``: that over D;
        ``dead_units``: units never active on any sample; ``mean_abs``: mean |z|; ``units``: D.
    """
    active = codes.abs() > threshold
    return {"l0": float(active.sum(1).float().mean()), "l0_fraction": float(active.float().mean()),
            "dead_units": int((~active.any(0)).sum()), "mean_abs": float(codes.abs().mean()),
            "units": int(codes.shape[1])}


@torch.no_grad()
def denoising_metrics(model: AutoEncoder, split: ImageSplit, corruption: CorruptionConfig, seed: int = 0,
                      batch_size: int = 1000) -> tuple[dict[str, float], tuple[torch.Tensor, ...]]:
    """PSNR (dB, per image, averaged) of the corrupted input vs clean and of the reconstruction vs clean.

    The test set is corrupted once with an RNG seeded by ``seed``, so the numbers are repeatable.

    Returns:
        (``{"noisy_psnr", "denoised_psnr", "psnr_gain"}``, (clean, corrupted, denoised) uint8 ``(8, C, H, W)``
        examples for a figure).
    """
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    noisy_sum = denoised_sum = 0.0
    examples = None
    for _, x in split.batches(batch_size, device):
        x_noisy = corrupt(x, corruption, generator=gen)
        out = model.reconstruct(x_noisy).float().clamp(0, 1)
        noisy_sum += float(psnr_per_image(x_noisy.clamp(0, 1), x).sum())
        denoised_sum += float(psnr_per_image(out, x).sum())
        if examples is None:
            examples = tuple((t[:8].clamp(0, 1) * 255).round().to(torch.uint8).cpu() for t in (x, x_noisy, out))
    n = len(split)
    metrics = {"noisy_psnr": noisy_sum / n, "denoised_psnr": denoised_sum / n}
    metrics["psnr_gain"] = metrics["denoised_psnr"] - metrics["noisy_psnr"]
    return metrics, examples  # type: ignore[return-value]
