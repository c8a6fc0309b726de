"""Applying a trained model: export (safetensors, ONNX), encode/decode code files, anomaly scores."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

import aelab
from aelab.apply.codes import decode_codes, encode_images, load_codes, save_codes
from aelab.apply.export import ExportError, export_model
from aelab.cli import app
from aelab.config import ExperimentConfig, ModelConfig
from aelab.data import ImageSplit
from aelab.evaluation.anomaly import reconstruction_scores, separate, threshold
from aelab.evaluation.quantization import dequantize, quantize
from aelab.evaluation.rapp import NAP
from aelab.models import AutoEncoder
from conftest import error_line, has_real_fashion_mnist

runner = CliRunner()
SPEC = {"spec": {"type": "mlp", "hidden": [32], "code_size": 6}}


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("apply")
    res = aelab.run_experiment(
        ExperimentConfig(name="d", data={"name": "digits"}, model=SPEC, training={"epochs": 3, "batch_size": 32}),
        runs_dir=root / "runs",
        analyses=False,
        progress=False,
        log=lambda m: None,
    )
    return res.run_dirs[0]


# ----------------------------------------------------------------------------------------------- quantization
def test_quantize_by_hand_and_within_half_a_step():
    q, low, scale = quantize(torch.tensor([[0.0, 1.0], [2.0, 3.0], [0.5, 1.5]]), 8)
    assert q.dtype == torch.uint8 and q.tolist() == [[0, 0], [255, 255], [64, 64]]  # 0.5 / (2/255) = 63.75
    assert low.tolist() == [0.0, 1.0] and torch.allclose(scale, torch.tensor([2 / 255, 2 / 255]))
    z = torch.randn(100, 7) * 3
    for bits in (8, 16):
        q, low, scale = quantize(z, bits)
        assert int(q.max()) == 2**bits - 1 and int(q.min()) == 0
        assert bool(((dequantize(q, low, scale) - z).abs() <= scale / 2 + 1e-5).all())
    q, low, scale = quantize(z, 32)
    assert torch.equal(dequantize(q, low, scale), z)
    with pytest.raises(aelab.AelabError, match="--bits: got 4; allowed: 8, 16, 32"):
        quantize(z, 4)


def test_code_file_round_trip_equals_decode_of_encode_within_the_step(digits_run, tmp_path):
    model = aelab.load(digits_run / "model")
    images = torch.randint(0, 256, (9, 1, 8, 8), dtype=torch.uint8)
    codes = encode_images(model, images, [f"i{k}" for k in range(9)], bits=8)
    assert codes.bytes_per_image == 6 and codes.codes.shape == (9, 6)
    back = load_codes(save_codes(codes, tmp_path / "c.npz"))
    assert torch.equal(back.codes, codes.codes) and back.names == codes.names and back.model == model.fingerprint()
    exact = model.encode(images.float() / 255)
    assert bool(((back.dequantized() - exact).abs() <= codes.scale / 2 + 1e-6).all())
    decoded = decode_codes(model, back)
    expected = model.decode(back.dequantized()).clamp(0, 1).mul(255).round().to(torch.uint8)
    assert decoded.dtype == torch.uint8 and torch.equal(decoded, expected)


# ------------------------------------------------------------------------------------------------------ export
def test_export_safetensors_and_onnx_match_pytorch(digits_run, tmp_path):
    model = aelab.load(digits_run / "model")
    result = export_model(model, tmp_path / "exp", "onnx", torch.rand(5, 1, 8, 8))
    assert sorted(p.name for p in result.files) == ["config.json", "decoder.onnx", "encoder.onnx", "model.safetensors"]
    assert max(result.max_abs_diff.values()) <= 1e-4
    again = aelab.load(tmp_path / "exp")
    x = torch.rand(3, 1, 8, 8)
    assert torch.equal(again.reconstruct(x), model.reconstruct(x))
    import onnxruntime as ort  # the batch axis is dynamic: 11 images through a graph exported with 2

    session = ort.InferenceSession(str(tmp_path / "exp" / "encoder.onnx"), providers=["CPUExecutionProvider"])
    x = torch.rand(11, 1, 8, 8)
    assert np.abs(session.run(None, {"images": x.numpy()})[0] - model.encode(x).detach().numpy()).max() < 1e-5


class DataDependent(nn.Module):
    def forward(self, x):  # Python control flow on a value: no ONNX graph can hold it
        return x.flatten(1)[:, :6] if float(x.sum()) > 0 else x.flatten(1)[:, 6:12]


def test_export_of_an_unsupported_layer_is_refused_and_writes_nothing(digits_run, tmp_path):
    model = aelab.load(digits_run / "model")
    model.encoder = DataDependent()
    with pytest.raises(ExportError, match="ONNX export of the encoder failed"):
        export_model(model, tmp_path / "out", "onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_onnx_export_of_sparse_and_tied_variants(tmp_path):
    """Every preset's export is in test_conformance.py; the variants a model config adds export too."""
    for i, config in enumerate(
        [ModelConfig(preset="conv-64", sparsity="topk:5"), ModelConfig(preset="fc-64", tied=True)]
    ):
        torch.manual_seed(i)
        model = aelab.build_model(config).eval()
        result = export_model(model, tmp_path / str(i), "onnx", torch.rand(4, *model.input_shape))
        assert max(result.max_abs_diff.values()) <= 1e-4, (config, result.max_abs_diff)


# ----------------------------------------------------------------------------------------------------- the CLI
def test_cli_encode_decode_score_export_and_bad_input(digits_run, tmp_path):
    r = runner.invoke(app, ["encode", str(digits_run), "split:test", "-o", str(tmp_path / "c.npz"), "--bits", "16"])
    assert r.exit_code == 0, r.output
    assert "12 bytes per image at 16 bits" in r.output and "64 raw: 5.3x" in r.output
    codes = load_codes(tmp_path / "c.npz")
    assert codes.bits == 16 and codes.codes.shape[1:] == (6,)
    r = runner.invoke(app, ["decode", str(digits_run), str(tmp_path / "c.npz"), "-o", str(tmp_path / "png")])
    assert r.exit_code == 0, r.output
    pngs = sorted((tmp_path / "png").iterdir())
    assert len(pngs) == len(codes.names) and pngs[0].name == "00000-test-0.png"
    assert Image.open(pngs[0]).size == (8, 8)

    r = runner.invoke(
        app, ["score", str(digits_run), "split:test", "-o", str(tmp_path / "s.csv"), "--threshold-percentile", "90"]
    )
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert len(rows) == len(codes.names) and set(rows[0]) == {"image", "label", "mse", "anomalous"}
    run = aelab.load(digits_run / "model")
    from aelab.experiments.finished import open_runs

    data = open_runs(digits_run)[0].dataset
    cut = float(np.percentile(reconstruction_scores(run, data.val.images).numpy(), 90))
    assert f"threshold {cut:.6g}" in r.output
    assert sum(int(x["anomalous"]) for x in rows) == sum(float(x["mse"]) > cut for x in rows)

    r = runner.invoke(app, ["score", str(digits_run), "split:test", "-o", str(tmp_path / "n.csv"), "--score", "nap"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader((tmp_path / "n.csv").open()))
    nap = NAP.fit(run, data.train.images).scores(run, data.test.images)  # fitted on the run's training images
    assert [float(x["nap_score"]) for x in rows] == pytest.approx(nap.tolist(), rel=1e-5)
    cut = float(np.percentile(NAP.fit(run, data.train.images).scores(run, data.val.images).numpy(), 99))
    assert sum(int(x["anomalous"]) for x in rows) == int((nap > cut).sum())

    r = runner.invoke(app, ["export", str(digits_run), "--format", "onnx"])
    assert r.exit_code == 0, r.output
    assert "largest absolute difference" in r.output and "(within 0.0001)" in r.output
    assert (digits_run / "export" / "encoder.onnx").is_file()

    # bad input: one error line, exit 2, nothing written
    png = tmp_path / "big.png"
    Image.fromarray(np.zeros((28, 28, 3), dtype=np.uint8)).save(png)
    cases = [
        (
            ["encode", str(digits_run), str(png), "-o", str(tmp_path / "x.npz")],
            "is 3x28x28 (CxHxW) but the model takes 1x8x8; give --resize",
        ),
        (["encode", str(digits_run), "split:dev", "-o", str(tmp_path / "x.npz")], "allowed: split:train, split:val"),
        (
            ["encode", str(digits_run), "split:test", "--bits", "12", "-o", str(tmp_path / "x.npz")],
            "--bits: got 12; allowed: 8, 16, 32",
        ),
        (["export", str(tmp_path), "--format", "onnx"], "is not an aelab run or experiment folder"),
        (["export", str(digits_run), "--format", "tflite"], "--format: got 'tflite'; allowed: safetensors, onnx"),
        (
            ["score", str(digits_run), "split:test", "--score", "psnr", "-o", str(tmp_path / "x.csv")],
            "--score: got 'psnr'; allowed: nap_sap, nap, sap, mse, ssim",
        ),
        (["decode", str(digits_run), str(tmp_path / "missing.npz"), "-o", str(tmp_path / "x")], "does not exist"),
    ]
    for args, expected in cases:
        r = runner.invoke(app, args)
        assert r.exit_code == 2 and expected in error_line(r), (args, r.output)
    assert not any((tmp_path / n).exists() for n in ("x.npz", "x.csv", "x"))
    r = runner.invoke(app, ["encode", str(digits_run), str(png), "--resize", "-o", str(tmp_path / "r.npz")])
    assert r.exit_code == 0 and "encoded 1 images" in r.output


def test_codes_of_another_model_are_refused(digits_run, tmp_path):
    other = aelab.run_experiment(
        ExperimentConfig(name="o", data={"name": "digits"}, model=SPEC, seed=1, training={"epochs": 1}),
        runs_dir=tmp_path / "runs",
        analyses=False,
        progress=False,
        log=lambda m: None,
    ).run_dirs[0]
    runner.invoke(app, ["encode", str(other), "split:test", "-o", str(tmp_path / "o.npz")])
    r = runner.invoke(app, ["decode", str(digits_run), str(tmp_path / "o.npz"), "-o", str(tmp_path / "out")])
    assert r.exit_code == 2 and "the codes were made by model" in error_line(r)
    wide = aelab.run_experiment(
        ExperimentConfig(
            name="w",
            data={"name": "digits"},
            training={"epochs": 1},
            model={"spec": {"type": "mlp", "hidden": [32], "code_size": 9}},
        ),
        runs_dir=tmp_path / "runs",
        analyses=False,
        progress=False,
        log=lambda m: None,
    )
    r = runner.invoke(app, ["decode", str(wide.run_dirs[0]), str(tmp_path / "o.npz"), "-o", str(tmp_path / "out")])
    assert r.exit_code == 2 and "the codes are 6 per image but model" in error_line(r) and "codes of 9" in r.stderr
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------------- anomaly
class ZeroDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, z):
        return torch.zeros(len(z), 1, 2, 2) * self.w


def test_scores_threshold_and_roc_auc_by_hand():
    model = AutoEncoder(nn.Flatten(1), ZeroDecoder(), (1, 2, 2), (4,))  # reconstructs 0: score = mean(x^2)
    pix = torch.tensor([0, 51, 102, 153, 204, 255], dtype=torch.uint8)
    images = pix.view(6, 1, 1, 1).expand(6, 1, 2, 2).contiguous()
    scores = reconstruction_scores(model, images)
    assert torch.allclose(scores, (pix.double() / 255) ** 2)
    labels = torch.tensor([0, 0, 1, 0, 1, 1])  # normal class 0: scores 0, .04, .36; anomalies .16, .64, 1
    test = ImageSplit(images, labels)
    val = ImageSplit(images[:2], torch.zeros(2, dtype=torch.long))
    r = separate(model, test, val, [0], percentile=50, kind="mse")
    assert r.roc_auc == pytest.approx(8 / 9)  # 8 of the 9 (anomaly, normal) pairs are ordered right
    assert r.threshold == pytest.approx(0.02) and threshold(torch.tensor([0.0, 0.04]), 100) == pytest.approx(0.04)
    assert r.normal_flagged == pytest.approx(2 / 3) and r.anomalies_flagged == 1.0
    with pytest.raises(aelab.AelabError, match="ROC-AUC needs both"):
        separate(model, test, val, [0, 1], kind="mse")


def test_one_class_data_and_the_anomaly_command(tmp_path):
    data = aelab.load_dataset(aelab.DataConfig(name="digits", normal_classes=3))
    assert set(data.train.labels.tolist()) == {3} and set(data.val.labels.tolist()) == {3}
    assert len(set(data.test.labels.tolist())) == 10
    args = [
        "anomaly",
        "--dataset",
        "digits",
        "--normal-class",
        "0,1",
        "--epochs",
        "30",
        "--no-analysis",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--no-progress",
        "--name",
        "a",
        "--models",
        "fc-64",
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "expects images of 1x28x28" in error_line(r)  # fc-64 is for 28x28
    spec = "--set", "model={spec: {type: mlp, hidden: [32], code_size: 4}}"
    r = runner.invoke(app, [a for a in args if a not in ("--models", "fc-64")] + list(spec))
    assert r.exit_code == 0, r.output
    metrics = json.loads((tmp_path / "runs" / "a" / "metrics.json").read_text())
    rows = metrics["runs"]
    assert [row["normal"] for row in rows] == ["0", "1"] and all(0.6 < row["roc_auc"] <= 1 for row in rows), rows
    mean = sum(row["roc_auc"] for row in rows) / 2
    assert f"mean ROC-AUC over 2 runs: {mean:.4f} (nap_sap; mse " in r.output
    comparison, one_class = r.output.split("a: one-class anomaly detection")  # its own table, after the comparison
    assert "test MSE" in comparison and "ROC" not in comparison and "ROC-AUC" in one_class
    assert f"mean ROC-AUC {mean:.4f}" in metrics["summary"]
    assert all(row["anomaly_score"] == "nap_sap" and 0 <= row["roc_auc_mse"] <= 1 for row in rows)
    report = (tmp_path / "runs" / "a" / "report.html").read_text()
    assert "One-class anomaly detection beside published results" in report and "GEOM" not in report  # digits

    # aelab score on a one-class run: the run's score (nap_sap) by default; --model as the folder spells the label
    from aelab.experiments.finished import open_runs

    folder = tmp_path / "runs" / json.loads((tmp_path / "runs" / "a" / "runs.json").read_text())[1]
    label = folder.name.rsplit("-", 1)[0]
    assert label.endswith("_normal_classes_1")
    r = runner.invoke(
        app, ["score", str(tmp_path / "runs" / "a"), "--model", label, "split:test", "-o", str(tmp_path / "s.csv")]
    )
    assert r.exit_code == 0, r.output
    assert "nap_sap: fitting NAP on up to 10,000 of the run's training images" in r.output
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert len(rows) == len(data.test) and set(rows[0]) == {"image", "label", "mse", "nap_sap_score", "anomalous"}
    run = open_runs(folder)[0]
    expected = separate(run.model, run.dataset.test, run.dataset.val, [1], train=run.dataset.train).scores
    assert [float(x["nap_sap_score"]) for x in rows] == pytest.approx(expected.tolist(), rel=1e-5)
    r = runner.invoke(app, ["score", str(folder), "split:test", "--score", "mse", "-o", str(tmp_path / "m.csv")])
    assert r.exit_code == 0 and "(mse, 99th percentile" in r.output, r.output
    for bad, expected in (
        ("12", "dataset 'digits' has no class 12; allowed: 0..9"),
        ("x", "--normal-class: got 'x'; allowed: all, a class index (3), a range (0..9)"),
    ):
        r = runner.invoke(
            app, ["anomaly", "--dataset", "digits", "--normal-class", bad, "--runs-dir", str(tmp_path / "bad")]
        )
        assert r.exit_code == 2 and expected in error_line(r)
    assert not (tmp_path / "bad").exists()


# ------------------------------------------------------------------------------------ real Fashion-MNIST
@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.requires("real Fashion-MNIST")
@pytest.mark.skipif(not has_real_fashion_mnist(), reason="needs Debian's dataset-fashion-mnist")
def test_encode_decode_conv64_matches_the_compression_analysis(tmp_path):
    def cli(*args):
        out = subprocess.run(
            [sys.executable, "-m", "aelab", *args], capture_output=True, text=True, timeout=600, cwd=tmp_path
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    cli(
        "train",
        "--model",
        "conv-64",
        "--epochs",
        "1",
        "--train-limit",
        "3000",
        "--test-limit",
        "500",
        "--name",
        "t",
        "--no-analysis",
        "--no-progress",
    )
    [run] = [p for p in (tmp_path / "runs" / "t").iterdir() if p.is_dir()]
    text = cli("encode", str(run), "split:test", "-o", "codes.npz", "--bits", "8")
    assert "encoded 500 images" in text and "64 bytes per image at 8 bits" in text and "784 raw: 12.2x" in text
    cli("compression", str(run))
    uint8 = [r for r in json.loads((run / "analysis" / "compression.json").read_text()) if r["storage"] == "uint8"][0]
    assert uint8["code_bytes"] == 64
    assert f"PSNR {uint8['psnr']:.2f} dB" in " ".join(text.split())
    cli("decode", str(run), "codes.npz", "-o", "decoded")
    assert len(list((tmp_path / "decoded").glob("*.png"))) == 500


def test_entropy_coded_code_files_decode_to_the_same_images_in_fewer_bytes(digits_run, tmp_path):
    plain, coded = tmp_path / "plain.npz", tmp_path / "coded.npz"
    r = runner.invoke(app, ["encode", str(digits_run), "split:test", "-o", str(coded), "--entropy"])
    assert r.exit_code == 0, r.output
    assert "bytes per image at 8 bits entropy coded (+" in r.output and "the coder table" in r.output
    assert runner.invoke(app, ["encode", str(digits_run), "split:test", "-o", str(plain)]).exit_code == 0
    a, b = load_codes(plain), load_codes(coded)
    assert b.entropy and not a.entropy and torch.equal(a.codes, b.codes)  # the same levels, bit for bit
    assert b.stream_bytes is not None and b.bytes_per_image == b.stream_bytes / len(b.names) < 6  # 6 raw bytes
    for name in ("plain", "coded"):
        r = runner.invoke(app, ["decode", str(digits_run), str(tmp_path / f"{name}.npz"), "-o", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
    for x, y in zip(sorted((tmp_path / "plain").iterdir()), sorted((tmp_path / "coded").iterdir())):
        assert np.array_equal(np.asarray(Image.open(x)), np.asarray(Image.open(y)))
    # a damaged stream: one line, exit 2, nothing written
    with np.load(coded) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["stream"] = arrays["stream"][:-8]
    np.savez(tmp_path / "cut.npz", **arrays)
    r = runner.invoke(app, ["decode", str(digits_run), str(tmp_path / "cut.npz"), "-o", str(tmp_path / "cut")])
    assert r.exit_code == 2 and "entropy-coded stream" in error_line(r) and not (tmp_path / "cut").exists()
    r = runner.invoke(
        app, ["encode", str(digits_run), "split:test", "-o", str(tmp_path / "x.npz"), "--entropy"] + ["--bits", "16"]
    )
    assert r.exit_code == 2 and "--entropy codes 8-bit levels; got --bits 16" in error_line(r)
    assert not (tmp_path / "x.npz").exists()
