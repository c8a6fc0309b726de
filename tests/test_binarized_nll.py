"""Dynamically binarized data (fresh per epoch, fixed for the test split, seeded) and the test NLL by importance
sampling (k = 1 is the ELBO in expectation; more samples tighten it), with their bad input."""

import json

import pytest
import torch
from typer.testing import CliRunner

from aelab.cli import app
from aelab.config import DataConfig, MLPSpec, ModelConfig, TrainingConfig
from aelab.data import ImageDataset, ImageSplit, load_dataset
from aelab.models import build_model
from aelab.models.bounds import iwae_bound, iwae_nll
from aelab.training import train
from conftest import error_line

runner = CliRunner()


def test_the_test_and_validation_splits_are_binarized_once_with_a_fixed_seed(idx_dir):
    cfg = DataConfig(name="mnist", data_dir=idx_dir, binarize="dynamic")
    a, b = load_dataset(cfg, seed=0), load_dataset(cfg, seed=0)
    grey = load_dataset(DataConfig(name="mnist", data_dir=idx_dir), seed=0)
    assert torch.equal(a.test.images, b.test.images) and torch.equal(a.val.images, b.val.images)
    assert set(a.test.images.unique().tolist()) == {0, 255} and set(a.val.images.unique().tolist()) <= {0, 255}
    assert torch.equal(a.train.images, grey.train.images)  # the trainer samples these anew each epoch
    p = grey.test.images.float() / 255  # each pixel 255 with probability grey / 255
    assert abs(float((a.test.images == 255).float().mean() - p.mean())) < 0.01
    assert torch.all(a.test.images[grey.test.images == 0] == 0) and torch.all(
        a.test.images[grey.test.images == 255] == 255
    )
    assert a.binarize == "dynamic" and grey.binarize is None
    assert DataConfig().split_key(0) == DataConfig(binarize=None).split_key(0) != cfg.split_key(0)


def grey_dataset(n=64, binarize="dynamic"):
    images = torch.full((n, 1, 4, 4), 128, dtype=torch.uint8)  # every pixel p = 128/255: the samples carry the seed
    split = ImageSplit(images, torch.zeros(n, dtype=torch.long))
    return ImageDataset("grey", split, split.head(8), split.head(8), ["c"], binarize=binarize)


def training_inputs(seed, epochs=2, binarize="dynamic"):
    ds = grey_dataset(binarize=binarize)
    torch.manual_seed(0)
    model = build_model(ModelConfig(spec=MLPSpec(hidden=[8], code_size=2)), ds.shape)
    seen = []
    model.encoder.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()) if m.training else None)
    train(model, ds, TrainingConfig(epochs=epochs, batch_size=64, device="cpu"), seed=seed, progress=False)
    return seen


def test_training_images_are_sampled_anew_every_epoch_and_seeded():
    first, second = training_inputs(seed=3)
    assert set(first.unique().tolist()) == {0.0, 1.0} and set(second.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(first, second)  # a fresh sample each epoch
    assert not torch.equal(first[0], first[1])  # each image its own sample
    assert abs(float(torch.cat([first, second]).mean()) - 128 / 255) < 0.05
    again = training_inputs(seed=3)
    assert all(torch.equal(a, b) for a, b in zip(again, [first, second]))  # the run's seed decides them
    assert not torch.equal(training_inputs(seed=4)[0], first)
    grey = training_inputs(seed=3, binarize=None)[0]
    assert torch.allclose(grey, torch.full_like(grey, 128 / 255))


def test_nll_with_one_sample_is_the_elbo_and_more_samples_tighten_it():
    torch.manual_seed(0)
    model = build_model("vae-2").eval()
    g = torch.Generator().manual_seed(1)
    images = (torch.rand(12, 1, 28, 28, generator=g) < 0.3).to(torch.uint8) * 255
    split = ImageSplit(images, torch.zeros(12, dtype=torch.long))
    ones = [iwae_nll(model, split, k=1, seed=s) for s in range(200)]
    nll_1 = sum(r["nll"] for r in ones) / len(ones)
    nelbo = sum(r["nelbo"] for r in ones) / len(ones)
    assert nll_1 == pytest.approx(nelbo, abs=0.5)  # k = 1: the ELBO with a sampled KL, equal in expectation
    many = iwae_nll(model, split, k=256, seed=0, decodes=1000)
    assert many["k"] == 256 and many["images"] == 12
    assert many["nll"] < nelbo  # the bound tightens with k
    assert many["bits_per_dim"] == pytest.approx(many["nll"] / 784 / 0.6931471805599453)
    # one pass of an image's 8 samples, or parts of 3, 3 and 2 joined by logsumexp: the same samples, the same
    # estimate; and it is the IWAE bound of those samples, drawn as the function draws them
    whole = iwae_nll(model, split, k=8, seed=5, decodes=8)["nll"]
    assert iwae_nll(model, split, k=8, seed=5, decodes=3)["nll"] == pytest.approx(whole, abs=1e-4)
    g = torch.Generator().manual_seed(5)
    by_hand = 0.0
    for i in range(12):
        x = images[i : i + 1].float() / 255
        eps = torch.randn(8, 1, 2, generator=g)
        by_hand -= float(iwae_bound(model, x, None, eps=eps))
        torch.randn(1, 2, generator=g)  # the ELBO's draw
    assert whole == pytest.approx(by_hand / 12, abs=1e-4)


def test_nll_command_and_its_refusals(tmp_path, idx_dir):
    runs = tmp_path / "runs"
    base = ["--dataset", "mnist", "--data-dir", str(idx_dir), "--runs-dir", str(runs), "--epochs", "1"]
    r = runner.invoke(
        app, ["train", "--model", "vae-2", "--binarize", "dynamic", *base, "--name", "b", "--no-analysis"]
    )
    assert r.exit_code == 0, r.output
    (folder,) = [p for p in (runs / "b").iterdir() if p.is_dir()]
    r = runner.invoke(app, ["nll", str(folder), "--k", "16", "--images", "10"])
    assert r.exit_code == 0, r.output
    assert "IWAE, k=16, 10 test images, dynamically binarized" in r.output
    row = json.loads((folder / "analysis" / "nll.json").read_text())[0]
    assert row["k"] == 16 and row["images"] == 10 and row["nll"] <= row["nelbo"] + 5
    r = runner.invoke(app, ["nll", str(folder), "--k", "0"])
    assert r.exit_code == 2 and error_line(r) == "error: --k: Input should be greater than or equal to 1 (got 0)"
    r = runner.invoke(app, ["compare", "--models", "linear-3", *base, "--name", "l", "--no-analysis"])
    (lin,) = [p for p in (runs / "l").iterdir() if p.is_dir()]
    r = runner.invoke(app, ["nll", str(lin)])
    assert r.exit_code == 2 and "it has no likelihood of its images" in error_line(r)
    # a gaussian likelihood of binarized images: one line, exit 2, nothing written
    gaussian = ["--set", "model.variational.likelihood=gaussian", "--set", "model.variational.sigma=0.1"]
    r = runner.invoke(app, ["train", "--model", "vae-2", *gaussian, "--binarize", "dynamic", *base, "--name", "g"])
    assert r.exit_code == 2
    assert "data.binarize: binarized images have pixels of 0 or 1" in error_line(r)
    assert "allowed: model.variational.likelihood: bernoulli" in error_line(r)
    assert not (runs / "g").exists()
