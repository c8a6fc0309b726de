"""One buffer for all parameters: same values, same gradients, same optimizer updates as separate tensors."""

import copy

import torch
import torch.nn.functional as F

from aelab.config import DataConfig, MLPSpec, ModelConfig, TrainingConfig
from aelab.data import load_dataset
from aelab.models import build_model
from aelab.training import train
from aelab.training.flat import FlatParameters, can_flatten

CL = torch.channels_last


def _conv64(seed=0):
    torch.manual_seed(seed)
    return build_model("conv-64").to(memory_format=CL)


def test_parameters_move_into_one_buffer_with_values_and_strides_kept():
    model = _conv64()
    before = {n: (p.detach().clone(), p.stride()) for n, p in model.named_parameters()}
    params = list(model.parameters())
    flat = FlatParameters(params)
    assert flat.param.shape == (210_369,)  # conv-64's parameter count
    start = flat.param.data_ptr()
    end = start + 210_369 * 4
    for name, p in model.named_parameters():
        value, stride = before[name]
        assert torch.equal(p, value) and p.stride() == stride, name
        assert start <= p.data_ptr() < end, name
        assert p.grad.untyped_storage().data_ptr() == flat.param.grad.untyped_storage().data_ptr()
    # the 7x7 conv weight is channels-last: (C_out, C_in, kH, kW) with C_in fastest
    assert model.encoder[4].weight.stride() == (32 * 49, 1, 7 * 32, 32)


def test_gradients_and_adam_steps_equal_separate_tensors():
    ref = _conv64()
    model = copy.deepcopy(ref)
    flat = FlatParameters(list(model.parameters()))
    opt = torch.optim.Adam([flat.param], lr=1e-2)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    torch.manual_seed(1)
    for _ in range(3):
        x = torch.rand(8, 1, 28, 28)
        opt.zero_grad(set_to_none=False)
        F.mse_loss(model(x).reconstruction, x).backward()
        ref_opt.zero_grad(set_to_none=True)
        F.mse_loss(ref(x).reconstruction, x).backward()
        for p, q in zip(model.parameters(), ref.parameters()):
            assert torch.allclose(p.grad, q.grad, rtol=1e-5, atol=1e-8)
        opt.step()
        ref_opt.step()
    for p, q in zip(model.parameters(), ref.parameters()):
        assert torch.allclose(p, q, rtol=1e-5, atol=1e-7)
    assert not torch.equal(model.encoder[0].weight, _conv64().encoder[0].weight)  # it did train
    opt.zero_grad(set_to_none=False)
    assert all(p.grad.abs().max() == 0 for p in model.parameters())


def test_what_cannot_share_a_buffer():
    a = torch.nn.Parameter(torch.zeros(3))
    assert not can_flatten([])
    assert not can_flatten([a, a])  # the same tensor twice
    assert not can_flatten([a, torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))])
    assert not can_flatten([torch.nn.Parameter(torch.zeros(4, 4)[:, :2])])  # not dense
    b = torch.nn.Parameter(torch.zeros(2))
    b.grad = torch.zeros(2)
    assert not can_flatten([b])
    assert can_flatten([a, torch.nn.Parameter(torch.zeros(2, 3).t().contiguous())])


def test_train_optimizes_one_buffer_and_leaves_frozen_layers_alone():
    ds = load_dataset(DataConfig(name="digits"), seed=0)
    torch.manual_seed(0)
    model = build_model(ModelConfig(spec=MLPSpec(hidden=[32], code_size=8)), (1, 8, 8))
    frozen = model.encoder[1]
    frozen.weight.requires_grad_(False)
    frozen_before = frozen.weight.detach().clone()
    train(model, ds, TrainingConfig(epochs=1, batch_size=50), progress=False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    storages = {p.untyped_storage().data_ptr() for p in trainable}
    assert len(trainable) == 7 and len(storages) == 1  # 4 Linear layers (8 tensors), one weight frozen
    assert torch.equal(frozen.weight, frozen_before) and frozen.weight.grad is None
