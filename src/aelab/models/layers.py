"""Small layer helpers shared by the MLP and conv builders."""

from __future__ import annotations

import torch.nn.functional as F
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


class FullKernelConv2d(nn.Conv2d):
    """A ``Conv2d`` whose kernel covers its whole (unpadded) input, so its output is 1x1.

    Such a conv is exactly a fully-connected layer on the flattened input; computing it as one matrix
    multiply gives the same values, parameters and state dict as ``nn.Conv2d`` and is several times faster
    on CPU than a generic convolution call. Inputs of any other size fall back to ``nn.Conv2d``.
    """

    def forward(self, x):
        if x.shape[-2:] != self.kernel_size or self.padding != (0, 0) or self.groups != 1:
            return super().forward(x)
        out = F.linear(x.flatten(1), self.weight.flatten(1), self.bias)
        return out[:, :, None, None]

    def _get_name(self) -> str:
        return "Conv2d"


class FullKernelConvTranspose2d(nn.ConvTranspose2d):
    """A ``ConvTranspose2d`` on a 1x1 input without padding: exactly a fully-connected layer whose output
    is reshaped to ``(C_out, kH, kW)``. Same values, parameters and state dict as ``nn.ConvTranspose2d``."""

    def forward(self, x, output_size=None):
        if (x.shape[-2:] != (1, 1) or self.padding != (0, 0) or self.output_padding != (0, 0)
                or self.groups != 1 or output_size is not None):
            return super().forward(x, output_size)
        c_out, (kh, kw) = self.out_channels, self.kernel_size
        out = x.flatten(1) @ self.weight.flatten(1)
        out = out.view(x.shape[0], c_out, kh, kw)
        return out + self.bias[None, :, None, None] if self.bias is not None else out

    def _get_name(self) -> str:
        return "ConvTranspose2d"
