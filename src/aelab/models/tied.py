"""Tied weights for symmetric fully-connected autoencoders.

Each decoder ``Linear`` is replaced by a :class:`TiedLinear` that uses the transpose of its mirror
encoder ``Linear``'s weight (one shared tensor) and keeps its own bias. :func:`untie` turns them back into
independent ``nn.Linear`` layers with the same values, e.g. to fine-tune. Source: Jian Zhong, "Autoencoders
with PyTorch: Full Code Guide" (2024), "Tying and Untying Layer Weights".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from aelab.errors import ModelError


class TiedLinear(nn.Module):
    """``y = x W_e^T... `` with ``W = source.weight.T``: maps ``(N, source.out_features)`` to
    ``(N, source.in_features)``; only the bias ``(source.in_features,)`` is its own parameter."""

    def __init__(self, source: nn.Linear, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        self._source = [source]  # a plain list: the weight belongs to the encoder, not registered twice
        init = bias.detach().clone() if bias is not None else torch.zeros(source.in_features)
        self.bias = nn.Parameter(init.to(source.weight.device, source.weight.dtype))

    @property
    def source(self) -> nn.Linear:
        return self._source[0]

    @property
    def weight(self) -> torch.Tensor:
        """The tied weight ``(in_features_of_source, out_features_of_source)``: a view of the encoder's."""
        return self.source.weight.t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.source.out_features}, out_features={self.source.in_features}, tied"


def _linears(seq: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    return [
        (parent, name, m)
        for parent in seq.modules()
        for name, m in parent.named_children()
        if isinstance(m, (nn.Linear, TiedLinear))
    ]


def tie_weights(model: nn.Module) -> nn.Module:
    """Tie the decoder of a symmetric fully-connected autoencoder to its encoder, in place.

    Raises:
        ModelError: the model has convolutions, or its decoder does not mirror the encoder.
    """
    if any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in model.modules()):
        raise ModelError(
            f"tied weights need a fully-connected model; {getattr(model, 'name', 'this model')!r} has convolutions"
        )
    enc, dec = _linears(model.get_submodule("encoder")), _linears(model.get_submodule("decoder"))
    shapes_e = [(m.in_features, m.out_features) for _, _, m in enc]
    shapes_d = [(m.out_features, m.in_features) for _, _, m in reversed(dec)]
    if len(enc) != len(dec) or shapes_e != shapes_d:
        sizes_e = [s[0] for s in shapes_e] + [shapes_e[-1][1]] if shapes_e else []
        sizes_d = [m.in_features for _, _, m in dec] + [dec[-1][2].out_features] if dec else []
        raise ModelError(f"tied weights need a symmetric model: encoder {sizes_e} is not mirrored by decoder {sizes_d}")
    for (_, _, enc_layer), (parent, name, dec_layer) in zip(enc, reversed(dec)):
        setattr(parent, name, TiedLinear(enc_layer, dec_layer.bias))  # type: ignore[arg-type]
    return model


def untie(model: nn.Module) -> nn.Module:
    """Replace every :class:`TiedLinear` by an independent ``nn.Linear`` with the same values, in place."""
    for parent, name, m in _linears(model):
        if isinstance(m, TiedLinear):
            layer = nn.Linear(m.source.out_features, m.source.in_features, device=m.bias.device, dtype=m.bias.dtype)
            with torch.no_grad():
                layer.weight.copy_(m.weight)
                layer.bias.copy_(m.bias)
            setattr(parent, name, layer)
    return model
