"""Hidden activations along an encoder: the path RaPP compares for an input and its reconstruction (Kim et al.,
"RaPP: Novelty Detection with Reconstruction along Projection Pathway", ICLR 2020)."""

from __future__ import annotations

import torch
from torch import nn

NONLINEARITIES = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Softplus,
    nn.Hardtanh,
)
"""Modules whose output ends a hidden layer."""


def hidden_layer_outputs(encoder: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The hidden layers' outputs of a sequential ``encoder`` for inputs ``x`` ``(N, ...)``, each flattened to float32
    ``(N, F_i)`` (copies): the output of every nonlinearity and of every block (a module with modules of its own,
    e.g. a residual stage) that no nonlinearity follows, before the last module (whose output is the code). An
    encoder that is not an ``nn.Sequential`` has no path to walk: an empty list."""
    if not isinstance(encoder, nn.Sequential):
        return []
    modules = list(encoder)
    outputs: list[torch.Tensor] = []
    h = x
    for module, following in zip(modules[:-1], modules[1:]):
        h = module(h)
        block = next(module.children(), None) is not None and not isinstance(following, NONLINEARITIES)
        if isinstance(module, NONLINEARITIES) or block:
            outputs.append(h.flatten(1).float().clone())  # a copy: a later in-place module may not change it
    return outputs
