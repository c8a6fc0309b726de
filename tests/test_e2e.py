"""End to end: the real CLI on subsets of the real Fashion-MNIST (installed by .ci/run)."""

import json
import subprocess
import sys

import pytest
from conftest import has_real_fashion_mnist
from PIL import Image

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.requires("real Fashion-MNIST"),
              pytest.mark.skipif(not has_real_fashion_mnist(), reason="needs Debian's dataset-fashion-mnist")]


def test_compare_on_real_fashion_mnist(tmp_path):
    cmd = [sys.executable, "-m", "aelab", "compare", "--epochs", "3", "--train-limit", "4000", "--test-limit", "1000",
           "--log-interval", "1", "--runs-dir", str(tmp_path), "--name", "fm", "--no-progress"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    print(out.stdout)
    assert "linear-3" in out.stdout and "conv-64" in out.stdout and "mean image" in out.stdout
    exp = tmp_path / "fm"
    metrics = json.loads((exp / "metrics.json").read_text())
    rows = {m["model"]: m for m in metrics["runs"]}
    baseline = [b["test_mse"] for b in metrics["baselines"] if b.get("baseline")][0]
    assert 0.08 < baseline < 0.1  # Fashion-MNIST's mean image leaves ~0.087 per pixel
    for row in rows.values():
        assert row["test_mse"] < 0.6 * baseline
        assert row["final_train_loss"] < 0.1 and row["test_images"] == 1000
    assert rows["conv-64"]["test_mse"] < rows["linear-3"]["test_mse"]  # the tutorial's finding, even after 3 epochs
    grid = Image.open(exp / "reconstructions_epoch_003.png")
    assert grid.size[0] > 300 and grid.size[1] > 200
    html = (exp / "report.html").read_text()
    # loss curves + 3 grids + rate-distortion (code sizes 3 and 64) + 7 analyses per run
    assert html.count("data:image/png;base64,") == 1 + 3 + 1 + 2 * 7
    assert (exp / "rate_distortion.png").is_file()
    assert "PCA (3 components)" in html and "PCA (64 components)" in html
    listing = subprocess.run([sys.executable, "-m", "aelab", "runs", "--runs-dir", str(tmp_path)], capture_output=True,
                             text=True, timeout=120)
    assert listing.returncode == 0 and "linear-3" in listing.stdout and "conv-64" in listing.stdout
