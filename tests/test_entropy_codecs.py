"""Entropy coding of codes (a factorized model, constriction's range coder) and the classical codecs (JPEG, WebP,
PNG through Pillow) beside the autoencoder in the compression analysis."""

import json
import math

import numpy as np
import pytest
import torch

from aelab.config import DataConfig, MLPSpec, ModelConfig, TrainingConfig
from aelab.data import load_dataset
from aelab.errors import AelabError
from aelab.evaluation.compression import compression
from aelab.evaluation.entropy import FactorizedModel, entropy_coded_indices
from aelab.evaluation.image_codecs import bytes_at_psnr, codec_point, header_bytes
from aelab.models import build_model
from aelab.training import train


def test_the_factorized_model_is_a_smoothed_histogram_of_the_training_levels():
    model = FactorizedModel.fit(torch.tensor([[0.0], [1.0], [1.0], [1.0]]))
    assert model.probabilities.shape == (1, 256)
    assert model.probabilities[0, 0] == pytest.approx(2 / 260) and model.probabilities[0, 255] == pytest.approx(4 / 260)
    assert model.probabilities[0, 7] == pytest.approx(1 / 260)  # add-one smoothing: every level can be coded
    symbols = model.symbols(torch.tensor([[1.0], [5.0], [-3.0], [0.25]]))  # clamped to the training range
    assert symbols[:, 0].tolist() == [255, 255, 0, 64]
    assert model.ideal_bits(symbols[:1]) == pytest.approx(-math.log2(4 / 260))
    assert model.dequantize(symbols)[:, 0].tolist() == pytest.approx([1.0, 1.0, 0.0, 64 / 255])


def test_the_range_coder_gives_back_random_codes_exactly_at_about_the_ideal_rate():
    rng = np.random.default_rng(0)
    train_codes = torch.from_numpy(rng.laplace(0, [1.0, 0.1, 3.0, 0.5], (5000, 4)).astype(np.float32))
    model = FactorizedModel.fit(train_codes)
    symbols = model.symbols(torch.from_numpy(rng.laplace(0, [1.0, 0.1, 3.0, 0.5], (700, 4)).astype(np.float32)))
    stream = model.encode(symbols)
    assert np.array_equal(model.decode(stream, len(symbols)), symbols)
    ideal = model.ideal_bits(symbols) / 8
    assert ideal <= len(stream) <= ideal * 1.01 + 8  # a range coder is within a few bytes of the information
    assert len(stream) < 700 * 4  # fewer than the 8 bits per value of the raw levels
    with pytest.raises(AelabError, match="whole 32-bit words; got 3 bytes"):
        model.decode(stream[:3], len(symbols))


def test_codec_files_are_real_and_png_is_lossless():
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 28 * 28).reshape(1, 28, 28)
    images = torch.from_numpy(np.stack([ramp + rng.normal(0, 8, (1, 28, 28)) for _ in range(5)]).clip(0, 255))
    images = images.to(torch.uint8)
    png = codec_point(images, "PNG")
    assert png["psnr"] == math.inf and png["bytes_per_image"] > header_bytes("PNG")
    low, high = codec_point(images, "JPEG", 5), codec_point(images, "JPEG", 90)
    assert low["bytes_per_image"] < high["bytes_per_image"] and low["psnr"] < high["psnr"] < math.inf
    webp = codec_point(images, "WebP", 50)
    assert webp["codec"] == "WebP" and 15 < webp["psnr"] < 60


def test_bytes_at_a_psnr_interpolate_in_log_bytes():
    points = [
        {"codec": "JPEG", "psnr": 20.0, "bytes_per_image": 100.0},
        {"codec": "JPEG", "psnr": 30.0, "bytes_per_image": 1000.0},
    ]
    assert bytes_at_psnr(points, "JPEG", 25.0) == pytest.approx(math.sqrt(100 * 1000))
    assert bytes_at_psnr(points, "JPEG", 35.0) is None and bytes_at_psnr(points, "WebP", 25.0) is None


def test_the_compression_analysis_has_the_entropy_coded_code_and_the_codecs():
    data = load_dataset(DataConfig(name="digits"), seed=0)
    torch.manual_seed(0)
    model = build_model(ModelConfig(spec=MLPSpec(hidden=[32], code_size=6)), data.shape)
    train(model, data, TrainingConfig(epochs=3, batch_size=32), progress=False)
    rows = compression(model, data)
    storage = [r["storage"] for r in rows]
    assert storage[:4] == ["float32", "float16", "uint8", "uint8, entropy coded (factorized, range coder)"]
    coded = rows[3]
    assert coded["code_bytes"] < 6 and coded["ideal_bytes"] <= coded["code_bytes"]  # under 8 bits per unit
    assert coded["psnr"] == pytest.approx(rows[2]["psnr"], abs=0.5)  # 8-bit levels either way
    codecs = {r["codec"] for r in rows if "codec" in r}
    assert codecs == {"JPEG", "WebP", "PNG"}
    assert f"PNG lossless ({len(data.test):,} test images)" in storage


def test_index_grids_are_coded_with_per_position_marginals():
    rng = np.random.default_rng(0)
    train = torch.stack([torch.full((100,), 3), torch.from_numpy(rng.integers(0, 4, 100))], 1).view(100, 1, 2)
    test = torch.stack([torch.full((40,), 3), torch.from_numpy(rng.integers(0, 4, 40))], 1).view(40, 1, 2)
    sizes = entropy_coded_indices(train, test, levels=4)
    counts = np.bincount(train[:, 0, 1].numpy(), minlength=4) + 1  # position 1's add-one histogram
    by_hand = -40 * math.log2(101 / 104) - sum(math.log2(counts[s] / 104) for s in test[:, 0, 1].tolist())
    assert sizes["ideal_bytes_per_image"] == pytest.approx(by_hand / 8 / 40)
    assert sizes["ideal_bytes_per_image"] <= sizes["bytes_per_image"] <= sizes["ideal_bytes_per_image"] + 0.2


def test_codecs_table_row_by_hand():
    from aelab.evaluation.rate_distortion import best_coded, table_row

    points = [
        {"codec": "JPEG", "quality": 10, "bytes_per_image": 100.0, "psnr": 20.0, "ssim": 0.5},
        {"codec": "JPEG", "quality": 50, "bytes_per_image": 400.0, "psnr": 30.0, "ssim": 0.9},
        {"codec": "WebP", "quality": 1, "bytes_per_image": 50.0, "psnr": 22.0, "ssim": 0.6},
        {"codec": "WebP", "quality": 50, "bytes_per_image": 200.0, "psnr": 32.0, "ssim": 0.95},
    ]
    rows = [
        {"storage": "uint8", "code_bytes": 64.0, "psnr": 25.0},
        {"storage": "uint8, entropy coded (factorized)", "code_bytes": 40.0, "psnr": 25.0, "ssim": 0.8},
        {"storage": "indices, entropy coded (prior)", "code_bytes": 30.0, "psnr": 25.0, "ssim": 0.8},
        {"storage": "JPEG q10", "code_bytes": 100.0, "psnr": 20.0, "codec": "JPEG"},
    ]
    coded = best_coded(rows)
    assert coded is rows[2]
    row = table_row("m", coded, points)
    assert row["jpeg_bytes_at_psnr"] == pytest.approx(200.0)  # halfway in log bytes: sqrt(100 * 400)
    assert row["webp_bytes_at_psnr"] == pytest.approx(50 * 4**0.3)
    assert row["share_of_best_codec"] == pytest.approx(30 / (50 * 4**0.3)) and row["bits_per_image"] == 240
    low = table_row("m", {**coded, "psnr": 21.0}, points)  # WebP's sweep starts at 22 dB: no share
    assert low["webp_bytes_at_psnr"] is None and low["share_of_best_codec"] is None
    assert low["jpeg_bytes_at_psnr"] == pytest.approx(100 * 4**0.1)


def test_codec_points_have_ssim_and_png_is_lossless():
    from aelab.evaluation.image_codecs import codec_point

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (6, 1, 28, 28), generator=g, dtype=torch.uint8)
    png, jpeg = codec_point(images, "PNG"), codec_point(images, "JPEG", 10)
    assert png["ssim"] == 1.0 and png["psnr"] == float("inf")
    assert 0 < jpeg["ssim"] < 1 and jpeg["psnr"] < 30


def test_codecs_command_on_an_experiment(tmp_path, idx_dir):
    from typer.testing import CliRunner

    from aelab.cli import app
    from conftest import error_line

    runner = CliRunner()
    runs = tmp_path / "runs"
    base = ["--dataset", "mnist", "--data-dir", str(idx_dir), "--runs-dir", str(runs), "--epochs", "1"]
    r = runner.invoke(app, ["compare", "--models", "linear-3,conv-64", *base, "--name", "c", "--no-analysis"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["codecs", str(runs / "c")])
    assert r.exit_code == 0, r.output
    data = json.loads((runs / "c" / "codecs.json").read_text())
    assert [row["model"] for row in data["models"]] == ["linear-3", "conv-64", "PCA (3)", "PCA (64)"]
    for row in data["models"]:
        assert row["code_bytes"] > 0 and 0 < row["ssim"] <= 1 and row["bits_per_image"] == row["code_bytes"] * 8
    assert {p["codec"] for p in data["codecs"]} == {"JPEG", "WebP", "PNG"}
    assert all(p["ssim"] is not None for p in data["codecs"])
    assert (runs / "c" / "codecs.png").stat().st_size > 10_000 and "PCA (64)" in r.output
    r = runner.invoke(app, ["codecs", str(tmp_path)])
    assert r.exit_code == 2 and "is not an aelab run or experiment folder" in error_line(r)
