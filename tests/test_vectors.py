"""Vector data (--dataset array): .npy/.npz/.csv feature rows, standardized, trained by MLP (sparse) autoencoders."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import aelab
from aelab.cli import app
from aelab.config import DataConfig, ExperimentConfig
from conftest import error_line

runner = CliRunner()


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    """20,000 x 256 random-projection features: 24 latent factors projected to 256, plus noise and an offset."""
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(20000, 24)).astype(np.float32)
    x = latent @ rng.normal(size=(24, 256)).astype(np.float32) + 0.1 * rng.normal(size=(20000, 256)) + 5.0
    path = tmp_path_factory.mktemp("vec") / "features.npy"
    np.save(path, x.astype(np.float32))
    return path


def test_array_data_is_split_and_standardized_with_the_training_statistics(features):
    data = aelab.load_dataset(DataConfig(name="array", data_dir=features))
    assert data.is_vectors and data.shape == (1, 1, 256)
    assert (len(data.train), len(data.val), len(data.test)) == (15200, 800, 4000)  # 20% test, 5% of the rest val
    flat = data.train.images.flatten(1)
    assert flat.dtype == torch.float32 and float(flat.mean(0).abs().max()) < 1e-4
    assert torch.allclose(flat.std(0, unbiased=False), torch.ones(256), atol=1e-4)
    mean, std = data.standardization
    raw = torch.from_numpy(np.load(features))
    assert float(mean.mean()) == pytest.approx(5.0, abs=0.2) and mean.shape == std.shape == (256,)
    assert "15200 train / 800 val / 4000 test rows of 256 features" in data.summary()
    back = torch.cat([s.images.flatten(1) for s in (data.train, data.val, data.test)]) * std + mean
    assert torch.allclose(back.sum(1).sort().values, raw.sum(1).sort().values, rtol=1e-4, atol=1e-2)  # every row


def test_topk_sparse_autoencoder_on_vectors_from_the_cli_and_the_api(features, tmp_path):
    r = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            "array",
            "--data-dir",
            str(features),
            "--model",
            "fc-64",
            "--sparsity",
            "topk:8",
            "--epochs",
            "2",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--name",
            "v",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    metrics = json.loads((tmp_path / "runs" / "v" / "metrics.json").read_text())
    [row] = metrics["runs"]
    mean_row = [b for b in metrics["baselines"] if b.get("kind") == "mean-image"][0]
    assert row["code_l0"] == 8.0 and row["test_psnr"] is None and row["test_ssim"] is None
    assert row["test_mse"] < 0.5 * mean_row["test_mse"]  # standardized: the mean row leaves ~1 per feature
    assert (
        "Vector data: no PSNR/SSIM and no image analyses (interpolate, failures, compression, refine, generate, traverse, manifold)"
        in metrics["summary"]
    )
    [run] = [p for p in (tmp_path / "runs" / "v").iterdir() if p.is_dir()]
    assert sorted(p.name for p in (run / "analysis").glob("*.png")) == ["dictionary.png", "heatmap.png"]
    model = aelab.load(run / "model")
    assert model.data_range is None and model.input_shape == (1, 1, 256) and model.standardization[0].shape == (256,)
    assert not model.sigmoid_output  # standardized features are unbounded: a linear reconstruction

    res = aelab.run_experiment(
        ExperimentConfig(
            name="api",
            data={"name": "array", "data_dir": str(features)},
            model={"spec": {"type": "mlp", "hidden": [128], "code_size": 32}, "sparsity": "topk:4"},
            training={"epochs": 1},
        ),
        runs_dir=tmp_path / "runs",
        analyses=False,
        progress=False,
        log=lambda m: None,
    )
    assert res.rows[0]["code_l0"] == 4.0 and res.rows[0]["code_size"] == 32

    r = runner.invoke(app, ["encode", str(run), str(features), "--limit", "10", "-o", str(tmp_path / "c.npz")])
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "encoded 10 rows" in text and "64 bytes per row at 8 bits" in text
    assert "vs 1,024 raw: 16.0x" in text
    r = runner.invoke(app, ["decode", str(run), str(tmp_path / "c.npz"), "-o", str(tmp_path / "out")])
    decoded = np.load(tmp_path / "out" / "decoded.npy")
    raw = np.load(features)[:10]
    assert decoded.shape == (10, 256) and abs(decoded.mean() - raw.mean()) < 0.5  # back in the raw units


def test_csv_with_a_label_column(tmp_path):
    path = tmp_path / "rows.csv"
    lines = ["a,label,b"] + [f"{i},{'cat' if i % 2 else 'dog'},{2 * i}" for i in range(30)]
    path.write_text("\n".join(lines) + "\n")
    data = aelab.load_dataset(DataConfig(name="array", data_dir=path, test_fraction=0.5))
    assert data.class_names == ["cat", "dog"] and data.shape == (1, 1, 2)
    assert sorted(set(data.test.labels.tolist())) == [0, 1]


@pytest.mark.parametrize(
    "make, expected",
    [
        (
            lambda p: np.save(p.with_suffix(".npy"), np.array([[1.0, np.nan], [2.0, 3.0], [1, 1], [2, 2]])),
            "has 1 NaN or infinite values (first at row 0, feature 1)",
        ),
        (lambda p: np.save(p.with_suffix(".npy"), np.zeros((4, 2, 3))), "holds an array of shape (4, 2, 3) (rank 3)"),
        (
            lambda p: p.with_suffix(".csv").write_text("a,b\n1,2\n3,oops\n5,6\n"),
            "column 'b', row 3 holds 'oops', not a number",
        ),
        (lambda p: p.with_suffix(".txt").write_text("1 2\n"), "is not a feature file; allowed: .npy, .npz, .csv"),
    ],
)
def test_bad_feature_files(make, expected, tmp_path):
    base = tmp_path / "data" / "x"
    base.parent.mkdir()
    make(base)
    [path] = list(base.parent.iterdir())
    r = runner.invoke(
        app, ["train", "--dataset", "array", "--data-dir", str(path), "--runs-dir", str(tmp_path / "runs")]
    )
    assert r.exit_code == 2 and expected in error_line(r)
    assert not (tmp_path / "runs").exists()


def test_conv_models_are_refused_on_vectors(features, tmp_path):
    r = runner.invoke(
        app,
        [
            "compare",
            "--dataset",
            "array",
            "--data-dir",
            str(features),
            "--models",
            "conv-64",
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
    )
    assert r.exit_code == 2
    assert "model 'conv-64' is convolutional" in error_line(r) and "linear-3, linear-10, fc-64" in r.stderr
    assert not (tmp_path / "runs").exists()
