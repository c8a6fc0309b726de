"""Small layer helpers shared by the MLP and conv builders."""

from __future__ import annotations

from torch import nn

ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(inplace=True),
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "elu": nn.ELU,
}


def activation(name: str) -> list[nn.Module]:
    """The activation module as a list ([] for 'identity', so printed models carry no no-op layers)."""
    return [] if name == "identity" else [ACTIVATIONS[name]()]
