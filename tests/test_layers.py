"""aelab's conv layers: same values and gradients as PyTorch's, on the fast paths and off them."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aelab.models import build_model
from aelab.models.layers import Conv2d, ConvTranspose2d, stock_layers

CL = torch.channels_last


def _grads(out, tensors, g):
    return torch.autograd.grad(out, tensors, g)


def _max_diff(a, b):
    return max((x - y).abs().max().item() for x, y in zip(a, b))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_full_kernel_conv_and_one_by_one_transpose_match_pytorch(channels_last, bias):
    # the conv-64 bottleneck shape: 7x7 kernel on a 7x7 map -> 1x1 code, and its mirror
    torch.manual_seed(0)
    conv, convt = Conv2d(6, 5, 7, bias=bias).double(), ConvTranspose2d(5, 6, 7, bias=bias).double()
    x = torch.randn(4, 6, 7, 7, dtype=torch.double)
    if channels_last:
        conv, convt, x = conv.to(memory_format=CL), convt.to(memory_format=CL), x.contiguous(memory_format=CL)
    x.requires_grad_(True)
    code = conv(x)
    ref_code = F.conv2d(x, conv.weight, conv.bias)
    out, ref = convt(code), F.conv_transpose2d(ref_code, convt.weight, convt.bias)
    assert code.shape == (4, 5, 1, 1) and out.shape == (4, 6, 7, 7)
    assert (code - ref_code).abs().max() < 1e-12 and (out - ref).abs().max() < 1e-12
    params = [x, conv.weight, convt.weight] + ([conv.bias, convt.bias] if bias else [])
    g = torch.randn_like(out)
    assert _max_diff(_grads(out, params, g), _grads(ref, params, g)) < 1e-12
    # the matrix-multiply paths ran (not PyTorch's convolution), and kept the channels-last layout
    assert "Convolution" not in type(code.grad_fn).__name__
    assert "Convolution" not in type(out.grad_fn).__name__
    if channels_last:
        assert out.is_contiguous(memory_format=CL) and not out.is_contiguous()


def test_one_output_channel_transpose_matches_pytorch():
    # every kernel/stride/padding/output_padding combination up to 4/3/1/2, inputs 1x3 .. 7x9, both layouts
    checked = 0
    for c_in, k, s, p, h, cl in itertools.product([1, 3], [1, 2, 3, 4], [1, 2, 3], [0, 1], [1, 4, 7], [False, True]):
        for op in range(s):
            case = dict(c_in=c_in, k=k, s=s, p=p, op=op, h=h, channels_last=cl)
            torch.manual_seed(0)
            layer = ConvTranspose2d(c_in, 1, k, s, p, output_padding=op).double()
            x = torch.randn(2, c_in, h, h + 2, dtype=torch.double)
            x = (x.contiguous(memory_format=CL) if cl else x).requires_grad_(True)
            try:
                ref = F.conv_transpose2d(x, layer.weight, layer.bias, s, p, op)
            except RuntimeError:  # PyTorch refuses this size too (padding larger than the output)
                continue
            out = layer(x)
            assert type(out.grad_fn).__name__ == "_ScatterConvTranspose2dBackward", case
            assert out.shape == ref.shape and (out - ref).abs().max() < 1e-12, case
            g = torch.randn_like(ref)
            params = [x, layer.weight, layer.bias]
            assert _max_diff(_grads(out, params, g), _grads(ref, params, g)) < 1e-12, case
            checked += 1
    assert checked == 544  # of 576 combinations; PyTorch rejects the other 32 (output would be empty)


def test_other_shapes_use_pytorch_and_state_dicts_match():
    convt = ConvTranspose2d(4, 2, 3, 2, 1, output_padding=1)  # 2 output channels: PyTorch's path
    y = convt(torch.randn(2, 4, 5, 5, requires_grad=True))
    assert "Convolution" in type(y.grad_fn).__name__
    y = Conv2d(3, 4, 3, padding=1)(torch.randn(2, 3, 8, 8))  # kernel smaller than the input
    assert y.shape == (2, 4, 8, 8)
    # explicit output_size goes to PyTorch's code
    ref = nn.ConvTranspose2d(3, 1, 3, 2, 1)
    ours = ConvTranspose2d(3, 1, 3, 2, 1)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 5, 5)
    assert torch.allclose(ours(x, output_size=[10, 10]), ref(x, output_size=[10, 10]))
    assert list(ours.state_dict()) == list(ref.state_dict()) == ["weight", "bias"]


def test_conv64_prints_stock_layer_names_and_matches_stock_model():
    torch.manual_seed(0)
    ours = build_model("conv-64").double()
    assert "Conv2d(1, 16" in repr(ours) and "ConvTranspose2d(16, 1" in repr(ours)
    stock = stock_layers(build_model("conv-64").double())  # the same model with stock PyTorch layers
    assert {type(m) for m in stock.modules()} >= {nn.Conv2d, nn.ConvTranspose2d}
    assert not any(isinstance(m, (Conv2d, ConvTranspose2d)) for m in stock.modules())
    stock.load_state_dict(ours.state_dict())
    x = torch.rand(3, 1, 28, 28, dtype=torch.double)
    for model in (ours, stock):
        model.to(memory_format=CL)
    a, b = ours(x).reconstruction, stock(x).reconstruction
    assert (a - b).abs().max() < 1e-12
    ga = torch.autograd.grad(a.square().sum(), list(ours.parameters()))
    gb = torch.autograd.grad(b.square().sum(), list(stock.parameters()))
    assert _max_diff(ga, gb) < 1e-10
