"""The one autoencoder class: an encoder, a decoder, and the verbs around them."""

from __future__ import annotations

import math

import torch
from torch import nn


class AutoEncoder(nn.Module):
    """An encoder ``f`` and a decoder ``g``; reconstruction ``x_hat = g(f(x))``.

    ::

        x (N, C, H, W) --encoder--> z (N, *code_shape) --decoder--> x_hat (N, C, H, W)

    Args:
        encoder: maps float images ``(N, C, H, W)`` in [0, 1] to codes ``(N, *code_shape)``.
        decoder: maps codes back to images ``(N, C, H, W)``.
        input_shape: ``(C, H, W)`` the model accepts.
        code_shape: shape of one code, e.g. ``(3,)`` or ``(64, 1, 1)``.
        name: display name (preset name or spec type).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, input_shape: tuple[int, ...],
                 code_shape: tuple[int, ...], name: str = "autoencoder", sparsity: nn.Module | None = None,
                 penalty: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.sparsity = sparsity if sparsity is not None else nn.Identity()
        self.decoder = decoder
        self.penalty = penalty
        self.input_shape = tuple(input_shape)
        self.code_shape = tuple(code_shape)
        self.name = name

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``(N, *code_shape)`` of images ``x`` ``(N, C, H, W)`` (after the sparsity operation)."""
        return self.sparsity(self.encoder(x))

    def forward_with_code(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction ``(N, C, H, W)``, code ``(N, *code_shape)``) in one pass."""
        z = self.encode(x)
        return self.decoder(z), z

    def code_penalty(self, z: torch.Tensor) -> torch.Tensor | None:
        """The sparsity penalty (L1 or KL, already weighted) on codes ``z``, or None without one."""
        return None if self.penalty is None else self.penalty(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images ``(N, C, H, W)`` decoded from codes ``z`` ``(N, *code_shape)``."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``(N, C, H, W)`` of ``x`` ``(N, C, H, W)``."""
        return self.decoder(self.encode(x))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction without gradients (eval mode is the caller's choice)."""
        return self(x)

    @property
    def code_size(self) -> int:
        """Number of values in one code."""
        return math.prod(self.code_shape)

    @property
    def input_size(self) -> int:
        """Number of values in one input image (C*H*W)."""
        return math.prod(self.input_shape)

    @property
    def compression_ratio(self) -> float:
        """Input values per code value (C*H*W / code size)."""
        return self.input_size / self.code_size

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters (shared tensors counted once)."""
        seen = {id(p): p for p in self.parameters() if p.requires_grad or not trainable_only}
        return sum(p.numel() for p in seen.values())
