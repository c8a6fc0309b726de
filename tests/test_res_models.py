"""aelab's res family: shapes and parameter counts by hand, spec errors, and the frontier command."""

import json

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from aelab.cli import app
from aelab.config import FRONTIER_CODE_SIZES, FRONTIER_GENERATIONS, ModelConfig, ResSpec, recipe_of
from aelab.errors import ModelError
from aelab.models import PRESETS, build_model
from aelab.models.resnet import ResBlock
from conftest import error_line, write_idx_dataset


def conv(c_in, c_out, k):
    return c_in * c_out * k * k + c_out


def bn(c):
    return 2 * c


@pytest.mark.parametrize("size", FRONTIER_CODE_SIZES)
def test_res_presets_shapes_and_parameters(size):
    m = build_model(f"res-{size}")
    flat = 32 * 7 * 7  # the 32x7x7 map after two stride-2 stages
    hidden = [256, 64] if size <= 3 else [256]  # the small codes get a second fully-connected layer
    chain = [flat, *hidden, size]
    fully_connected = sum(a * b + b for a, b in zip(chain[:-1], chain[1:])) + sum(
        a * b + b for a, b in zip(chain[::-1][:-1], chain[::-1][1:])
    )
    convs = conv(1, 16, 3) + bn(16) + conv(16, 32, 3) + bn(32) + bn(32) + conv(32, 16, 4) + bn(16) + conv(16, 1, 4)
    assert convs == 13_457  # (a ConvTranspose's bias has out-channels entries, as conv() counts)
    assert m.num_parameters() == convs + fully_connected
    if size == 64:
        assert m.num_parameters() == 851_185
    x = torch.rand(3, 1, 28, 28)
    out = m(x)
    assert m.code_shape == (size,) and out.code.shape == (3, size)
    assert out.reconstruction.shape == (3, 1, 28, 28)
    assert 0 <= out.reconstruction.min() and out.reconstruction.max() <= 1
    assert PRESETS[f"res-{size}"].recipe == "aelab"


@pytest.mark.parametrize("upsample, norm", [("transpose", "batch"), ("nearest", "group"), ("pixel_shuffle", "none")])
def test_res_spec_variants(upsample, norm):
    spec = ResSpec(channels=[8, 16, 16], blocks=[1, 0, 2], code_size=5, upsample=upsample, norm=norm, activation="gelu")
    m = build_model(ModelConfig(spec=spec), (3, 32, 32))
    assert m(torch.rand(2, 3, 32, 32)).reconstruction.shape == (2, 3, 32, 32)
    blocks = [b for b in m.modules() if isinstance(b, ResBlock)]
    assert len(blocks) == 2 * 3  # encoder and decoder alike
    norms = [x for x in m.modules() if isinstance(x, (nn.BatchNorm2d, nn.GroupNorm))]
    assert (len(norms) > 0) == (norm != "none")
    if norm == "group":
        assert all(g.num_groups == 8 for g in norms)


def res_block(c):
    return bn(c) + conv(c, c, 3) + bn(c) + conv(c, c, 3)


@pytest.mark.parametrize("size", FRONTIER_CODE_SIZES)
def test_res_v2_presets_change_one_thing_of_res(size):
    old, new = build_model(f"res-{size}"), build_model(f"res-v2-{size}")
    if size <= 3:  # a wider bottleneck: 1568 -> 512 -> 512 -> 64 -> code instead of 1568 -> 256 -> 64 -> code
        wide = 1568 * 512 + 512 + 512 * 512 + 512 + 512 * 64 + 64
        narrow = 1568 * 256 + 256 + 256 * 64 + 64
        decoder = 64 * 512 + 512 + 512 * 512 + 512 + 512 * 1568 + 1568 - (64 * 256 + 256 + 256 * 1568 + 1568)
        assert new.num_parameters() - old.num_parameters() == wide - narrow + decoder
        assert not [b for b in new.modules() if isinstance(b, ResBlock)]
    else:  # one residual block per stage (16 and 32 channels), in the encoder and the decoder
        assert new.num_parameters() - old.num_parameters() == 2 * (res_block(16) + res_block(32)) == 46_656
        assert len([b for b in new.modules() if isinstance(b, ResBlock)]) == 4
    assert new(torch.rand(2, 1, 28, 28)).code.shape == (2, size)
    if size == 3:
        assert new.num_parameters() == 2_213_044


@pytest.mark.parametrize("size", [2, 3])
def test_res_v3_presets_are_res_v2_with_gelu_and_the_generation_keeps_res_v2_elsewhere(size):
    old, new = build_model(f"res-v2-{size}"), build_model(f"res-v3-{size}")
    assert new.num_parameters() == old.num_parameters()
    acts = [type(m).__name__ for m in new.modules() if isinstance(m, (nn.GELU, nn.SiLU))]
    assert acts and set(acts) == {"GELU"}
    assert len(acts) == len([m for m in old.modules() if isinstance(m, nn.SiLU)])
    assert recipe_of(ModelConfig(preset=f"res-v3-{size}"), {}) == recipe_of(ModelConfig(preset=f"res-v2-{size}"), {})
    assert FRONTIER_GENERATIONS["res-v3"] == {
        2: "res-v3-2",
        3: "res-v3-3",
        10: "res-v2-10",
        16: "res-v2-16",
        32: "res-v2-32",
        64: "res-v2-64",
    }


def test_res_v2_training_fields_fill_in_under_their_own_recipe():
    aelab = recipe_of(ModelConfig(preset="res-v2-3"), {})
    assert (aelab["lr"], aelab["epochs"], aelab["optimizer"], aelab["schedule"]) == (1.5e-3, 20, "adamw", "cosine")
    assert recipe_of(ModelConfig(preset="res-v2-64"), {})["epochs"] == 12
    assert recipe_of(ModelConfig(preset="res-v2-64"), {"recipe": "aelab"})["epochs"] == 12  # named, still its own
    assert recipe_of(ModelConfig(preset="res-v2-64"), {"epochs": 3})["epochs"] == 3  # the config wins
    assert recipe_of(ModelConfig(preset="res-v2-3"), {"recipe": "tutorial"}) == {"recipe": "tutorial"}
    assert recipe_of(ModelConfig(preset="res-3"), {})["lr"] == 3e-3


def test_res_block_keeps_its_input_for_the_skip():
    block = ResBlock(4, "none", "relu")
    x = torch.randn(2, 4, 5, 5)
    kept = x.clone()
    y = block(x)
    assert torch.equal(x, kept)  # an in-place activation on x would change the skip
    assert torch.allclose(y, kept + block.body(kept))


def test_res_spec_errors():
    with pytest.raises(ValueError, match="blocks: got 3 numbers for 2 stages"):
        ResSpec(channels=[8, 16], blocks=[1, 1, 1])
    with pytest.raises(ModelError, match="divisible by 8; the images are 28x28"):
        build_model(ModelConfig(spec=ResSpec(channels=[8, 16, 32])), (1, 28, 28))


runner = CliRunner()


def test_frontier_command(tmp_path):
    data = write_idx_dataset(tmp_path / "fmnist", n_train=120, n_test=40)
    args = [
        "frontier",
        "--code-sizes",
        "2,3",
        "--epochs",
        "1",
        "--data-dir",
        str(data),
        "--no-analysis",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--no-progress",
        "--name",
        "f",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "runs" / "f" / "metrics.json").read_text())
    assert [r["model"] for r in metrics["runs"]] == ["res-v3-2", "res-v3-3", "linear-3"]
    assert [r["code_size"] for r in metrics["runs"]] == [2, 3, 3]
    assert [b["model"] for b in metrics["baselines"]][:2] == ["PCA (2 components)", "PCA (3 components)"]
    assert (tmp_path / "runs" / "f" / "rate_distortion.png").is_file()
    report = (tmp_path / "runs" / "f" / "report.html").read_text()
    assert "<h2>Rate-distortion</h2>" in report and 'alt="rate_distortion.png"' in report
    runs = (tmp_path / "runs" / "f" / "experiment.yaml").read_text()
    assert "res-v3-2" in runs and "optimizer" not in runs  # the recipe is the preset's, not written out
    result = runner.invoke(app, [*args[:-1], "g", "--presets", "res", "--code-sizes", "64", "--no-tutorial"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "runs" / "g" / "metrics.json").read_text())
    assert [(r["model"], r["epochs"]) for r in metrics["runs"]] == [("res-64", 1)]


def test_frontier_refuses_unknown_code_sizes(tmp_path):
    result = runner.invoke(app, ["frontier", "--code-sizes", "2,5", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert "--code-sizes: got 2,5; allowed: one or more of 2,3,10,16,32,64" in error_line(result)
    result = runner.invoke(app, ["frontier", "--code-sizes", "two", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "--code-sizes: got 'two'" in error_line(result)
    result = runner.invoke(app, ["frontier", "--presets", "res-v9", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert error_line(result) == "error: --presets: got 'res-v9'; allowed: res-v3, res-v2, res"
    assert not (tmp_path / "runs").exists()
