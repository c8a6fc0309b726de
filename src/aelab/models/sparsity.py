"""Code sparsity: hard top-k, lifetime (winner-take-all) top-k, and L1 / KL-divergence penalties.

Source: Jian Zhong, "Autoencoders with PyTorch: Full Code Guide" (2024), sections on hard sparsity,
soft sparsity and lifetime sparsity. All operations are vectorized over samples and units; codes of any
shape ``(N, *code_shape)`` are treated as ``(N, D)`` with ``D = prod(code_shape)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from aelab.config import SparsityConfig
from aelab.errors import ModelError


def _keep_topk(z: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """Zero all but the ``k`` largest entries along ``dim``; the gradient flows only through the kept ones."""
    values, idx = z.topk(k, dim=dim)
    return torch.zeros_like(z).scatter(dim, idx, values)


class TopK(nn.Module):
    """Hard top-k per sample: keep the ``k`` largest of the ``D`` code units of each sample.

    Shape: ``(N, *code_shape)`` -> same shape, exactly ``k`` entries per sample kept (the rest 0), in
    training and in evaluation.
    """

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        flat = z.flatten(1)
        return _keep_topk(flat, self.k, dim=1).view_as(z)

    def lacks(self, need: str) -> str | None:
        """What a model with this code cannot give (see :meth:`aelab.models.AutoEncoder.lacks`): a search over
        the code (``continuous_code``) would move the units that top-k keeps at 0."""
        if need == "continuous_code":
            return "its code keeps only its top-k values (a search would change the others too)"
        return None

    def extra_repr(self) -> str:
        return f"k={self.k}"


class LifetimeTopK(nn.Module):
    """Lifetime (winner-take-all) sparsity: for each code unit keep its ``k`` largest values across the
    batch, zero the rest. ``k`` is a count, or ``ceil(fraction * N)`` for a batch of N (at least 1).
    Training only: in eval mode the code passes through unchanged.
    """

    def __init__(self, k: int | None = None, fraction: float | None = None) -> None:
        super().__init__()
        if (k is None) == (fraction is None):
            raise ValueError("give k or fraction")
        self.k, self.fraction = k, fraction

    def batch_k(self, n: int) -> int:
        """Units kept per code unit for a batch of ``n`` samples."""
        k = self.k if self.k is not None else math.ceil(self.fraction * n)  # type: ignore[operator]
        return max(1, min(k, n))

    def check_batch_size(self, batch_size: int) -> None:
        """Refuse a count ``k`` larger than the training batch.

        Raises:
            ModelError: ``k > batch_size``.
        """
        if self.k is not None and self.k > batch_size:
            raise ModelError(
                f"sparsity lifetime:{self.k}: k is larger than the batch ({batch_size}); allowed: "
                f"1..{batch_size}, or a fraction of the batch such as lifetime:0.05"
            )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return z
        flat = z.flatten(1)
        return _keep_topk(flat, self.batch_k(flat.shape[0]), dim=0).view_as(z)

    def extra_repr(self) -> str:
        return f"k={self.k}" if self.k is not None else f"fraction={self.fraction}"


class L1Penalty(nn.Module):
    """``weight * mean(|z|)`` over all code values of the batch (a scalar)."""

    def __init__(self, weight: float) -> None:
        super().__init__()
        self.weight = weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.weight * z.abs().mean()


def kl_divergence(rho: float, rho_hat: torch.Tensor) -> torch.Tensor:
    """``KL(rho || rho_hat) = rho log(rho/rho_hat) + (1-rho) log((1-rho)/(1-rho_hat))``, elementwise."""
    return rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))


class KLPenalty(nn.Module):
    """``weight * mean_j KL(rho || rho_hat_j)`` with ``rho_hat_j`` the batch mean of code unit ``j``.

    Codes must lie in (0, 1); ``rho_hat`` is clamped to ``[eps, 1 - eps]`` so a saturated unit gives a
    large finite penalty instead of NaN.
    """

    def __init__(self, rho: float, weight: float, eps: float = 1e-6) -> None:
        super().__init__()
        self.rho, self.weight, self.eps = rho, weight, eps

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        rho_hat = z.flatten(1).float().mean(0).clamp(self.eps, 1 - self.eps)
        return self.weight * kl_divergence(self.rho, rho_hat).mean()


def build_sparsity(config: SparsityConfig | None) -> tuple[nn.Module, nn.Module | None]:
    """(operation on the code, penalty on the code or None) for a sparsity config."""
    if config is None:
        return nn.Identity(), None
    if config.kind == "topk":
        return TopK(config.k), None  # type: ignore[arg-type]
    if config.kind == "lifetime":
        return LifetimeTopK(config.k, config.fraction), None
    if config.kind == "l1":
        return nn.Identity(), L1Penalty(config.weight)  # type: ignore[arg-type]
    return nn.Identity(), KLPenalty(config.rho, config.weight)  # type: ignore[arg-type]
