"""The gated PixelCNN over a grid of codebook indices (van den Oord et al., "Conditional Image Generation with
PixelCNN Decoders", NeurIPS 2016), the autoregressive prior of a VQ-VAE's code (van den Oord et al. 2017, sec. 3.3).

The grid ``(N, h, w)`` of indices in ``0..K-1`` is read in raster order: the distribution of index ``i`` is
conditioned on the indices before it (the rows above, and the positions to its left in its row)::

    indices (N, h, w) --embedding--> (N, C, h, w)
    vertical stack:   conv over the rows above and the current row (kernel (k//2 + 1) x k, cropped)
    horizontal stack: conv over the current row, positions to the left (1 x (k//2 + 1); the first layer
                      strictly left: 1 x k//2), plus the vertical stack shifted down one row (1x1 conv)
    each layer:       gated unit tanh(W_f * v) * sigmoid(W_g * v), a 1x1 conv and a residual connection on the
                      horizontal stack (not on the first layer, whose input is the current position)
    head:             ReLU, 1x1 conv, ReLU, 1x1 conv -> logits (N, K, h, w)

No output position sees its own input or a later one (the vertical stack enters the horizontal one a row late),
and there is no blind spot. The shapes are cropped, not masked, so an output's value does not depend on the
values at later positions at all, which is what lets a range decoder reproduce the encoder's probabilities.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _gate(x: torch.Tensor) -> torch.Tensor:
    f, g = x.chunk(2, dim=1)
    return torch.tanh(f) * torch.sigmoid(g)


class GatedLayer(nn.Module):
    """One gated layer of both stacks; ``first``: the horizontal stack does not see the current position."""

    def __init__(self, channels: int, kernel: int, first: bool) -> None:
        super().__init__()
        p = kernel // 2
        self.p, self.first = p, first
        self.vertical = nn.Conv2d(channels, 2 * channels, (p + 1, kernel))
        self.horizontal = nn.Conv2d(channels, 2 * channels, (1, p if first else p + 1))
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = nn.Conv2d(channels, channels, 1)

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows, cols, p = v.shape[2], v.shape[3], self.p
        v_pre = self.vertical(F.pad(v, (p, p, p, 0)))  # row i: input rows i-p..i
        v_down = F.pad(v_pre, (0, 0, 1, 0))[:, :, :rows]  # row i: input rows i-1-p..i-1
        # columns j-p..j-1 (first layer) or j-p..j
        h_pre = self.horizontal(F.pad(h, (p, 0, 0, 0)))[:, :, :, :cols]
        h_new = self.h_out(_gate(h_pre + self.v_to_h(v_down)))
        return _gate(v_pre), h_new if self.first else h + h_new


class GatedPixelCNN(nn.Module):
    """A gated PixelCNN over index grids: :meth:`forward` maps indices ``(N, h, w)`` int64 in ``0..K-1`` to
    logits ``(N, K, h, w)`` float32, each position's from the indices before it in raster order.

    Args:
        levels: K, the values an index takes (the codebook size).
        channels: C, the features of each stack.
        layers: gated layers (>= 1); the vertical receptive field grows by ``kernel // 2`` rows per layer.
        kernel: odd kernel width (>= 3).
        hidden: channels of the output head.
    """

    def __init__(self, levels: int, channels: int = 64, layers: int = 6, kernel: int = 3, hidden: int = 256) -> None:
        super().__init__()
        self.levels = levels
        self.embedding = nn.Embedding(levels, channels)
        self.layers = nn.ModuleList(GatedLayer(channels, kernel, first=i == 0) for i in range(layers))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, levels, 1))

    def features(self, embedded: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K, h, w)`` of embedded grids ``(N, C, h, w)`` (what the mask tests differentiate)."""
        v = h = embedded
        for layer in self.layers:
            v, h = layer(v, h)
        return self.head(h)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K, h, w)`` of index grids ``(N, h, w)``."""
        return self.features(self.embedding(indices).permute(0, 3, 1, 2))

    def nll(self, indices: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of each grid ``(N, h, w)`` in nats: ``(N,)`` float32."""
        logits = self(indices).float()
        return F.cross_entropy(logits, indices, reduction="none").flatten(1).sum(1)

    @torch.no_grad()
    def sample(self, n: int, shape: tuple[int, int], generator: torch.Generator, batch: int = 1000) -> torch.Tensor:
        """``n`` grids ``(n, h, w)`` int64 drawn position by position (ancestral sampling), with ``generator``
        (a CPU generator: the draws are the same on every device); ``h * w`` passes per batch of ``batch``."""
        device = self.embedding.weight.device
        out = []
        for start in range(0, n, batch):
            m = min(batch, n - start)
            grid = torch.zeros(m, *shape, dtype=torch.long, device=device)
            for i in range(shape[0] * shape[1]):
                r, c = divmod(i, shape[1])
                probs = torch.softmax(self(grid)[:, :, r, c].float(), 1).cpu()
                grid[:, r, c] = torch.multinomial(probs, 1, generator=generator).squeeze(1).to(device)
            out.append(grid.cpu())
        return torch.cat(out) if out else torch.zeros(0, *shape, dtype=torch.long)
