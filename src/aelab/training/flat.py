"""All trainable parameters in one buffer, so the optimizer step is one fused kernel call on one tensor.

A small autoencoder's training step is dominated by fixed costs rather than arithmetic: on a 2-core CPU,
``torch.optim.Adam(fused=True).step()`` over the 16 tensors of ``linear-3`` costs ~0.3 ms of a ~2.5 ms step,
mostly per-tensor bookkeeping in Python. Here the parameters (and their gradients) become views into one
contiguous buffer each, and the optimizer sees a single parameter: the same element-wise update on the same
numbers, in a few microseconds of overhead. Measured in ``benchmarks/bench_trainer.py`` (see BENCHMARKS.md).

Gradients accumulate into the views in place (autograd does so when ``.grad`` already exists), so the
optimizer must zero them in place, ``optimizer.zero_grad(set_to_none=False)``, never set them to None.
"""

from __future__ import annotations

import torch
from torch import nn


class FlatParameters:
    """Re-home ``params`` in one contiguous buffer; ``.param`` is the single tensor to hand the optimizer.

    Each parameter keeps its identity, shape, strides (channels-last weights included) and values; only its
    storage moves. Its ``.grad`` becomes a view into ``.param.grad``.

    Raises:
        ValueError: no parameters, or parameters of mixed dtype/device, or with overlapping/non-dense
            memory (use :func:`can_flatten` first).
    """

    def __init__(self, params: list[torch.Tensor]):
        if not can_flatten(params):
            raise ValueError("parameters cannot share one buffer (mixed dtype/device or non-dense memory)")
        total = sum(p.numel() for p in params)
        first = params[0]
        self.param = nn.Parameter(torch.empty(total, dtype=first.dtype, device=first.device))
        self.param.grad = torch.zeros_like(self.param)
        offset = 0
        with torch.no_grad():
            for p in params:
                n = p.numel()
                view = self.param.detach().as_strided(p.shape, p.stride(), offset)
                view.copy_(p)
                p.data = view
                p.grad = self.param.grad.as_strided(p.shape, p.stride(), offset)
                offset += n


def can_flatten(params: list[torch.Tensor]) -> bool:
    """True when ``params`` are distinct, non-empty, of one dtype and device, each dense in memory
    (contiguous or channels-last) and without gradients yet."""
    if not params or len({id(p) for p in params}) != len(params):
        return False
    first = params[0]
    for p in params:
        if p.dtype != first.dtype or p.device != first.device or p.grad is not None:
            return False
        dense = p.is_contiguous() or (p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last))
        if not dense:
            return False
    return True
