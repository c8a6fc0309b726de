"""The VQ-VAE: a conv encoder's feature map quantized to a codebook (van den Oord et al. 2017).

::

    x (N,C,H,W) --encoder--> z_e (N, D, h, w) --nearest of K codebook vectors--> z_q (N, D, h, w)
                                                  indices (N, h, w), each log2(K) bits
    decoder(z_e + sg[z_q - z_e]) -> x_hat          (straight-through: the decoder's gradient reaches z_e as is)

    loss = reconstruction + ||sg[z_e] - z_q||^2 (codebook; not with EMA updates) + beta ||z_e - sg[z_q]||^2

EMA codebook (the paper's appendix; Razavi et al. 2019): per batch, ``n_k`` vectors are assigned to entry k with
sum ``m_k``; ``N_k <- g N_k + (1-g) n_k``, ``M_k <- g M_k + (1-g) m_k``, ``e_k = M_k / N~_k`` with Laplace-smoothed
counts ``N~_k = (N_k + eps) / (sum N + K eps) * sum N``. Dead-code restarts (Dhariwal et al. 2020, "Jukebox"): an
entry whose EMA usage falls below ``restart_threshold`` assignments per batch is moved onto a random encoder
vector of the batch. All of it runs on the device without reading a value back.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from aelab.config import QuantizerConfig
from aelab.errors import ModelError
from aelab.models.autoencoder import AEOutput, AutoEncoder
from aelab.models.measures import Measure

EMA_EPS = 1e-5


class VectorQuantizer(nn.Module):
    """Nearest-codebook-vector quantization of ``(N, D, h, w)`` feature maps.

    Buffers: ``codebook`` (K, D) float32 (a Parameter instead when ``ema`` is off), ``usage`` (K,) EMA of the
    assignments per batch, and with ``ema`` the running ``cluster_size`` (K,) and ``cluster_sum`` (K, D).
    """

    codebook: torch.Tensor
    cluster_size: torch.Tensor
    cluster_sum: torch.Tensor
    usage: torch.Tensor

    def __init__(self, dim: int, config: QuantizerConfig) -> None:
        super().__init__()
        self.config = config
        self.dim = dim
        k = config.codebook_size
        init = torch.empty(k, dim).uniform_(-1.0 / k, 1.0 / k)
        if config.ema:
            self.register_buffer("codebook", init)
            self.register_buffer("cluster_size", torch.ones(k))  # so e_k = M_k / N_k starts at init
            self.register_buffer("cluster_sum", init.clone())
        else:
            self.codebook = nn.Parameter(init)
        self.register_buffer("usage", torch.zeros(k))

    @property
    def size(self) -> int:
        return self.config.codebook_size

    def indices(self, z_e: torch.Tensor) -> torch.Tensor:
        """Index of the nearest codebook vector (squared L2) at each position: ``(N, h, w)`` int64."""
        flat = z_e.float().permute(0, 2, 3, 1).reshape(-1, self.dim)
        e = self.codebook
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.t() + e.pow(2).sum(1)
        n, _, h, w = z_e.shape
        return dist.argmin(1).view(n, h, w)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codebook vectors of ``indices`` ``(N, h, w)`` as a map ``(N, D, h, w)`` float32."""
        return self.codebook[indices].permute(0, 3, 1, 2)

    def forward(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(z_q straight-through, indices (N, h, w), penalty (scalar), perplexity of the batch (scalar))``.

        In training mode, also updates the EMA codebook and usage and restarts dead entries.
        """
        z_e = z_e.float()
        idx = self.indices(z_e)
        z_q = self.lookup(idx)
        flat_idx = idx.flatten()
        # (index_add_, not bincount: on CUDA bincount reads the largest index back to the host every step)
        counts = torch.zeros(self.size, device=z_e.device).index_add_(
            0, flat_idx, torch.ones_like(flat_idx, dtype=torch.float32)
        )
        probs = counts / flat_idx.numel()
        perplexity = torch.exp(-(probs * (probs + 1e-10).log()).sum())
        commitment = F.mse_loss(z_e, z_q.detach())
        penalty = self.config.commitment * commitment
        if not self.config.ema:
            penalty = penalty + F.mse_loss(z_q, z_e.detach())
        if self.training:
            with torch.no_grad():
                self._update(z_e, flat_idx, counts)
        return z_e + (z_q - z_e).detach(), idx, penalty, perplexity

    @torch.no_grad()
    def _update(self, z_e: torch.Tensor, flat_idx: torch.Tensor, counts: torch.Tensor) -> None:
        g = self.config.decay
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, self.dim)
        self.usage.mul_(g).add_(counts, alpha=1 - g)
        if self.config.ema:
            sums = torch.zeros_like(self.cluster_sum).index_add_(0, flat_idx, flat)
            self.cluster_size.mul_(g).add_(counts, alpha=1 - g)
            self.cluster_sum.mul_(g).add_(sums, alpha=1 - g)
            total = self.cluster_size.sum()
            smoothed = (self.cluster_size + EMA_EPS) / (total + self.size * EMA_EPS) * total
            self.codebook.copy_(self.cluster_sum / smoothed.unsqueeze(1))
        if self.config.restart_threshold > 0:
            dead = (self.usage < self.config.restart_threshold).unsqueeze(1)  # (K, 1), stays on the device
            pick = flat[torch.randint(flat.shape[0], (self.size,), device=flat.device)]
            self.codebook.data.copy_(torch.where(dead, pick, self.codebook.data))
            # a restarted entry gets a grace period: usage twice the threshold decays below it in ~70 batches
            self.usage.copy_(
                torch.where(dead.squeeze(1), torch.full_like(self.usage, 2 * self.config.restart_threshold), self.usage)
            )
            if self.config.ema:
                self.cluster_size.copy_(
                    torch.where(dead.squeeze(1), torch.ones_like(self.cluster_size), self.cluster_size)
                )
                self.cluster_sum.copy_(torch.where(dead, pick, self.cluster_sum))


class VQAutoEncoder(AutoEncoder):
    """A VQ-VAE (see the module sketch): ``encode`` gives the quantized map ``z_q`` ``(N, D, h, w)`` (the code
    the analyses see), :meth:`indices` the index grid, :meth:`decode_indices` images from index grids.

    ``forward`` returns the reconstruction, ``z_q``, the codebook + commitment penalty and the term
    ``perplexity`` (of the batch's code usage; K when every entry is used equally).
    """

    family = "vqvae"
    layerwise = False
    measures = (
        Measure("bits_per_image", "bits/image", "{:g}", "bits", "generative"),
        Measure("perplexity", "codebook perplexity", "{:.1f}", "", "generative"),
        Measure("dead_codes", "dead codes", "{}", "", "generative"),
    )

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        input_shape: tuple[int, ...],
        code_shape: tuple[int, ...],
        name: str,
        config: QuantizerConfig,
    ) -> None:
        super().__init__(encoder, decoder, input_shape, code_shape, name=name)
        self.quantizer = VectorQuantizer(code_shape[0], config)

    @classmethod
    def from_config(
        cls, spec: Any, input_shape: tuple[int, int, int], config: Any, classes: int, vectors: bool
    ) -> VQAutoEncoder:
        """The body's code map ``(D, h, w)`` is quantized to ``quantizer.codebook_size`` vectors of D values.

        Raises:
            ModelError: vector data, or a spec whose code is not a feature map decoded by conv layers.
        """
        from aelab.models.bodies import build_body, decodes_a_map
        from aelab.models.variational import refuse_vectors

        refuse_vectors(config, vectors)
        if not decodes_a_map(spec):
            raise ModelError(
                f"model {config.label!r}: a quantizer (VQ-VAE) needs a conv spec whose code is a feature "
                "map (D, h, w) decoded by conv layers; allowed: a {type: conv} spec or vqvae-conv"
            )
        encoder, decoder, code_shape = build_body(spec, input_shape)
        return cls(encoder, decoder, input_shape, code_shape, config.label, config.quantizer)

    # ------------------------------------------------------------------------------------- protocol
    @property
    def code_kind(self) -> str:
        return "indices"

    @property
    def code_size(self) -> int:  # type: ignore[override]
        """Number of indices in one code (h * w); each is one of K values."""
        return self.code_shape[1] * self.code_shape[2]

    @property
    def index_levels(self) -> int:
        """K: the values each index can take."""
        return self.quantizer.size

    @property
    def bits_per_image(self) -> float:
        """Exact size of one code: ``h * w * log2(K)`` bits."""
        _, h, w = self.code_shape
        return h * w * math.log2(self.quantizer.size)

    @classmethod
    def figure_line(cls, config: Any) -> str:
        return "VQ-VAEs (code size = indices)"

    @property
    def samplers(self) -> tuple[str, ...]:
        return ("categorical",)

    def lacks(self, need: str) -> Optional[str]:
        if need in ("code_units", "continuous_code"):
            return "its code is a grid of codebook indices"
        return super().lacks(need)

    def test_measures(self, split: Any, seed: int = 0) -> dict:
        """Bits per image, codebook perplexity and dead codes on ``split`` (:meth:`codebook_metrics`); no code
        sparsity measures."""
        return {**self.codebook_metrics(split), "code_l0": None, "dead_units": None, "code_mean_abs": None}

    @torch.no_grad()
    def codebook_metrics(self, split: Any, batch_size: int = 1000) -> dict:
        """The code on ``split``: ``bits_per_image`` (exact: h * w * log2 K), ``code_bytes``, ``perplexity`` (exp
        of the entropy of index use over the split; K at most), ``dead_codes`` (entries never used),
        ``codebook_size``."""
        self.eval()
        counts = torch.zeros(self.quantizer.size, dtype=torch.float64, device=self.device)
        for _, x in split.batches(batch_size, self.device):
            counts += torch.bincount(self.indices(x).flatten(), minlength=self.quantizer.size).double()
        p = counts / counts.sum()
        entropy = float(-(p[p > 0] * p[p > 0].log()).sum())
        return {
            "bits_per_image": self.bits_per_image,
            "code_bytes": self.bits_per_image / 8,
            "perplexity": math.exp(entropy),
            "dead_codes": int((counts == 0).sum()),
            "codebook_size": self.quantizer.size,
        }

    def index_conditionals(self, grids: torch.Tensor) -> Optional[torch.Tensor]:
        """The model's own probabilities of each index given those before it in raster order, float64
        ``(N, h*w, K)``, for grids ``(N, h, w)``; None when it has no model of its indices (a VQ-VAE alone: the
        compression analysis then codes with per-position marginals only)."""
        return None

    def describe(self) -> str:
        d, h, w = self.code_shape
        return (
            f"VQ-VAE: K={self.quantizer.size}, D={d}, {h}x{w} grid = {self.bits_per_image:g} bits "
            f"({self.bits_per_image / 8:g} bytes)"
        )

    # ------------------------------------------------------------------------------------------ verbs
    def indices(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The code of ``x`` as codebook indices ``(N, h, w)`` int64."""
        return self.quantizer.indices(self.encoder(x))

    def decode_indices(self, indices: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images ``(N, C, H, W)`` from index grids ``(N, h, w)``."""
        return self.decoder(self.quantizer.lookup(indices))

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The quantized map ``z_q`` ``(N, D, h, w)`` float32."""
        return self.quantizer.lookup(self.indices(x))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> AEOutput:
        z_q, _, penalty, perplexity = self.quantizer(self.encoder(x))
        return AEOutput(self.decoder(z_q), z_q, penalty, {"perplexity": perplexity})
