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


@pytest.mark.slow
def test_big_data_benchmark_runs_on_a_small_set(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_bigdata.py"), "--images", "3000", "--fits", "1000"]
        + ["--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line for line in out.stdout.splitlines() if "images/s" not in line and " GB " in line]
    assert [r.split(",")[0].split(" GB")[0] for r in rows][:2] == ["fits", "fits"]
    assert "memory-mapped" in rows[1] and "memory-mapped" in rows[2] and len(rows) == 3
    assert rows[0].split()[-1] == rows[1].split()[-1]  # the same test MSE in memory and mapped
    assert (tmp_path / "images-3000.npy").stat().st_size == 3000 * 3 * 64 * 64 + 128


def test_pixelcnn_benchmark_runs_on_random_grids():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_pixelcnn.py"), "--images", "200"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[1] == "PixelCNN C=64, 6 layers, K=256, 7x7 grids"
    assert float(lines[2].split()[1].replace(",", "")) > 0  # grids/s
    assert lines[4].startswith("decode: ") and lines[4].endswith("bit-identical")


@pytest.mark.slow
def test_profile_step_counts_the_steps_flops_and_the_machines_peak():
    """linear-3's step, counted by hand: a forward multiply-add per weight (2 FLOPs), the same for the weight
    gradients, and for the input gradients of every layer but the first (its input needs none)."""
    import torch.nn as nn

    from aelab.models import build_model

    linears = [m for m in build_model("linear-3").modules() if isinstance(m, nn.Linear)]
    weights = sum(m.weight.numel() for m in linears)
    by_hand = (2 * weights + 2 * weights + 2 * (weights - linears[0].weight.numel())) / 1e6
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "profile_step.py"), "--model", "linear-3", "--steps", "3"]
        + ["--data", "random", "--rows", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(x for x in out.stdout.splitlines() if "MFLOP per image per step" in x)
    assert line.startswith(f"{by_hand:.4f} MFLOP per image per step") and by_hand == 1.111472
    peak = float(line.rsplit("(", 1)[1].split()[0])
    assert "% of a 1024x1024 fp32 matrix product" in line and peak > 0


@pytest.mark.slow
@pytest.mark.requires("real Fashion-MNIST")
@pytest.mark.skipif(not has_real_fashion_mnist(), reason="needs Debian's dataset-fashion-mnist (.ci/run installs it)")
def test_screen_encoder_measures_the_gap_and_trains_only_an_encoder(tmp_path):
    """The amortization-gap screen on a small res model: the search lowers the error on both splits; training
    the encoder against the fixed decoder lowers the validation error; a new encoder has its spec's size; the run's files are left as they were."""
    import torch

    from aelab.config import DataConfig, ModelConfig, TrainingConfig
    from aelab.config.specs import ResSpec
    from aelab.data import load_dataset
    from aelab.models import build_model
    from aelab.models.resnet import build_res
    from aelab.training import train

    torch.manual_seed(0)
    spec = ResSpec(channels=[4, 8], hidden=[16], code_size=3)
    model = build_model(ModelConfig(spec=spec), (1, 28, 28))
    train(model, load_dataset(DataConfig(train_limit=3000)), TrainingConfig(epochs=2, lr=3e-3), progress=False)
    model.save(tmp_path / "model")
    saved = {p.name: p.read_bytes() for p in (tmp_path / "model").iterdir()}

    def screen(*args: str) -> list[str]:
        script = str(ROOT / "benchmarks" / "screen_encoder.py")
        out = subprocess.run(
            [sys.executable, script, str(tmp_path), *args], capture_output=True, text=True, timeout=600
        )
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout.splitlines()

    gap = screen("gap", "--images", "300")
    assert [line.split(":")[0] for line in gap] == ["training", "validation"]
    for line in gap:
        before, after = (float(w) for w in line.split() if w[:2] == "0.")
        assert after < 0.99 * before

    lines = screen("finetune", "--epochs", "1", "--lr", "1e-3", "--train-images", "6000")
    own = sum(p.numel() for p in model.encoder.parameters())
    assert lines[0].startswith(f"encoder: {own:,} parameters; validation MSE before: ")
    before = float(lines[0].rsplit(" ", 1)[1])
    after = float(lines[-1].split("validation ")[1].split(",")[0])
    assert lines[1].startswith("epoch 1: training ") and after < before

    wider = screen(
        "fresh", "--epochs", "1", "--channels", "8,16", "--blocks", "1", "--hidden", "32", "--train-images", "2000"
    )
    new = sum(
        p.numel()
        for p in build_res(ResSpec(channels=[8, 16], blocks=1, hidden=[32], code_size=3), (1, 28, 28))[0].parameters()
    )
    assert wider[0].startswith(f"encoder: {new:,} parameters") and new != own
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == sorted(saved)  # the screen writes nothing
    assert all((tmp_path / "model" / name).read_bytes() == data for name, data in saved.items())
