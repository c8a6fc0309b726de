"""Small layer helpers shared by the MLP and conv builders, and aelab's conv layers.

:class:`Conv2d` and :class:`ConvTranspose2d` are ``nn.Conv2d`` / ``nn.ConvTranspose2d`` (same arguments,
parameters, state dict, printed name and values up to float rounding) with fast paths for two layer shapes
that PyTorch's general convolution handles slowly on CPU, both common in autoencoders:

* a kernel that covers the whole input (the ``conv-64`` bottleneck: 7x7 conv on a 7x7 map -> 1x1 code, and
  its mirror, a transposed conv of a 1x1 code) is exactly a fully-connected layer: one matrix multiply;
* a transposed conv with one output channel (the last decoder layer for grayscale images) computed as one
  GEMM followed by a scatter-add of the ``kH x kW`` patches ("col2im"); its backward stays PyTorch's.

Measured per layer and per training step in BENCHMARKS.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(inplace=True),
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
}


def activation(name: str) -> list[nn.Module]:
    """The activation module as a list ([] for 'identity', so printed models carry no no-op layers)."""
    return [] if name == "identity" else [ACTIVATIONS[name]()]


def memory_format_of(model: nn.Module) -> torch.memory_format:
    """The layout ``model`` runs fastest in: ``torch.channels_last`` when it has a 2-D convolution (oneDNN on the
    CPU and cuDNN on the GPU pick their fastest kernels for channels-last tensors), else
    ``torch.contiguous_format``. The trainer, :func:`aelab.models.load` and the evaluation's batches lay the
    weights and the ``(N, C, H, W)`` inputs out this way; the values agree between the two layouts up to float
    rounding (about 1e-9 in a test pass, ``benchmarks/bench_evaluation.py``)."""
    return torch.channels_last if any(isinstance(m, nn.Conv2d) for m in model.modules()) else torch.contiguous_format


def _is_channels_last(t: torch.Tensor) -> bool:
    """True for a 4-D tensor laid out channels-last (and not also plain contiguous, as 1-channel ones are)."""
    return t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


class Conv2d(nn.Conv2d):
    """``nn.Conv2d``; when the kernel covers the whole unpadded input (output 1x1), one matrix multiply.

    Input ``(N, C_in, kH, kW)`` -> output ``(N, C_out, 1, 1)``: the conv is a fully-connected layer on the
    flattened input. Several times faster on CPU than a general convolution call. Any other input size or
    configuration is ``nn.Conv2d.forward``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            x.dim() != 4
            or x.shape[-2:] != self.kernel_size
            or self.padding != (0, 0)
            or self.groups != 1
            or self.dilation != (1, 1)
        ):
            return super().forward(x)
        if _is_channels_last(x):
            # Flatten in (H, W, C) order, a free view of channels-last memory, so the gradient that flows
            # back is channels-last too (a layout mismatch makes the ReLU backward before this layer ~10x slower).
            x2, w2 = x.permute(0, 2, 3, 1).flatten(1), self.weight.permute(0, 2, 3, 1).flatten(1)
        else:
            x2, w2 = x.flatten(1), self.weight.flatten(1)
        return F.linear(x2, w2, self.bias)[:, :, None, None]

    def _get_name(self) -> str:
        return "Conv2d"


class ConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` with two fast paths:

    * a 1x1 input without padding: one matrix multiply whose output is reshaped to ``(N, C_out, kH, kW)``
      (any device);
    * one output channel on CPU (float32/float64): :class:`_ScatterConvTranspose2d`.

    Everything else (an explicit ``output_size`` included) is ``nn.ConvTranspose2d.forward``.
    """

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        plain = (
            output_size is not None
            or x.dim() != 4
            or self.groups != 1
            or self.dilation != (1, 1)
            or self.padding_mode != "zeros"
        )
        if not plain and x.shape[-2:] == (1, 1) and self.padding == (0, 0) and self.output_padding == (0, 0):
            return self._one_by_one(x)
        if (
            not plain
            and self.out_channels == 1
            and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.float64)
        ):
            return _ScatterConvTranspose2d.apply(
                x, self.weight, self.bias, self.stride, self.padding, self.output_padding
            )
        return super().forward(x, output_size)

    def _one_by_one(self, x: torch.Tensor) -> torch.Tensor:
        c_out, (kh, kw) = self.out_channels, self.kernel_size
        if _is_channels_last(self.weight):
            # a channels-last model gets a channels-last output: (N, kH, kW, C_out) seen as (N, C_out, kH, kW)
            out = x.flatten(1) @ self.weight.permute(0, 2, 3, 1).flatten(1)
            out = out.view(x.shape[0], kh, kw, c_out).permute(0, 3, 1, 2)
        else:
            out = (x.flatten(1) @ self.weight.flatten(1)).view(x.shape[0], c_out, kh, kw)
        return out + self.bias[None, :, None, None] if self.bias is not None else out

    def _get_name(self) -> str:
        return "ConvTranspose2d"


def stock_layers(model: nn.Module) -> nn.Module:
    """Turn aelab's :class:`Conv2d` / :class:`ConvTranspose2d` in ``model`` back into the stock PyTorch
    classes, in place (same parameters and values; PyTorch's code paths). Returns ``model``.

    For comparing against code written with stock layers (``benchmarks/bench_trainer.py``), or for tools
    that only know the stock classes.
    """
    for module in model.modules():
        for stock in (nn.ConvTranspose2d, nn.Conv2d):
            if isinstance(module, stock) and type(module) is not stock:
                module.__class__ = stock
    return model


class _ScatterConvTranspose2d(torch.autograd.Function):
    """Transposed convolution with one output channel: GEMM + scatter-add forward, PyTorch's backward.

    Forward, for ``x`` ``(N, C_in, H, W)`` and ``weight`` ``(C_in, 1, kH, kW)``::

        x as (N*H*W, C_in) @ weight as (C_in, kH*kW)  ->  one kH x kW patch per input pixel
        patches added into a zero (N, (H-1)*sH + kH, (W-1)*sW + kW) map at stride (sH, sW)   ("col2im")
        crop ``padding`` (and extend by ``output_padding``)  ->  (N, 1, H_out, W_out)

    PyTorch's CPU kernel for this shape (a strided backward-data convolution with one channel) is slow; the
    GEMM is padded to 16 columns because BLAS is several times slower at 9. Backward: the gradients are a
    strided convolution of the output gradient, which PyTorch does fast (``aten.convolution_backward``).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, output_padding):
        n, c_in, h, w = x.shape
        kh, kw = weight.shape[-2:]
        (sh, sw), (ph, pw), (oph, opw) = stride, padding, output_padding
        ho, wo = (h - 1) * sh - 2 * ph + kh + oph, (w - 1) * sw - 2 * pw + kw + opw
        k = kh * kw
        wmat = F.pad(weight.reshape(c_in, k), (0, -k % 16))
        patches = (x.permute(0, 2, 3, 1).reshape(n * h * w, c_in) @ wmat)[:, :k]
        patches = patches.unflatten(1, (kh, kw)).unflatten(0, (n, h, w))
        full = x.new_zeros(n, max((h - 1) * sh + kh, ph + ho), max((w - 1) * sw + kw, pw + wo))
        for i in range(kh):
            for j in range(kw):
                full[:, i : i + sh * (h - 1) + 1 : sh, j : j + sw * (w - 1) + 1 : sw] += patches[:, :, :, i, j]
        y = full[:, None, ph : ph + ho, pw : pw + wo]
        y = y + bias.view(1, 1, 1, 1) if bias is not None else y.contiguous()
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, padding, output_padding, bias is not None)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, weight = ctx.saved_tensors
        stride, padding, output_padding, has_bias = ctx.conf
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], has_bias and ctx.needs_input_grad[2]]
        gx, gw, gb = torch.ops.aten.convolution_backward(
            gy,
            x,
            weight,
            [1] if has_bias else None,
            list(stride),
            list(padding),
            [1, 1],
            True,
            list(output_padding),
            1,
            mask,
        )
        return gx, gw, gb, None, None, None
