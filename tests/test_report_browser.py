"""The HTML report renders in a real browser: headless Chromium (Debian's package, installed by .ci/run)."""

import re
import subprocess

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from aelab.cli import app
from chromium import CHROMIUM, FLAGS
from conftest import write_idx_dataset

pytestmark = [
    pytest.mark.slow,
    pytest.mark.requires("chromium"),
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)"),
]


def chromium(tmp_path, *args) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120
    )


def test_report_renders_with_table_and_images(tmp_path):
    data = write_idx_dataset(tmp_path / "idx", n_train=200, n_test=40)
    result = CliRunner().invoke(
        app,
        [
            "compare",
            "--dataset",
            "mnist",
            "--data-dir",
            str(data),
            "--models",
            "linear-3,conv-64",
            "--epochs",
            "1",
            "--runs-dir",
            str(tmp_path),
            "--name",
            "r",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    report = tmp_path / "r" / "report.html"
    html = report.read_text()
    assert "http://" not in html and "https://" not in html  # self-contained: nothing to fetch
    n_images = html.count("<img ")
    assert n_images >= 1 + 1 + 2 * 7  # loss curves, one grid, seven analyses per model

    dom = chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<title>aelab report: r</title>" in dom.stdout
    assert re.search(r'<table id="metrics">.*linear-3.*conv-64.*PCA \(3 components\)', dom.stdout, re.S)
    assert f'data-images-loaded="{n_images}/{n_images}"' in dom.stdout

    shot = tmp_path / "shot.png"
    out = chromium(tmp_path, "--window-size=1200,2400", "--hide-scrollbars", f"--screenshot={shot}", report.as_uri())
    assert out.returncode == 0 and shot.is_file(), out.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.shape == (2400, 1200)
    assert pixels.std() > 20  # text, a table and figures, not a blank page
