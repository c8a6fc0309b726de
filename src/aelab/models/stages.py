"""The stage split of greedy layer-wise pretraining: which encoder stage goes with which decoder stage.

With encoder stages E1..En and mirrored decoder stages Dn..D1, stage k is the autoencoder
``E1..Ek -> Dk..D1`` (see :mod:`aelab.training.layerwise` for the training schedule)::

    stage 1:  x -> E1 -> D1 -> x_hat
    stage 2:  x -> E1 -> E2 -> D2 -> D1 -> x_hat
"""

from __future__ import annotations

import torch
from torch import nn

from aelab.errors import ModelError
from aelab.models.tied import TiedLinear

WEIGHTED = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, TiedLinear)


def stages_of(seq: nn.Module) -> list[nn.Sequential]:
    """Split a Sequential into stages, each starting at a Linear/Conv layer (leading reshapes join the first)."""
    stages: list[list[nn.Module]] = []
    pending: list[nn.Module] = []
    for layer in seq.children():
        if isinstance(layer, WEIGHTED):
            stages.append(pending + [layer])
            pending = []
        elif stages:
            stages[-1].append(layer)
        else:
            pending.append(layer)
    if pending:
        raise ModelError("layer-wise pretraining needs an encoder and decoder made of Linear/Conv layers")
    return [nn.Sequential(*s) for s in stages]


def mirrored_stages(encoder: nn.Module, decoder: nn.Module, name: str) -> list[tuple[nn.Sequential, nn.Sequential]]:
    """(encoder stage k, decoder stage mirroring it) for k = 1..n.

    Raises:
        ModelError: the encoder and decoder have different numbers of stages.
    """
    enc, dec = stages_of(encoder), stages_of(decoder)
    n = len(enc)
    if len(dec) != n:
        raise ModelError(
            f"layer-wise pretraining needs a decoder that mirrors the encoder; {name!r} has "
            f"{n} encoder and {len(dec)} decoder stages"
        )
    return [(enc[k], dec[n - 1 - k]) for k in range(n)]


def stage_parts(
    encoder: nn.Module, decoder: nn.Module, input_shape: tuple, name: str, k: int
) -> tuple[nn.Sequential, nn.Sequential, tuple]:
    """(encoder, decoder, code shape) of the stage-``k`` autoencoder (1-based): the first ``k`` encoder stages and
    the last ``k`` decoder stages, sharing their layers with the full model.

    Raises:
        ModelError: the decoder does not mirror the encoder (stage shapes don't fit).
    """
    pairs = mirrored_stages(encoder, decoder, name)
    n = len(pairs)
    enc, dec = [e for e, _ in pairs], [d for _, d in reversed(pairs)]
    encoder_k, decoder_k = nn.Sequential(*enc[:k]), nn.Sequential(*dec[n - k :])
    with torch.no_grad():
        device = next(encoder.parameters()).device
        was = encoder.training
        encoder_k.eval(), decoder_k.eval()
        code = encoder_k(torch.zeros(1, *input_shape, device=device))
        try:
            out = decoder_k(code)
        except RuntimeError as exc:
            raise ModelError(
                f"layer-wise stage {k} of {name!r}: decoder stages don't fit the encoder's "
                f"output {tuple(code.shape[1:])} ({str(exc).splitlines()[0]})"
            ) from None
        encoder_k.train(was), decoder_k.train(was)
    if tuple(out.shape[1:]) != tuple(input_shape):
        raise ModelError(
            f"layer-wise stage {k} of {name!r} outputs {tuple(out.shape[1:])}, not the input "
            f"{tuple(input_shape)}; the decoder does not mirror the encoder"
        )
    return encoder_k, decoder_k, tuple(code.shape[1:])
