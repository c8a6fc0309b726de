"""The benchmark scripts run: the GPU benchmark's dry run on the CPU (the GPU figures need a GPU)."""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import has_real_fashion_mnist

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.requires("real Fashion-MNIST")
@pytest.mark.skipif(not has_real_fashion_mnist(), reason="needs Debian's dataset-fashion-mnist (.ci/run installs it)")
def test_gpu_benchmark_dry_run_on_the_cpu():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("device cpu") and "dry run on 512 images" in lines[0]
    rows = [line.split() for line in lines[2:] if line.split() and line.split()[1] == "aelab"]
    assert [r[0] for r in rows] == ["linear-3", "conv-64", "res-64", "vqvae-conv"]
    assert all(float(r[-1].replace(",", "")) > 0 for r in rows)  # images/s
