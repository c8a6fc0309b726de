"""Generative autoencoders: the ELBO and IWAE bound by hand, the KL schedule and free bits, the VQ layer's
straight-through gradient, EMA codebook and restarts, samplers, sample quality, and bad input."""

import json
import math

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from aelab.cli import app
from aelab.config import DataConfig, ModelConfig, QuantizerConfig, TrainingConfig, VariationalConfig
from aelab.data import ImageDataset, ImageSplit, load_dataset
from aelab.errors import AelabError, ModelError
from aelab.evaluation import generation as G
from aelab.evaluation import latent as L
from aelab.models import bounds as B
from aelab.models import build_model
from aelab.models.quantizer import VectorQuantizer
from aelab.models.variational import VariationalAutoEncoder, beta_at
from aelab.training import train
from conftest import error_line

runner = CliRunner()


def tiny_vae(likelihood="bernoulli", sigma=None, free_bits=0.0) -> VariationalAutoEncoder:
    """Two pixels, one latent unit: mu = 0.5 x0 - 0.25 x1 + 0.1, log sigma^2 = 0.2 x0 + 0.3 x1 - 1,
    decoder mean = sigmoid(1.5 z + [0.2, -0.4])."""
    enc = nn.Sequential(nn.Flatten(1), nn.Linear(2, 2))
    dec = nn.Sequential(nn.Linear(1, 2), nn.Sigmoid(), nn.Unflatten(1, (1, 1, 2)))
    with torch.no_grad():
        enc[1].weight.copy_(torch.tensor([[0.5, -0.25], [0.2, 0.3]]))
        enc[1].bias.copy_(torch.tensor([0.1, -1.0]))
        dec[0].weight.copy_(torch.tensor([[1.5], [1.5]]))
        dec[0].bias.copy_(torch.tensor([0.2, -0.4]))
    cfg = VariationalConfig(likelihood=likelihood, sigma=sigma, free_bits=free_bits)
    return VariationalAutoEncoder(enc, dec, (1, 1, 2), (1,), "tiny", cfg).eval()


def sigmoid(v):
    return 1 / (1 + math.exp(-v))


def hand_terms(x0, x1, eps):
    mu = 0.5 * x0 - 0.25 * x1 + 0.1
    logvar = 0.2 * x0 + 0.3 * x1 - 1.0
    z = mu + eps * math.exp(0.5 * logvar)
    m = [sigmoid(1.5 * z + 0.2), sigmoid(1.5 * z - 0.4)]
    log_lik = sum(x * math.log(p) + (1 - x) * math.log(1 - p) for x, p in zip((x0, x1), m))
    kl = 0.5 * (mu**2 + math.exp(logvar) - 1 - logvar)
    return mu, logvar, z, m, log_lik, kl


def test_elbo_of_a_tiny_vae_equals_the_hand_computation():
    model = tiny_vae()
    x = torch.tensor([[[[0.3, 0.8]]], [[[1.0, 0.0]]]])
    eps = torch.tensor([[0.7], [-1.2]])
    log_lik, kl = B.elbo(model, x, eps=eps)
    for i, (x0, x1) in enumerate([(0.3, 0.8), (1.0, 0.0)]):
        *_, ll, k = hand_terms(x0, x1, float(eps[i]))
        assert float(log_lik[i]) == pytest.approx(ll, abs=1e-5)
        assert float(kl[i]) == pytest.approx(k, abs=1e-6)
    # the training loss is the same negative ELBO: reconstruction NLL + beta * KL, averaged over the batch
    model.train()
    torch.manual_seed(3)
    out = model(x)
    torch.manual_seed(3)
    e = torch.randn(2, 1)
    hand = [hand_terms(x0, x1, float(e[i])) for i, (x0, x1) in enumerate([(0.3, 0.8), (1.0, 0.0)])]
    assert float(model.reconstruction_loss(out, x, None).detach()) == pytest.approx(
        -sum(h[4] for h in hand) / 2, abs=1e-5
    )
    assert float(out.penalty.detach()) == pytest.approx(sum(h[5] for h in hand) / 2, abs=1e-6)
    assert float(out.terms["kl"].detach()) == pytest.approx(sum(h[5] for h in hand) / 2, abs=1e-6)


def test_gaussian_likelihood_by_hand_and_learned_sigma():
    model = tiny_vae("gaussian", sigma=0.5)
    x = torch.tensor([[[[0.3, 0.8]]]])
    mean = torch.tensor([[[[0.4, 0.5]]]])
    hand = -((0.1**2 + 0.3**2) / (2 * 0.25) + 2 * (math.log(0.5) + 0.5 * math.log(2 * math.pi)))
    assert float(model.log_likelihood(mean, x)[0]) == pytest.approx(hand, abs=1e-5)
    learned = tiny_vae("gaussian")
    assert isinstance(learned.log_sigma, nn.Parameter) and float(learned.sigma.detach()) == 1.0
    with pytest.raises(ValueError, match="a bernoulli likelihood has no sigma"):
        VariationalConfig(sigma=0.1)


def test_iwae_with_one_sample_is_the_one_sample_elbo_and_more_samples_are_tighter():
    model = tiny_vae()
    x = torch.tensor([[[[0.3, 0.8]]]])
    eps = torch.tensor([[[0.7]]])  # (k=1, N=1, d=1)
    mu, logvar, z, m, ll, _ = hand_terms(0.3, 0.8, 0.7)
    log_prior = -0.5 * (math.log(2 * math.pi) + z**2)
    log_q = -0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 / math.exp(logvar))
    assert float(B.iwae_bound(model, x, k=1, eps=eps)[0]) == pytest.approx(ll + log_prior - log_q, abs=1e-5)
    # in expectation IWAE(k=1) is the ELBO; IWAE(k=64) is at least as high (tighter)
    torch.manual_seed(0)
    xs = torch.rand(200, 1, 1, 2)
    elbo = float(torch.stack([(lambda t: t[0] - t[1])(B.elbo(model, xs)) for _ in range(50)]).mean())
    iw1 = float(torch.stack([B.iwae_bound(model, xs, k=1) for _ in range(50)]).mean())
    iw64 = float(B.iwae_bound(model, xs, k=64).mean())
    assert iw1 == pytest.approx(elbo, abs=0.02)
    assert iw64 > elbo


def test_kl_warmup_and_cyclical_schedules_and_free_bits():
    lin = VariationalConfig(beta=2.0, warmup_epochs=4)
    assert [beta_at(lin, e, 10) for e in range(1, 8)] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    cyc = VariationalConfig(beta=1.0, warmup_epochs=2, schedule="cyclical", cycles=2)
    assert [beta_at(cyc, e, 8) for e in range(1, 9)] == [0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0]
    assert beta_at(VariationalConfig(beta=4.0), 1, 10) == 4.0
    # free bits: the optimized KL is sum_j max(mean_batch KL_j, lambda); the reported KL is the true one
    model = tiny_vae(free_bits=2.0).train()
    x = torch.tensor([[[[0.3, 0.8]]], [[[1.0, 0.0]]]])
    out = model(x)
    kls = [hand_terms(0.3, 0.8, 0)[5], hand_terms(1.0, 0.0, 0)[5]]
    assert float(out.terms["kl"].detach()) == pytest.approx(sum(kls) / 2, abs=1e-6)
    assert float(out.penalty.detach()) == pytest.approx(max(sum(kls) / 2, 2.0), abs=1e-6) == 2.0


def test_beta_follows_the_warmup_in_training_and_is_logged_per_epoch():
    ds = load_dataset(DataConfig(name="digits"), seed=0)
    small = ImageDataset(
        "d",
        ImageSplit(ds.train.images[:64], ds.train.labels[:64]),
        ImageSplit(ds.val.images[:16], ds.val.labels[:16]),
        ds.test,
        ds.class_names,
    )
    spec = {"type": "mlp", "hidden": [16], "code_size": 2}
    model = build_model(ModelConfig(spec=spec, variational={"beta": 3.0, "warmup_epochs": 2}), small.shape)
    result = train(model, small, TrainingConfig(epochs=4, batch_size=32, device="cpu"), progress=False)
    h = result.history
    assert h.terms["beta"] == [0.0, 1.5, 3.0, 3.0]
    assert len(h.terms["kl"]) == 4 and all(v > 0 for v in h.terms["kl"])
    # the penalty is beta * KL, epoch by epoch (one batch order: the averages multiply exactly per step)
    assert h.train_penalty[0] == 0.0
    assert h.train_penalty[3] == pytest.approx(3.0 * h.terms["kl"][3], rel=1e-5)


def quantizer(codebook, ema=False, commitment=0.25, decay=0.5, restart=0.0):
    q = VectorQuantizer(
        codebook.shape[1],
        QuantizerConfig(
            codebook_size=codebook.shape[0], ema=ema, commitment=commitment, decay=decay, restart_threshold=restart
        ),
    )
    with torch.no_grad():
        q.codebook.copy_(codebook)
        if ema:
            q.cluster_sum.copy_(codebook)
    return q


def test_vq_straight_through_gradient_and_losses_on_hand_values():
    e = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    q = quantizer(e, ema=False, commitment=0.25).train()
    z_e = torch.tensor([0.2, -0.1, 0.9, 0.6]).view(1, 2, 1, 2).requires_grad_(True)  # positions (0.2,0.9), (-0.1,0.6)
    z_q, idx, penalty, perplexity = q(z_e)
    assert idx.tolist() == [[[1, 0]]]  # (0.2, 0.9) is nearer (1, 1); (-0.1, 0.6) nearer (0, 0)
    assert z_q.detach().view(-1).tolist() == [1.0, 0.0, 1.0, 0.0]
    sq = (0.8**2 + 0.1**2 + 0.1**2 + 0.6**2) / 4  # mean ||z_e - e||^2 per value
    assert float(penalty.detach()) == pytest.approx(0.25 * sq + sq, abs=1e-6)
    assert float(perplexity) == pytest.approx(2.0)
    g = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 2, 1, 2)
    ((z_q * g).sum() + penalty).backward()
    diff = z_e.detach() - torch.tensor([1.0, 0.0, 1.0, 0.0]).view(1, 2, 1, 2)
    # straight through: the decoder's gradient g reaches z_e unchanged, plus the commitment term 2 beta (z_e - e) / 4
    assert torch.allclose(z_e.grad, g + 2 * 0.25 * diff / 4, atol=1e-6)
    # the codebook loss pulls each used entry towards its vectors: d/de = 2 (e - z_e) / 4 summed over its positions
    assert torch.allclose(
        q.codebook.grad,
        torch.tensor([[2 * (0 + 0.1) / 4, 2 * (0 - 0.6) / 4], [2 * (1 - 0.2) / 4, 2 * (1 - 0.9) / 4]]),
        atol=1e-6,
    )


def test_vq_ema_codebook_update_on_hand_values():
    e = torch.tensor([[0.0], [1.0], [5.0]])
    q = quantizer(e, ema=True, decay=0.5).train()
    z_e = torch.tensor([0.1, 0.3, 0.8]).view(3, 1, 1, 1)  # -> entries 0, 0, 1; entry 2 unused
    q(z_e)
    size = [0.5 * 1 + 0.5 * 2, 0.5 * 1 + 0.5 * 1, 0.5 * 1 + 0.5 * 0]  # N_k <- g N_k + (1 - g) n_k (N starts at 1)
    sums = [0.5 * 0.0 + 0.5 * 0.4, 0.5 * 1.0 + 0.5 * 0.8, 0.5 * 5.0 + 0]
    total, eps = sum(size), 1e-5
    smoothed = [(n + eps) / (total + 3 * eps) * total for n in size]
    assert q.cluster_size.tolist() == pytest.approx(size)
    assert q.codebook.view(-1).tolist() == pytest.approx([s / n for s, n in zip(sums, smoothed)], rel=1e-5)
    assert q.usage.tolist() == pytest.approx([1.0, 0.5, 0.0])  # EMA of counts, from 0
    q.eval()
    before = q.codebook.clone()
    q(z_e)
    assert torch.equal(q.codebook, before)  # no updates in eval mode


def test_dead_codes_are_restarted_onto_batch_vectors():
    torch.manual_seed(0)
    e = torch.tensor([[0.0, 0.0], [50.0, 50.0], [60.0, 60.0], [70.0, 70.0]])
    q = quantizer(e, ema=False, decay=0.5, restart=1.0).train()
    with torch.no_grad():
        q.usage.fill_(5.0)
        q.usage[1:] = 0.1  # entries 1..3 have not been used for a while
    z_e = torch.randn(2, 2, 3, 3) * 0.1
    q(z_e)
    vectors = z_e.permute(0, 2, 3, 1).reshape(-1, 2)
    for k in (1, 2, 3):
        assert any(torch.equal(q.codebook[k].detach(), v) for v in vectors), k
        assert float(q.usage[k]) == 2.0  # the grace period: twice the threshold
    assert q.codebook[0].tolist() == [0.0, 0.0]


def test_vqvae_preset_code_is_an_exact_index_grid():
    model = build_model("vqvae-conv").eval()
    x = torch.rand(3, 1, 28, 28)
    idx = model.indices(x)
    assert idx.shape == (3, 7, 7) and idx.dtype == torch.int64 and int(idx.max()) < 256
    assert model.bits_per_image == 49 * 8 and model.code_size == 49 and model.code_shape == (16, 7, 7)
    assert torch.equal(model.decode_indices(idx), model.decode(model.encode(x)))


def test_generative_presets_shapes_and_parameters():
    vae2 = build_model("vae-2")
    # encoder 784-512-256-4, decoder 2-256-512-784
    hand = (
        (784 * 512 + 512) + (512 * 256 + 256) + (256 * 4 + 4) + (2 * 256 + 256) + (256 * 512 + 512) + (512 * 784 + 784)
    )
    assert vae2.num_parameters() == hand and vae2.code_shape == (2,)
    cvae, vae = build_model("cvae-conv-16"), build_model("vae-conv-16")
    # the conditional one has 10 more input channels in its first conv (3x3) and 10 more inputs to its first Linear
    assert cvae.num_parameters() - vae.num_parameters() == 10 * 16 * 9 + 10 * 256
    x, y = torch.rand(5, 1, 28, 28), torch.arange(5)
    for m in (vae, cvae):
        m.eval()
        with torch.no_grad():
            out = m(x, y)
        assert out.reconstruction.shape == (5, 1, 28, 28) and out.code.shape == (5, 16)
        assert 0 <= float(out.reconstruction.min()) and float(out.reconstruction.max()) <= 1
    with pytest.raises(ModelError, match="conditional VAE: it needs the class labels"):
        cvae.encode(x)


def tiny_dataset(n=200, classes=10, size=28):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % classes
    images = torch.randint(0, 40, (n, 1, size, size), generator=g, dtype=torch.uint8)
    for i, c in enumerate(labels.tolist()):
        images[i, 0, 2 + 2 * c : 6 + 2 * c, 4:24] = 220
    split = ImageSplit(images, labels)
    return ImageDataset("toy", split, ImageSplit(images[:20], labels[:20]), split, [f"c{i}" for i in range(classes)])


def test_samplers_shapes_seeding_and_refusals():
    ds = tiny_dataset()
    torch.manual_seed(0)
    vae = build_model("vae-conv-16").eval()
    s = G.fit_sampler(vae, ds)
    assert s.kind == "prior" and s.codes(7).shape == (7, 16)
    a, b, c = s.images(6, seed=1), s.images(6, seed=1), s.images(6, seed=2)
    assert a.shape == (6, 1, 28, 28) and torch.equal(a, b) and not torch.equal(a, c)
    ae = build_model("conv-64").eval()
    gm = G.fit_sampler(ae, ds, fit_images=100)
    assert gm.kind == "gmm" and gm.codes(5, seed=3).shape == (5, 64, 1, 1)
    assert torch.equal(gm.images(5, seed=3), gm.images(5, seed=3))
    vq = build_model("vqvae-conv").eval()
    cat = G.fit_sampler(vq, ds)
    grids = cat.codes(4)
    assert cat.kind == "categorical" and grids.shape == (4, 7, 7) and cat.frequencies.shape == (49, 256)
    assert torch.allclose(cat.frequencies.sum(1), torch.ones(49))
    with pytest.raises(
        AelabError,
        match=r"sampler prior: model 'conv-64' \(autoencoder\) cannot sample that way; "
        "allowed for it: gmm",
    ):
        G.fit_sampler(ae, ds, "prior")
    with pytest.raises(AelabError, match="sampler gmm: model 'vqvae-conv' .* allowed for it: categorical"):
        G.fit_sampler(vq, ds, "gmm")
    with pytest.raises(AelabError, match="sampler categorical: model 'vae-conv-16' .* allowed for it: prior, gmm"):
        G.fit_sampler(vae, ds, "categorical")


def test_conditional_generation_one_row_per_class_and_quality_measures():
    ds = tiny_dataset(n=300)
    torch.manual_seed(0)
    cvae = build_model("cvae-conv-16").eval()
    g = G.generate(cvae, ds, n=30, quality_samples=100)
    assert g.sampler == "prior" and g.rows == 10 and g.grid.shape == (30, 1, 28, 28)
    assert g.frechet is not None and g.frechet > 0 and g.samples == 100
    assert 0 <= g.class_accuracy <= 1 and len(g.per_class) == 10
    # the reference classifier was cached: the second call loads it (same accuracy, same distance)
    again = G.generate(cvae, ds, n=30, quality_samples=100)
    assert again.frechet == pytest.approx(g.frechet) and again.classifier_accuracy == g.classifier_accuracy


def test_frechet_distance_of_identical_sets_is_zero_and_grows_with_a_shift():
    from aelab.evaluation.classifier import reference_classifier

    ds = tiny_dataset(n=600)
    clf = reference_classifier(ds)
    assert clf.test_accuracy > 0.9  # the toy classes are bars at different heights
    real = ds.test.floats()
    assert G.frechet_distance(clf, real, real) == pytest.approx(0.0, abs=1e-3)
    assert G.frechet_distance(clf, real, (real * 0.5).clamp(0, 1)) > 1.0


def test_active_units_and_traversals_and_manifold():
    ds = tiny_dataset(n=100)
    enc = nn.Sequential(nn.Flatten(1), nn.Linear(784, 4))
    dec = nn.Sequential(nn.Linear(2, 784), nn.Sigmoid(), nn.Unflatten(1, (1, 28, 28)))
    with torch.no_grad():  # unit 0's mean follows the bar's height; unit 1's mean is constant
        enc[1].weight.zero_()
        enc[1].bias.zero_()
        enc[1].weight[0, 4 * 28 + 4] = 1.0  # pixel (4, 4): bright only for class 1's bar ... and class 0's
        enc[1].weight[0, 20 * 28 + 4] = 1.0
    model = VariationalAutoEncoder(enc, dec, (1, 28, 28), (2,), "two", VariationalConfig())
    m = B.variational_metrics(model, ds.test, k=4, iwae_images=10)
    assert m["active_units"] == 1 and m["latent_units"] == 2 and m["latent_variances"][1] == 0.0
    assert m["test_iwae_nll"] <= m["test_nelbo_subset"] + 1e-6
    images, units, values = L.traversals(model, ds, index=3, steps=5, units=2)
    assert images.shape == (2, 5, 1, 28, 28) and units[0] == 0
    assert values[1][0] == pytest.approx(-2.0) and values[1][-1] == pytest.approx(2.0)  # the prior's range at least
    grid, u, v, _ = L.manifold(model, ds, steps=5)
    assert grid.shape == (5, 5, 1, 28, 28)
    assert u.tolist() == pytest.approx([-1.6449, -0.5978, 0.0, 0.5978, 1.6449], abs=1e-4) and v[0] == pytest.approx(
        1.6449, abs=1e-4
    )
    with pytest.raises(AelabError, match="the decoded manifold needs a 2-D code"):
        L.manifold(build_model("vae-conv-16"), ds)


# ------------------------------------------------------------------------------------------- CLI and runs
def test_generative_runs_report_and_bad_input(tmp_path, idx_dir):
    runs = tmp_path / "runs"
    base = [
        "--dataset",
        "mnist",
        "--data-dir",
        str(idx_dir),
        "--runs-dir",
        str(runs),
        "--epochs",
        "2",
        "--batch-size",
        "32",
    ]
    r = runner.invoke(app, ["compare", "--models", "vae-2,cvae-conv-16,vqvae-conv", *base, "--name", "gen"])
    assert r.exit_code == 0, r.output
    rows = json.loads((runs / "gen" / "metrics.json").read_text())["runs"]
    by = {row["model"]: row for row in rows}
    assert by["vae-2"]["test_iwae_nll"] <= by["vae-2"]["test_nelbo_subset"]
    assert by["vae-2"]["latent_units"] == 2 and by["cvae-conv-16"]["latent_units"] == 16
    assert by["vqvae-conv"]["bits_per_image"] == 392 and by["vqvae-conv"]["code_size"] == 49
    assert "sample_class_accuracy" in by["cvae-conv-16"] and "frechet_distance" in by["vae-2"]
    folders = {p.name.rsplit("-", 1)[0]: p for p in (runs / "gen").iterdir() if p.is_dir()}
    assert {p.name for p in (folders["vae-2"] / "analysis").glob("*.png")} >= {
        "generate.png",
        "traverse.png",
        "manifold.png",
    }
    # a conditional model gets only the analyses that take labels
    assert {p.name for p in (folders["cvae-conv-16"] / "analysis").glob("*.png")} == {"generate.png", "traverse.png"}
    comp = json.loads((folders["vqvae-conv"] / "analysis" / "compression.json").read_text())
    code_rows = [r for r in comp if "codec" not in r]  # then the JPEG, WebP and PNG rows
    assert len(code_rows) == 2 and comp[0]["code_bytes"] == 49 and comp[0]["storage"].startswith("indices (K=256")
    assert code_rows[1]["storage"].startswith("indices, entropy coded") and code_rows[1]["psnr"] == comp[0]["psnr"]
    report = (runs / "gen" / "report.html").read_text()
    for text in ("-IWAE bound (nats)", "Compression: bytes per image", "not the Inception FID", "Generated samples"):
        assert text in report
    # sampler asked of a model without that kind of code: one error line, exit 2
    r = runner.invoke(app, ["generate", str(folders["vqvae-conv"]), "--sampler", "gmm"])
    assert r.exit_code == 2
    assert "sampler gmm: model 'vqvae-conv' (VQ-VAE" in error_line(r) and "allowed for it: categorical" in error_line(r)
    r = runner.invoke(app, ["manifold", str(folders["cvae-conv-16"])])
    assert r.exit_code == 2 and "does not have exactly 2 values" in error_line(r)
    r = runner.invoke(app, ["interpolate", str(folders["cvae-conv-16"])])
    assert r.exit_code == 2 and "a conditional model needs the class label" in error_line(r)
    r = runner.invoke(app, ["generate", str(folders["vae-2"]), "--n", "16", "--quality-samples", "50"])
    assert r.exit_code == 0, r.output
    assert "Frechet distance" in r.output


@pytest.mark.parametrize(
    "args,expected",
    [
        (
            ["--model", "vae-conv-16", "--set", "model.variational.beta=-1"],
            "model.variational.beta: Input should be greater than or equal to 0",
        ),
        (
            ["--model", "vqvae-conv", "--set", "model.quantizer.codebook_size=1"],
            "model.quantizer.codebook_size: Input should be greater than or equal to 2",
        ),
        (
            ["--model", "vae-2", "--set", "model.variational.likelihood=poisson"],
            "model.variational.likelihood: got 'poisson'; allowed: 'bernoulli' or 'gaussian'",
        ),
        (
            ["--model", "res-16", "--set", "model.quantizer.codebook_size=16"],
            "a quantizer (VQ-VAE) needs a conv spec whose code is a feature map",
        ),
        (["--model", "vae-2", "--set", "model.sparsity=topk:1"], "sparsity and tied weights are for deterministic"),
        (
            ["--model", "cvae-conv-16", "--denoise", "gaussian:0.2"],
            "training.corruption: model 'cvae-conv-16' is conditional",
        ),
        (["--model", "vae-2", "--layerwise", "2"], "training.layerwise_epochs: model 'vae-2' is generative"),
    ],
)
def test_bad_generative_config_is_one_error_line(tmp_path, idx_dir, args, expected):
    r = runner.invoke(
        app,
        [
            "train",
            *args,
            "--dataset",
            "mnist",
            "--data-dir",
            str(idx_dir),
            "--runs-dir",
            str(tmp_path / "runs"),
            "--epochs",
            "1",
        ],
    )
    assert r.exit_code == 2, r.output
    assert expected in error_line(r)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.safetensors"))


def test_conditional_model_on_unlabelled_folder_data(tmp_path):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(folder / f"{i}.png")
    r = runner.invoke(
        app,
        [
            "train",
            "--model",
            "cvae-conv-16",
            "--dataset",
            "folder",
            "--data-dir",
            str(folder),
            "--grayscale",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--epochs",
            "1",
        ],
    )
    assert r.exit_code == 2, r.output
    assert "is a conditional VAE and needs labelled data with 2 or more classes; this data has 1" in error_line(r)
    assert not any((tmp_path / "runs").rglob("model.safetensors"))


def test_vq_and_vae_runs_resume_bit_identical(tmp_path):
    ds = tiny_dataset(n=96)
    cfg = TrainingConfig(epochs=4, batch_size=32, device="cpu", optimizer="adamw", schedule="cosine")

    for mcfg in (ModelConfig(preset="vqvae-conv"), ModelConfig(preset="vae-2", variational={"warmup_epochs": 2})):
        torch.manual_seed(0)
        whole = build_model(mcfg, ds.shape)
        full = train(whole, ds, cfg, seed=1, progress=False)

        class Stop(Exception):
            pass

        def stop(epoch, history):
            if epoch == 2:
                raise Stop

        torch.manual_seed(0)
        cut = build_model(mcfg, ds.shape)
        with pytest.raises(Stop):
            train(cut, ds, cfg, seed=1, run_dir=tmp_path / mcfg.label, progress=False, on_epoch=stop)
        torch.manual_seed(0)
        resumed = build_model(mcfg, ds.shape)
        again = train(resumed, ds, cfg, seed=1, run_dir=tmp_path / mcfg.label, resume=True, progress=False)
        assert again.resumed_from == 2
        assert again.history.train_loss == full.history.train_loss
        assert again.history.terms == full.history.terms
        for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
            assert torch.equal(a, b), k


def test_preset_settings_fill_the_fields_not_given_and_survive_the_store():
    from aelab.config import RunConfig

    m = ModelConfig(preset="cvae-conv-16", variational={"beta": 4})
    assert m.variational.conditional is True and m.variational.beta == 4.0 and m.label == "cvae-conv-16 beta:4"
    again = RunConfig.model_validate(RunConfig(model=m).model_dump(mode="json")).model
    assert again == m and again.label == "cvae-conv-16 beta:4" and build_model(again).conditional
    assert ModelConfig(preset="vae-conv-16", variational={"warmup_epochs": 0}).label == "vae-conv-16"
    assert ModelConfig(preset="vqvae-conv", quantizer={"codebook_size": 64}).label == "vqvae-conv codebook_size:64"
    assert ModelConfig(spec={"type": "mlp"}, variational={"beta": 2}).label == "mlp vae beta:2"
    assert build_model(ModelConfig(preset="vqvae-conv", quantizer={"codebook_size": 64})).quantizer.size == 64
    from aelab.models import family_of

    vq = ModelConfig(preset="vqvae-conv")
    assert family_of(vq).figure_line(vq.filled()) == "VQ-VAEs (code size = indices)"
    assert family_of(m).figure_line(m.filled()) == "VAEs (posterior mean)"
    res = ModelConfig(preset="res-16")
    assert family_of(res).figure_line(res.filled()) == "aelab presets"
