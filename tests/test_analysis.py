"""The data behind each analysis figure, checked against values worked out by hand."""

import json

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from aelab.cli import app
from aelab.config import DataConfig, MLPSpec, ModelConfig
from aelab.data import ImageDataset, ImageSplit, load_dataset
from aelab.errors import AelabError
from aelab.evaluation import latent as A
from aelab.evaluation.compression import compression
from aelab.evaluation.failures import failures
from aelab.evaluation.pca import fit_pca, pca_baseline, pca_reconstruct
from aelab.evaluation.probes import WorkshopCNN, WorkshopMLP, labelled_subset, probe_table
from aelab.models import AutoEncoder, build_model
from conftest import write_idx_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DataConfig(name="digits"), seed=0)


def test_interpolation_endpoints_are_the_reconstructions(digits):
    torch.manual_seed(0)
    model = build_model("conv-64").eval()
    split = ImageSplit(torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8), torch.arange(6))
    interp = A.interpolate(model, split, 1, 4, steps=7)
    x = split.floats()
    with torch.no_grad():
        assert torch.allclose(interp.latent_space[0], model.reconstruct(x[1:2])[0], atol=1e-6)
        assert torch.allclose(interp.latent_space[-1], model.reconstruct(x[4:5])[0], atol=1e-6)
        mid = model.decode(0.5 * model.encode(x[1:2]) + 0.5 * model.encode(x[4:5]))[0]
    assert torch.allclose(interp.latent_space[3], mid, atol=1e-6)
    assert torch.equal(interp.data_space[0], x[1]) and torch.equal(interp.data_space[-1], x[4])
    assert torch.allclose(interp.data_space[3], 0.5 * x[1] + 0.5 * x[4])
    assert interp.alphas.tolist() == pytest.approx([i / 6 for i in range(7)])


def test_class_by_name_or_index_and_unknown_class(digits):
    assert A.resolve_class(digits, "3") == 3
    fm = ImageDataset(
        "fashion-mnist",
        digits.train,
        digits.val,
        digits.test,
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    )
    assert A.resolve_class(fm, "sneaker") == 7
    with pytest.raises(AelabError, match="class 'Hat' does not exist in fashion-mnist; allowed: 0=T-shirt/top"):
        A.resolve_class(fm, "Hat")
    i = A.pick_of_class(digits.test, 5, seed=1)
    assert int(digits.test.labels[i]) == 5 and i == A.pick_of_class(digits.test, 5, seed=1)


def test_pca_at_full_rank_reconstructs_exactly(digits):
    pca = fit_pca(digits.train, 64)
    recon = pca_reconstruct(pca, digits.test)
    assert float((recon - digits.test.floats()).abs().max()) < 1e-4
    low = pca_baseline(digits.train, digits.test, 8)
    assert low["code_size"] == 8 and 0 < low["test_mse"] < 0.1 and low["parameters"] == 8 * 64 + 64
    with pytest.raises(AelabError, match="allowed: 1..64"):
        fit_pca(digits.train, 65)


def test_compression_byte_counts_are_exact():
    torch.manual_seed(0)
    model = build_model("conv-64").eval()
    imgs = torch.randint(0, 256, (20, 1, 28, 28), dtype=torch.uint8)
    ds = ImageDataset(
        "t",
        ImageSplit(imgs[:12], torch.zeros(12, dtype=torch.long)),
        ImageSplit(imgs[:0], torch.zeros(0, dtype=torch.long)),
        ImageSplit(imgs[12:], torch.zeros(8, dtype=torch.long)),
    )
    rows = compression(model, ds)
    assert [(r["storage"], r["code_bytes"], r["image_bytes"]) for r in rows[:3]] == [
        ("float32", 256, 784),
        ("float16", 128, 784),
        ("uint8", 64, 784),
    ]
    assert [r["compression_ratio"] for r in rows[:3]] == [784 / 256, 784 / 128, 784 / 64]
    coded = rows[3]  # a real stream: whole 32-bit words over the 8 test images, about the ideal rate
    assert coded["storage"].startswith("uint8, entropy coded") and (coded["code_bytes"] * 8) % 4 == 0
    assert coded["ideal_bytes"] <= coded["code_bytes"] <= coded["ideal_bytes"] + 1
    assert [r["storage"] for r in rows[4:]][-1] == "PNG lossless (8 test images)"
    assert rows[0]["psnr"] == pytest.approx(rows[1]["psnr"], abs=0.05)  # float16 barely changes the image
    assert rows[2]["psnr"] <= rows[0]["psnr"] + 0.05


def test_feature_dictionary_tiles_by_hand():
    dec = nn.Linear(3, 4)
    model = AutoEncoder(nn.Flatten(1), nn.Sequential(dec, nn.Unflatten(1, (1, 2, 2))), (1, 2, 2), (3,))
    tiles = A.feature_dictionary(model, amplitude=2.0)
    assert tiles.shape == (3, 1, 2, 2)
    for j in range(3):
        assert torch.allclose(tiles[j].flatten(), 2.0 * dec.weight[:, j].detach(), atol=1e-6)
    assert A.feature_dictionary(build_model("conv-pool")).shape == (4 * 7 * 7, 1, 28, 28)
    assert A.feature_dictionary(build_model("conv-64")).shape[0] == 64


def test_latent_map_uses_a_2d_code_directly(digits):
    torch.manual_seed(0)
    model = build_model(ModelConfig(spec=MLPSpec(hidden=[16], code_size=2)), digits.shape)
    lm = A.latent_map(model, digits.test, "auto", n=100)
    assert lm.method == "code" and lm.points.shape == (100, 2)
    assert np.allclose(lm.points, model.encode(digits.test.floats()[:100]).detach().numpy(), atol=1e-6)
    model10 = build_model(ModelConfig(spec=MLPSpec(hidden=[16], code_size=10)), digits.shape)
    assert A.latent_map(model10, digits.test, "auto", n=100).method == "pca"


def test_code_heatmap_marks_dead_units(digits):
    model = build_model(ModelConfig(spec=MLPSpec(hidden=[], code_size=6, code_activation="relu")), digits.shape)
    with torch.no_grad():
        model.encoder[1].weight[2:4] = 0.0
        model.encoder[1].bias[2:4] = -1.0  # units 2 and 3 are always 0 after the ReLU
    h = A.code_heatmap(model, digits.test, n=64)
    assert h.codes.shape == (64, 6)
    assert h.dead[2] and h.dead[3] and h.frequency[2] == 0.0


def test_failures_per_class_and_worst(digits):
    torch.manual_seed(0)
    model = build_model(ModelConfig(spec=MLPSpec(hidden=[8], code_size=2)), digits.shape)
    f = failures(model, digits, k=5)
    assert sum(c for _, c, _ in f.per_class) == len(digits.test)
    assert f.worst_mse == sorted(f.worst_mse, reverse=True) and len(f.worst) == 5
    x = digits.test.floats()
    with torch.no_grad():
        errs = (model.reconstruct(x) - x).pow(2).flatten(1).mean(1)
    assert f.worst[0] == int(errs.argmax())


def test_probe_near_perfect_on_separable_toy_set():
    from conftest import make_images

    tr_x, tr_y = make_images(400, 0)
    te_x, te_y = make_images(200, 1)
    ds = ImageDataset(
        "toy",
        ImageSplit(torch.from_numpy(tr_x)[:, None], torch.from_numpy(tr_y).long()),
        ImageSplit(torch.zeros(0, 1, 28, 28, dtype=torch.uint8), torch.zeros(0, dtype=torch.long)),
        ImageSplit(torch.from_numpy(te_x)[:, None], torch.from_numpy(te_y).long()),
        [str(i) for i in range(10)],
    )
    identity = AutoEncoder(nn.Flatten(1), nn.Unflatten(1, (1, 28, 28)), (1, 28, 28), (784,))
    identity.register_parameter("unused", nn.Parameter(torch.zeros(1)))
    rows = probe_table(identity, ds, [10, None], scratch=False)
    assert rows[0]["labelled"] == 100 and rows[1]["labelled"] == 400
    assert rows[0]["logistic"] > 0.97 and rows[1]["logistic"] > 0.97 and rows[1]["knn"] > 0.97


def test_classifiers_from_scratch_train_at_least_200_full_batches_of_images_and_no_more_steps_for_tiny_sets():
    from aelab.evaluation.probes import _train_classifier, steps_to_epochs

    # 200 steps of 64 images: 100 labelled images -> 128 epochs of 2 steps; 6 images (under one batch) -> 200 epochs
    assert [steps_to_epochs(n) for n in (6, 64, 100, 12_800, 60_000)] == [200, 200, 128, 1, 1]
    for n, steps in ((6, 200), (100, 256)):
        net = WorkshopMLP(784, 3)
        seen: list[bool] = []
        net.register_forward_hook(lambda m, args, out, seen=seen: seen.append(m.training))
        x, y = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8), torch.arange(n) % 3
        test = ImageSplit(x[:5], y[:5])
        accuracy = _train_classifier(net, x, y, test, epochs=5, seed=0, device=torch.device("cpu"))
        assert seen.count(True) == steps and seen.count(False) == 1  # the training steps, then one test batch
        assert accuracy in {k / 5 for k in range(6)}


def test_labelled_subset_and_too_many_labels(digits):
    idx = labelled_subset(digits.train, 10, seed=0)
    assert torch.bincount(digits.train.labels[idx]).tolist() == [10] * 10
    with pytest.raises(AelabError, match="labels per class: got 1000; allowed: 1.."):
        labelled_subset(digits.train, 1000)


def test_workshop_classifier_parameter_counts():
    # COMP90051 workshop 8 gives these totals for CIFAR-10 inputs
    assert sum(p.numel() for p in WorkshopMLP(3 * 32 * 32, 10).parameters()) == 813_398
    assert sum(p.numel() for p in WorkshopCNN((3, 32, 32), 10).parameters()) == 109_050


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    data = write_idx_dataset(root / "idx", n_train=300, n_test=60)
    result = runner.invoke(
        app,
        [
            "compare",
            "--dataset",
            "mnist",
            "--data-dir",
            str(data),
            "--models",
            "linear-3,conv-pool",
            "--epochs",
            "2",
            "--runs-dir",
            str(root),
            "--name",
            "r",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    return root / "r", data


def _run_folder(path, label):
    [folder] = [p for p in path.iterdir() if p.is_dir() and p.name.startswith(label + "-")]
    return folder


def test_compare_writes_every_analysis_and_pca_rows(run_dir):
    path, _ = run_dir
    from aelab.analyses import ANALYSES

    names = [a.name for a in ANALYSES if a.in_report and a.name != "anomaly-scores"]  # that one: one-class runs only
    assert names == [
        "interpolate",
        "latent-map",
        "heatmap",
        "dictionary",
        "failures",
        "compression",
        "probe",
        "generate",
        "traverse",
        "manifold",
    ]
    assert [a.name for a in ANALYSES if "train_classes" in a.report_needs or "one_class" in a.report_needs] == [
        "compression",
        "probe",
        "anomaly-scores",
    ]
    # traversals need a code vector (linear-3's, not conv-pool's 4x7x7 map); the manifold a 2-D code (neither)
    wanted = {"linear-3": names[:-1], "conv-pool": names[:-2]}
    for model in ("linear-3", "conv-pool"):
        found = sorted(p.stem for p in (_run_folder(path, model) / "analysis").glob("*.png"))
        assert found == sorted(wanted[model]), model
    metrics = json.loads((path / "metrics.json").read_text())
    assert [r["code_size"] for r in metrics["baselines"] if "PCA" in r["model"]] == [3, 196]
    assert [r["model"] for r in metrics["runs"]] == ["linear-3", "conv-pool"]
    html = (path / "report.html").read_text()
    assert "PCA (3 components)" in html and "Inside conv-pool" in html and "Feature dictionary" in html
    # loss curves + 1 reconstruction grid (epoch 2) + rate-distortion (two code sizes) + 9 + 8 analyses
    assert html.count("data:image/png;base64,") == 1 + 1 + 1 + 9 + 8


def test_analysis_commands_on_a_run(run_dir):
    path, _ = run_dir
    for args, model, name in [
        (["interpolate", str(path), "--from", "3", "--to", "7", "--model", "conv-pool"], "conv-pool", "interpolate"),
        (["latent-map", str(path), "--method", "tsne", "--n", "60"], "linear-3", "latent-map"),
        (["heatmap", str(_run_folder(path, "conv-pool"))], "conv-pool", "heatmap"),
        (["dictionary", str(path), "--model", "conv-pool"], "conv-pool", "dictionary"),
        (["failures", str(path), "--k", "4"], "linear-3", "failures"),
        (["compression", str(path)], "linear-3", "compression"),
        (["probe", str(path), "--labels", "5,all"], "linear-3", "probe"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        assert f"{_run_folder(path, model).name}/analysis/{name}.png" in result.output.replace("\n", "")
    result = runner.invoke(app, ["pca", str(path), "--model", "conv-pool"])
    assert result.exit_code == 0 and "PCA (196 components)" in result.output
    data = json.loads((_run_folder(path, "linear-3") / "analysis" / "failures.json").read_text())
    assert len(data["worst"]) == 4


@pytest.mark.parametrize(
    "args, expected",
    [
        (["interpolate", "{run}", "--from", "Hat"], "class 'Hat' does not exist in mnist; allowed: 0=0"),
        (["probe", "{run}", "--labels", "1000"], "labels per class: got 1000; allowed: 1.."),
        (["probe", "{run}", "--labels", "ten"], "--labels: got 'ten'"),
        (["interpolate", "{run}", "--steps", "1"], "steps: Input should be greater than or equal to 2"),
        (["latent-map", "{run}", "--method", "umap"], "method: got 'umap'; allowed: 'auto', 'pca' or 'tsne'"),
        (["heatmap", "{run}", "--model", "vgg"], "has no model 'vgg'; allowed: linear-3, conv-pool"),
        (["interpolate", "{nomodel}"], "has no trained model (model/ folder) yet"),
        (["report", "{empty}"], "is not an aelab experiment or run folder"),
    ],
)
def test_analysis_bad_input(run_dir, tmp_path, args, expected):
    path, _ = run_dir
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run.yaml").write_text((_run_folder(path, "linear-3") / "run.yaml").read_text())
    (tmp_path / "empty").mkdir()
    args = [a.format(run=path, nomodel=broken, empty=tmp_path / "empty") for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    text = result.stderr.strip()
    assert text.startswith("error:") and len(text.splitlines()) == 1 and expected in text, text


def test_the_experiment_report_lists_the_image_codecs_once_and_each_models_rows(tmp_path):
    from types import SimpleNamespace

    from aelab.experiments.outputs import _compression

    jpeg = {
        "storage": "JPEG q50 (1,000 test images)",
        "code_bytes": 300.0,
        "psnr": 25.0,
        "codec": "JPEG",
        "quality": 50,
    }
    png = {
        "storage": "PNG lossless (1,000 test images)",
        "code_bytes": 500.0,
        "psnr": None,
        "codec": "PNG",
        "quality": None,
    }

    def stored(name, psnr, codecs):
        folder = tmp_path / name
        folder.mkdir()
        rows = [
            {"storage": "float32", "code_bytes": 12.0, "psnr": psnr},
            {"storage": "uint8", "code_bytes": 3.0, "psnr": psnr - 0.1},
            *codecs,
            {
                "storage": "JPEG at the entropy-coded PSNR (interpolated)",
                "code_bytes": 90.0,
                "psnr": psnr,
                "codec": "JPEG",
            },
        ]
        (folder / "compression.json").write_text(json.dumps(rows))
        return SimpleNamespace(id=name, name=name), SimpleNamespace(analysis=lambda a, ext: folder / f"{a}{ext}")

    runs = [stored("a", 18.0, [jpeg, png]), stored("b", 21.0, [jpeg, png]), stored("c", 30.0, [{**jpeg, "psnr": 28.0}])]
    rows = _compression([r for r, _ in runs[:2]], {r.id: f for r, f in runs[:2]})
    assert [(r["model"], r["storage"].split(" (")[0]) for r in rows] == [
        ("a", "uint8"),
        ("a", "JPEG at the entropy-coded PSNR"),
        ("b", "uint8"),
        ("b", "JPEG at the entropy-coded PSNR"),
        ("image codecs", "JPEG q50"),
        ("image codecs", "PNG lossless"),
    ]
    # runs on other test images have other codec rows: each says whose they are
    rows = _compression([r for r, _ in runs], {r.id: f for r, f in runs})
    assert [r["model"] for r in rows if "quality" in r] == [
        "image codecs (a, b)",
        "image codecs (a, b)",
        "image codecs (c)",
    ]
