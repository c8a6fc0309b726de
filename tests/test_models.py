import pytest
import torch
from torch import nn

from aelab.config import (
    PRESETS,
    ConvLayerSpec,
    ConvSpec,
    DeconvLayerSpec,
    MLPSpec,
    ModelConfig,
    TrainingConfig,
    recipe_of,
)
from aelab.errors import ModelError
from aelab.models import build_model


def linear_params(sizes):
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def conv_params(c_in, c_out, k):
    return c_in * c_out * k * k + c_out


def test_linear3_matches_tutorial():
    m = build_model("linear-3")
    enc = linear_params([784, 128, 64, 12, 3])
    dec = linear_params([3, 12, 64, 128, 784])
    assert m.num_parameters() == enc + dec == 219_891
    assert [type(l).__name__ for l in m.encoder] == [
        "Flatten",
        "Linear",
        "ReLU",
        "Linear",
        "ReLU",
        "Linear",
        "ReLU",
        "Linear",
    ]
    assert type(m.decoder[-2]).__name__ == "Sigmoid"
    assert m.code_shape == (3,) and m.compression_ratio == pytest.approx(784 / 3)


def test_conv64_matches_tutorial():
    m = build_model("conv-64")
    enc = conv_params(1, 16, 3) + conv_params(16, 32, 3) + conv_params(32, 64, 7)
    dec = (64 * 32 * 49 + 32) + (32 * 16 * 9 + 16) + (16 * 1 * 9 + 1)  # ConvTranspose bias = out channels
    assert m.num_parameters() == enc + dec == 210_369
    convt = [l for l in m.decoder if isinstance(l, nn.ConvTranspose2d)]
    assert [(l.kernel_size[0], l.stride[0], l.padding[0], l.output_padding[0]) for l in convt] == [
        (7, 1, 0, 0),
        (3, 2, 1, 1),
        (3, 2, 1, 1),
    ]
    x = torch.rand(5, 1, 28, 28)
    assert m.encode(x).shape == (5, 64, 1, 1)
    assert m(x).reconstruction.shape == (5, 1, 28, 28)


def test_other_presets_parameter_counts():
    assert build_model("linear-10").num_parameters() == (
        linear_params([784, 128, 64, 12, 10]) + linear_params([10, 12, 64, 128, 784])
    )
    assert build_model("fc-64").num_parameters() == 784 * 64 + 64 + 64 * 784 + 784
    cifar = (
        conv_params(3, 8, 4)
        + conv_params(8, 16, 4)
        + conv_params(16, 32, 4)
        + (32 * 16 * 16 + 16)
        + (16 * 8 * 16 + 8)
        + (8 * 3 * 16 + 3)
    )
    assert build_model("cifar-conv").num_parameters() == cifar
    assert build_model("cifar-conv").code_shape == (32, 4, 4)
    pool = conv_params(1, 16, 3) + conv_params(16, 4, 3) + (4 * 16 * 4 + 16) + (16 * 1 * 4 + 1)
    m = build_model("conv-pool")
    assert m.num_parameters() == pool == 1077 and m.code_shape == (4, 7, 7)
    assert not any(isinstance(l, nn.ReLU) for l in m.encoder)  # the post's encoder has no activation


def test_preset_that_does_not_fit_names_both_shapes():
    with pytest.raises(ModelError) as exc:
        build_model("linear-3", (3, 32, 32))
    assert "expects images of 1x28x28 but the data has 3x32x32" in str(exc.value)


def test_unknown_preset():
    with pytest.raises(ModelError, match="unknown model preset 'vgg'; allowed: linear-3"):
        build_model("vgg")


def test_mlp_spec_options():
    spec = MLPSpec(hidden=[32], code_size=5, batchnorm=True, dropout=0.1, decoder=[16, 48], code_activation="sigmoid")
    m = build_model(ModelConfig(spec=spec), (3, 8, 8))
    kinds = [type(l).__name__ for l in m.encoder]
    assert kinds == ["Flatten", "Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear", "Sigmoid"]
    dec_lin = [l.out_features for l in m.decoder if isinstance(l, nn.Linear)]
    assert dec_lin == [16, 48, 192]
    z = m.eval().encode(torch.rand(4, 3, 8, 8))
    assert z.shape == (4, 5) and bool(((z > 0) & (z < 1)).all())


def test_conv_spec_fc_decoder_and_explicit_decoder():
    spec = ConvSpec(layers=[ConvLayerSpec(channels=4, kernel=3, stride=2, padding=1)], decoder="fc", fc_hidden=[20])
    m = build_model(ModelConfig(spec=spec), (1, 10, 10))
    assert m.code_shape == (4, 5, 5) and m.reconstruct(torch.rand(2, 1, 10, 10)).shape == (2, 1, 10, 10)
    spec = ConvSpec(
        layers=[ConvLayerSpec(channels=4, kernel=2, stride=2)],
        decoder=[DeconvLayerSpec(channels=1, kernel=2, stride=2)],
    )
    assert build_model(ModelConfig(spec=spec), (1, 10, 10)).reconstruct(torch.rand(1, 1, 10, 10)).shape == (
        1,
        1,
        10,
        10,
    )
    bad = ConvSpec(
        layers=[ConvLayerSpec(channels=4, kernel=2, stride=2)],
        decoder=[DeconvLayerSpec(channels=1, kernel=3, stride=1)],
    )
    with pytest.raises(ModelError, match="decoder outputs 1x7x7 but the input is 1x10x10"):
        build_model(ModelConfig(spec=bad), (1, 10, 10))


def test_mirror_handles_odd_sizes():
    spec = ConvSpec(
        layers=[
            ConvLayerSpec(channels=8, kernel=3, stride=2, padding=1),
            ConvLayerSpec(channels=8, kernel=3, stride=2, padding=1),
        ]
    )
    for size in (27, 28, 29, 32):
        m = build_model(ModelConfig(spec=spec), (1, size, size))
        assert m.reconstruct(torch.rand(1, 1, size, size)).shape == (1, 1, size, size)


def test_conv_that_shrinks_to_nothing():
    spec = ConvSpec(layers=[ConvLayerSpec(channels=8, kernel=9)])
    with pytest.raises(ModelError, match="shrinks a 8x8 input to nothing"):
        build_model(ModelConfig(spec=spec), (1, 8, 8))


@pytest.mark.parametrize("name", ["linear-3", "fc-64"])
def test_save_and_load_round_trip_of_tied_models(name, tmp_path):
    """Every preset's round trip is in test_conformance.py; tied weights are one tensor in two places."""
    import json

    from aelab.models import load

    torch.manual_seed(0)
    m = build_model(ModelConfig(preset=name, tied=True)).eval()
    m.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["input_shape"] == list(m.input_shape) and meta["model"]["preset"] == name and meta["model"]["tied"]
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    loaded = load(tmp_path / "m")
    x = torch.rand(3, *m.input_shape)
    assert torch.equal(loaded.reconstruct(x), m.reconstruct(x))
    assert loaded.num_parameters() == m.num_parameters() and loaded.code_shape == m.code_shape


def test_a_convolutional_model_is_loaded_and_evaluated_channels_last_with_the_same_values(tmp_path):
    from aelab.data.dataset import ImageSplit
    from aelab.evaluation import evaluate
    from aelab.evaluation.batches import batches
    from aelab.models import load
    from aelab.models.layers import memory_format_of

    assert memory_format_of(build_model("linear-3")) == torch.contiguous_format
    torch.manual_seed(0)
    m = build_model("res-16", (3, 32, 32)).eval()
    assert memory_format_of(m) == torch.channels_last
    m.save(tmp_path / "m")
    loaded = load(tmp_path / "m")
    kernels = [p for p in loaded.parameters() if p.dim() == 4]
    assert kernels and all(p.is_contiguous(memory_format=torch.channels_last) for p in kernels)
    assert not all(p.is_contiguous() for p in kernels)  # 3 input channels: the two layouts differ
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    split = ImageSplit(images, torch.zeros(5, dtype=torch.long))
    [(where, x, y)] = list(batches(loaded, split, batch_size=8))
    assert where == slice(0, 8) and y is None
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    assert torch.equal(x, images.float() / 255)
    plain = images.float() / 255  # the original model, contiguous weights and inputs
    with torch.no_grad():
        mse = float((m.clamp(m.reconstruct(plain)) - plain).pow(2).mean())
    assert evaluate(loaded, split)["mse"] == pytest.approx(mse, rel=1e-5)
    loaded.save(tmp_path / "again")  # channels-last weights are written as ordinary tensors
    with torch.no_grad():
        assert torch.allclose(load(tmp_path / "again").reconstruct(plain), m.reconstruct(plain), atol=1e-6)


def test_load_refuses_what_is_not_a_model(tmp_path):
    from aelab.errors import AelabError
    from aelab.models import load

    with pytest.raises(AelabError, match="is not a saved aelab model"):
        load(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(AelabError, match="is not an aelab model config"):
        load(tmp_path)


def test_forward_gives_reconstruction_code_and_penalty():
    m = build_model(ModelConfig(preset="fc-64", sparsity="l1:0.5"))
    x = torch.rand(4, 1, 28, 28)
    out = m(x)
    assert out.reconstruction.shape == x.shape and out.code.shape == (4, 64)
    assert torch.allclose(out.penalty, 0.5 * out.code.abs().mean())
    assert build_model("fc-64")(x).penalty is None


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_preset_written_out_is_the_same_model_with_the_same_training(name):
    """``Preset.written_out`` (what ``aelab models NAME`` prints): a spec config that builds the preset's weights at
    the same seed and gets the preset's training fields."""
    preset = PRESETS[name]
    written = preset.written_out()
    config = ModelConfig.model_validate(written["model"])
    assert config.preset is None and written["training"]["recipe"] == preset.recipe
    assert config.spec == preset.spec  # activations and other fields without weights too
    torch.manual_seed(0)
    named = build_model(name).state_dict()
    torch.manual_seed(0)
    spelled = build_model(config, input_shape=preset.input_shape).state_dict()
    assert list(spelled) == list(named)
    assert all(torch.equal(spelled[k], named[k]) for k in named)

    def fields(model, given):
        return TrainingConfig.model_validate(recipe_of(model, given)).model_dump(exclude={"recipe"})

    assert fields(config, written["training"]) == fields(ModelConfig(preset=name), {})
