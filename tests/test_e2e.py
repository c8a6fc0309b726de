"""End to end: the real CLI on subsets of the real Fashion-MNIST (installed by .ci/run)."""

import json
import subprocess
import sys

import pytest
from PIL import Image

from conftest import has_real_fashion_mnist

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.requires("real Fashion-MNIST"),
    pytest.mark.skipif(not has_real_fashion_mnist(), reason="needs Debian's dataset-fashion-mnist"),
]


def test_compare_on_real_fashion_mnist(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "aelab",
        "compare",
        "--epochs",
        "3",
        "--train-limit",
        "4000",
        "--test-limit",
        "1000",
        "--log-interval",
        "1",
        "--runs-dir",
        str(tmp_path),
        "--name",
        "fm",
        "--no-progress",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    print(out.stdout)
    assert "linear-3" in out.stdout and "conv-64" in out.stdout and "mean image" in out.stdout
    exp = tmp_path / "fm"
    metrics = json.loads((exp / "metrics.json").read_text())
    rows = {m["model"]: m for m in metrics["runs"]}
    baseline = [b["test_mse"] for b in metrics["baselines"] if b["kind"] == "mean-image"][0]
    assert 0.08 < baseline < 0.1  # Fashion-MNIST's mean image leaves ~0.087 per pixel
    for row in rows.values():
        assert row["test_mse"] < 0.6 * baseline
        assert row["final_train_loss"] < 0.1 and row["test_images"] == 1000
    assert rows["conv-64"]["test_mse"] < rows["linear-3"]["test_mse"]  # the tutorial's finding, even after 3 epochs
    grid = Image.open(exp / "reconstructions_epoch_003.png")
    assert grid.size[0] > 300 and grid.size[1] > 200
    html = (exp / "report.html").read_text()
    # loss curves + 3 grids + rate-distortion (code sizes 3 and 64) + 9 analyses of linear-3 (with samples and
    # traversals) + 8 of conv-64 (samples; no traversals of its 64x1x1 map)
    assert html.count("data:image/png;base64,") == 1 + 3 + 1 + 9 + 8
    assert (exp / "rate_distortion.png").is_file()
    assert "PCA (3 components)" in html and "PCA (64 components)" in html
    listing = subprocess.run(
        [sys.executable, "-m", "aelab", "runs", "--runs-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listing.returncode == 0 and "linear-3" in listing.stdout and "conv-64" in listing.stdout


def test_generative_presets_on_real_fashion_mnist(tmp_path):
    """A short real-data run of each generative preset, through the CLI, with its measures and figures."""
    cmd = [
        sys.executable,
        "-m",
        "aelab",
        "compare",
        "--models",
        "vae-2,vae-conv-16,cvae-conv-16,vqvae-conv",
        "--epochs",
        "2",
        "--train-limit",
        "3000",
        "--test-limit",
        "500",
        "--runs-dir",
        str(tmp_path),
        "--name",
        "gen",
        "--no-progress",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    rows = {m["model"]: m for m in json.loads((tmp_path / "gen" / "metrics.json").read_text())["runs"]}
    assert set(rows) == {"vae-2", "vae-conv-16", "cvae-conv-16", "vqvae-conv"}
    for name in ("vae-2", "vae-conv-16", "cvae-conv-16"):
        r = rows[name]
        # a Bernoulli -ELBO of Fashion-MNIST lies far below the 543 nats of p = 0.5 everywhere (784 ln 2)
        assert 200 < r["test_nelbo"] < 784 * 0.6932
        assert r["test_iwae_nll"] <= r["test_nelbo_subset"]  # the IWAE bound is at least the ELBO
        assert r["active_units"] >= 1 and r["frechet_distance"] > 0
    assert 0.1 < rows["cvae-conv-16"]["sample_class_accuracy"] <= 1  # above chance (10 classes) after 2 epochs
    # well below the mean image (0.087) after 46 steps; the codebook is still settling (0.004 after 20 full epochs)
    assert rows["vqvae-conv"]["bits_per_image"] == 392 and rows["vqvae-conv"]["test_mse"] < 0.05
    assert "generative measures" in out.stdout
    runs = {p.name.rsplit("-", 1)[0]: p for p in (tmp_path / "gen").iterdir() if p.is_dir()}
    assert (runs["vae-2"] / "analysis" / "manifold.png").is_file()
    assert Image.open(runs["cvae-conv-16"] / "analysis" / "generate.png").size[1] > 400  # one row per class
