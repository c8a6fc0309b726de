"""Quantization of codes to stored levels: what ``aelab encode --bits`` writes and the compression table and the
entropy models measure."""

from __future__ import annotations

import torch

from aelab.errors import ConfigError

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
    if bits not in QUANT_BITS:
        raise ConfigError(f"--bits: got {bits}; allowed: {', '.join(map(str, QUANT_BITS))}")
    codes = codes.float()
    d = codes.shape[1]
    if bits == 32:
        return codes.clone(), torch.zeros(d), torch.ones(d)
    levels = 2**bits - 1
    low = codes.min(0).values if len(codes) else torch.zeros(d)
    high = codes.max(0).values if len(codes) else torch.zeros(d)
    scale = ((high - low) / levels).clamp_min(1e-12)
    q = ((codes - low) / scale).round().clamp_(0, levels)
    return q.to(torch.uint8 if bits == 8 else torch.int32), low, scale


def dequantize(q: torch.Tensor, low: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Codes float32 ``(N, D)`` back from :func:`quantize`'s ``(q, low, scale)``: ``q * scale + low``."""
    return q.float() * scale.float() + low.float()
