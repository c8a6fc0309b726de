"""The Wasserstein autoencoder (WAE-MMD): the kernel MMD by hand, the loss, its settings, and that training pulls
the codes toward the prior. Its conformance (build, save/load, resume, analyses, export) is test_conformance.py."""

import math

import pytest
import torch
from torch import nn

from aelab.config import ModelConfig, TrainingConfig
from aelab.errors import AelabError, ConfigError
from aelab.models import build_model
from aelab.models.wae import WassersteinAutoEncoder, WassersteinConfig, imq_mmd
from aelab.training import train


def test_imq_mmd_by_hand():
    # n = 2, d = 1, one scale s = 0.5: C = 2 * 1 * 0.5 = 1, k(a, b) = 1 / (1 + (a - b)^2)
    z, p = torch.tensor([[0.0], [1.0]]), torch.tensor([[2.0], [0.5]])
    k = lambda a, b: 1 / (1 + (a - b) ** 2)  # noqa: E731
    zz = 2 * k(0, 1) / 2
    pp = 2 * k(2, 0.5) / 2
    zp = (k(0, 2) + k(0, 0.5) + k(1, 2) + k(1, 0.5)) / 4
    assert float(imq_mmd(z, p, [0.5])) == pytest.approx(zz + pp - 2 * zp, abs=1e-6)
    assert float(imq_mmd(z[:1], p[:1])) == 0.0  # one sample: no estimate


def test_imq_mmd_is_near_zero_for_the_prior_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(500, 8, generator=g), torch.randn(500, 8, generator=g)
    same, shifted = float(imq_mmd(a, b)), float(imq_mmd(a + 1.0, b))
    assert abs(same) < 0.01 and shifted > 10 * abs(same)


def test_loss_is_squared_error_per_image_plus_weighted_mmd():
    enc = nn.Sequential(nn.Flatten(1), nn.Linear(4, 2))
    dec = nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Unflatten(1, (1, 2, 2)))
    model = WassersteinAutoEncoder(enc, dec, (1, 2, 2), (2,), "tiny", WassersteinConfig(weight=3.0))
    x = torch.rand(5, 1, 2, 2)
    torch.manual_seed(1)
    out = model.train()(x)
    torch.manual_seed(1)
    prior = torch.randn(5, 2)
    assert float(out.penalty.detach()) == pytest.approx(3.0 * float(imq_mmd(enc(x), prior).detach()), abs=1e-6)
    assert float(out.terms["mmd"].detach()) == pytest.approx(float(imq_mmd(enc(x), prior).detach()), abs=1e-6)
    by_hand = float((dec(enc(x)) - x).pow(2).sum((1, 2, 3)).mean().detach())
    assert float(model.reconstruction_loss(out, x, None).detach()) == pytest.approx(by_hand, abs=1e-5)
    assert model.eval()(x).penalty is None  # no prior samples when evaluating
    assert model.loss_unit("mse").startswith("squared error per image") and model.samplers[0] == "prior"


def test_settings_are_checked_by_the_family():
    assert build_model(ModelConfig(preset="wae-conv-16", settings={"weight": 2})).wasserstein.weight == 2.0
    assert ModelConfig(preset="wae-conv-16", settings={"weight": 2}).label == "wae-conv-16 weight:2"
    with pytest.raises(ConfigError, match="model.settings: unknown key 'lambda'; allowed keys here: weight, kernel"):
        build_model(ModelConfig(preset="wae-conv-16", settings={"lambda": 2}))
    with pytest.raises(ConfigError, match=r"model.settings: weight: Input should be greater than 0 \(got 0\)"):
        build_model(ModelConfig(spec={"type": "mlp", "code_size": 2}, family="wae", settings={"weight": 0}), (1, 4, 4))
    with pytest.raises(ValueError, match="settings: they belong to a model family; give 'family' too"):
        ModelConfig(preset="res-16", settings={"weight": 2})
    with pytest.raises(
        ConfigError, match="model.family: got 'gan'; allowed: autoencoder, vae, vqvae, vqvae-pixelcnn, wae"
    ):
        build_model(ModelConfig(spec={"type": "mlp"}, family="gan"), (1, 4, 4))
    with pytest.raises(AelabError, match="a WAE matches a code vector to N\\(0, I\\)"):
        build_model(ModelConfig(preset="conv-64", family="wae"))


def test_training_pulls_the_codes_toward_the_prior():
    g = torch.Generator().manual_seed(0)
    from aelab.data import ImageDataset, ImageSplit

    x = (torch.rand(256, 1, 8, 8, generator=g) * 255).to(torch.uint8)
    split = ImageSplit(x, torch.zeros(256, dtype=torch.long))
    ds = ImageDataset("noise", split, ImageSplit(x[:16], split.labels[:16]), ImageSplit(x[:64], split.labels[:64]))
    torch.manual_seed(0)
    model = build_model(
        ModelConfig(spec={"type": "mlp", "hidden": [32], "code_size": 4}, family="wae", settings={"weight": 100.0}),
        (1, 8, 8),
    )
    before = model.test_measures(ds.test)["test_mmd"]
    result = train(model, ds, TrainingConfig(epochs=15, batch_size=64, lr=3e-3), progress=False)
    after = model.test_measures(ds.test)["test_mmd"]
    assert after < 0.5 * before and math.isfinite(result.history.train_loss[-1])
    assert len(result.history.terms["mmd"]) == 15
