import pytest
import torch
from torch import nn

from aelab.config import (
    ConvLayerSpec,
    ConvSpec,
    CorruptionConfig,
    DataConfig,
    MLPSpec,
    ModelConfig,
    TrainingConfig,
    parse_config,
)
from aelab.data import load_dataset
from aelab.data.corruption import corrupt
from aelab.errors import ConfigError, ModelError
from aelab.models import build_model
from aelab.models.tied import TiedLinear, untie
from aelab.training import train
from aelab.training.layerwise import train_layerwise


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DataConfig(name="digits"), seed=0)


def test_tied_layers_share_storage_and_drop_parameters():
    untied = build_model("linear-3")
    tied = build_model(ModelConfig(preset="linear-3", tied=True))
    decoder_weights = 3 * 12 + 12 * 64 + 64 * 128 + 128 * 784
    assert tied.num_parameters() == untied.num_parameters() - decoder_weights == 110_543
    enc = [m for m in tied.encoder if isinstance(m, nn.Linear)]
    dec = [m for m in tied.decoder if isinstance(m, TiedLinear)]
    assert len(dec) == 4
    for e, d in zip(enc, reversed(dec)):
        assert d.weight.data_ptr() == e.weight.data_ptr()
        assert d.weight.shape == (e.in_features, e.out_features)


def test_tied_gradient_reaches_encoder_weight_from_both_sides():
    tied = build_model(
        ModelConfig(spec=MLPSpec(hidden=[], code_size=4, output_activation="identity"), tied=True), (1, 2, 3)
    )
    x = torch.rand(5, 1, 2, 3)
    tied(x).reconstruction.pow(2).sum().backward()
    w = tied.encoder[1].weight
    assert w.grad is not None and w.grad.shape == (4, 6)
    # by hand: y = W^T (W x + b_e) + b_d, d/dW of ||y||^2 has an encoder and a decoder part
    W, be, bd = w.detach().clone().requires_grad_(True), tied.encoder[1].bias.detach(), tied.decoder[0].bias.detach()
    xf = x.flatten(1)
    ((xf @ W.t() + be) @ W + bd).pow(2).sum().backward()
    assert torch.allclose(w.grad, W.grad, atol=1e-5)


def test_untie_keeps_outputs_then_copies_move_apart(digits):
    torch.manual_seed(0)
    model = build_model(ModelConfig(spec=MLPSpec(hidden=[16], code_size=4), tied=True), digits.shape)
    x = digits.test.floats()[:10]
    before = model.eval().reconstruct(x)
    untie(model)
    assert not any(isinstance(m, TiedLinear) for m in model.modules())
    assert torch.allclose(model.reconstruct(x), before, atol=1e-6)
    enc_w, dec_w = model.encoder[1].weight, model.decoder[-3].weight
    assert torch.equal(dec_w, enc_w.t()) and dec_w.data_ptr() != enc_w.data_ptr()
    train(model, digits, TrainingConfig(epochs=2), progress=False)
    assert not torch.allclose(model.decoder[-3].weight, model.encoder[1].weight.t())


def test_tied_refused_on_asymmetric_and_conv():
    with pytest.raises(ModelError, match="encoder \\[64, 32, 5\\] is not mirrored by decoder \\[5, 8, 64\\]"):
        build_model(ModelConfig(spec=MLPSpec(hidden=[32], code_size=5, decoder=[8]), tied=True), (1, 8, 8))
    with pytest.raises(ModelError, match="fully-connected model; 'conv-64 tied' has convolutions"):
        build_model(ModelConfig(preset="conv-64", tied=True))


def test_layerwise_stages_freeze_earlier_layers(digits):
    torch.manual_seed(0)
    model = build_model(ModelConfig(spec=MLPSpec(hidden=[32, 16], code_size=4)), digits.shape)
    e1 = model.encoder[1].weight.detach().clone()
    stage1 = model.stage_model(1)
    assert [m.out_features for m in stage1.modules() if isinstance(m, nn.Linear)] == [32, 64]
    assert stage1.encoder[0][1] is model.encoder[1]  # shared, not copied
    result = train_layerwise(model, digits, TrainingConfig(epochs=2, layerwise_epochs=2), progress=False)
    assert len(result.stages) == 3
    assert [len(s.history.train_loss) for s in result.stages] == [2, 2, 2]
    assert not torch.equal(model.encoder[1].weight, e1)  # trained in stage 1 (and fine-tuning)
    assert all(p.requires_grad for p in model.parameters())


def test_layerwise_stage2_leaves_stage1_layers_untouched(digits, monkeypatch):
    import aelab.training.layerwise as lw

    torch.manual_seed(0)
    model = build_model(ModelConfig(spec=MLPSpec(hidden=[32, 16], code_size=4)), digits.shape)
    seen = []

    def spy(m, ds, cfg, **kw):
        before = model.encoder[1].weight.detach().clone()
        frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
        out = train(m, ds, cfg, **kw)
        seen.append((m.name, frozen, torch.equal(before, model.encoder[1].weight)))
        return out

    monkeypatch.setattr(lw, "train", spy)
    lw.train_layerwise(model, digits, TrainingConfig(epochs=1, layerwise_epochs=1), progress=False)
    (n1, f1, same1), (n2, f2, same2), (n3, f3, same3) = seen
    assert f1 == [] and not same1
    assert set(f2) == {"encoder.1.weight", "encoder.1.bias", "decoder.4.weight", "decoder.4.bias"} and same2
    assert f3 == [] and not same3


def test_layerwise_on_conv_and_refusal():
    m = build_model("conv-64")
    s1 = m.stage_model(1)
    assert s1.reconstruct(torch.rand(2, 1, 28, 28)).shape == (2, 1, 28, 28) and s1.code_shape == (16, 14, 14)
    spec = ConvSpec(
        layers=[
            ConvLayerSpec(channels=4, kernel=3, stride=2, padding=1),
            ConvLayerSpec(channels=4, kernel=3, stride=2, padding=1),
        ],
        decoder="fc",
    )
    with pytest.raises(ModelError, match="mirrors the encoder"):
        build_model(ModelConfig(spec=spec), (1, 8, 8)).stage_model(1)


def test_gaussian_corruption_statistics():
    torch.manual_seed(0)
    x = torch.full((64, 1, 28, 28), 0.5)
    noisy = corrupt(x, CorruptionConfig(kind="gaussian", std=0.3, clip=False))
    assert float((noisy - x).std()) == pytest.approx(0.3, rel=0.02)
    assert float((noisy - x).mean()) == pytest.approx(0.0, abs=0.01)
    assert float(corrupt(x, CorruptionConfig(kind="gaussian", std=2.0)).max()) <= 1.0


def test_masking_and_salt_pepper_fractions():
    torch.manual_seed(0)
    x = torch.full((64, 1, 28, 28), 0.5)
    masked = corrupt(x, CorruptionConfig(kind="masking", fraction=0.3))
    assert float((masked == 0).float().mean()) == pytest.approx(0.3, abs=0.01)
    assert set(masked.unique().tolist()) == {0.0, 0.5}
    sp = corrupt(x, CorruptionConfig(kind="salt_pepper", fraction=0.2))
    assert float((sp == 0).float().mean()) == pytest.approx(0.1, abs=0.01)
    assert float((sp == 1).float().mean()) == pytest.approx(0.1, abs=0.01)


def test_corruption_config_errors():
    for bad, msg in [
        ("gaussian:-0.1", "allowed: std >= 0"),
        ("masking:1.5", "allowed: \\(0, 1\\]"),
        ("blur:2", "allowed kinds: gaussian, masking, salt_pepper"),
    ]:
        with pytest.raises(ConfigError, match=msg):
            parse_config(TrainingConfig, {"corruption": bad})


def test_denoising_training_compares_with_clean_input(digits):
    from aelab.evaluation import denoising_metrics

    torch.manual_seed(0)
    model = build_model(ModelConfig(spec=MLPSpec(hidden=[64], code_size=16)), digits.shape)
    cfg = CorruptionConfig(kind="gaussian", std=0.3)
    train(model, digits, TrainingConfig(epochs=25, batch_size=32, corruption=cfg), progress=False)
    metrics, (clean, noisy, denoised) = denoising_metrics(model, digits.test, cfg, seed=0)
    assert metrics["denoised_psnr"] > metrics["noisy_psnr"] + 2  # it removes noise
    assert clean.shape == noisy.shape == denoised.shape == (8, 1, 8, 8)
    again, _ = denoising_metrics(model, digits.test, cfg, seed=0)
    assert again == metrics  # fixed corrupted test set
