"""Input corruption for denoising autoencoders (Vincent et al. 2008; the Full Code Guide's denoising
section). Applied per batch on the batch's device with the global torch RNG, so a fresh corruption is
drawn every step and a run stays reproducible from its seed.
"""

from __future__ import annotations

import torch

from aelab.config import CorruptionConfig


def corrupt(x: torch.Tensor, config: CorruptionConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """A corrupted copy of ``x``.

    Args:
        x: float images ``(N, C, H, W)`` in [0, 1].
        config: ``gaussian`` (adds N(0, std^2)), ``masking`` (a ``fraction`` of pixels set to ``value``) or
            ``salt_pepper`` (a ``fraction`` of pixels set to 0 or 1, half each).
        generator: optional RNG (e.g. a seeded one for a fixed corrupted test set).

    Returns:
        Same shape and dtype as ``x``; clipped to [0, 1] when ``config.clip``.
    """
    if config.kind == "gaussian":
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        out = x + float(config.std or 0.0) * noise
    else:
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        fraction = float(config.fraction or 0.0)
        hit = u < fraction
        if config.kind == "masking":
            out = torch.where(hit, torch.full_like(x, config.value), x)
        else:  # salt and pepper: the hit pixels with u < fraction/2 become 0 (pepper), the rest 1 (salt)
            out = torch.where(hit, (u >= fraction / 2).to(x.dtype), x)
    return out.clamp(0.0, 1.0) if config.clip else out
