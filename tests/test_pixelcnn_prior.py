"""The gated PixelCNN prior of a VQ-VAE: causal masks (gradients), the NLL by hand, the autoregressive range coder's
exact round trip, the frozen VQ-VAE, resume, sampling, the compression row, and bad input."""

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from aelab.cli import app
from aelab.config import ModelConfig, TrainingConfig
from aelab.data import ImageDataset, ImageSplit
from aelab.errors import AelabError, ConfigError, ModelError
from aelab.evaluation import entropy as E
from aelab.evaluation import generation as G
from aelab.models import build_model
from aelab.models.pixelcnn import GatedPixelCNN
from aelab.models.prior import PixelCNNPriorVQ
from aelab.training import train
from conftest import error_line

runner = CliRunner()
SMALL = {"channels": 8, "layers": 3, "hidden": 16}


def tiny_dataset(n=96):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 4
    images = torch.randint(0, 40, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    for i, c in enumerate(labels.tolist()):
        images[i, 0, 4 + 4 * c : 10 + 4 * c, 4:24] = 220
    split = ImageSplit(images, labels)
    return ImageDataset("toy", split, ImageSplit(images[:16], labels[:16]), split, [f"c{i}" for i in range(4)])


@pytest.fixture(scope="module")
def vq_folder(tmp_path_factory):
    """A vqvae-conv with K = 16 trained for one epoch on the toy set, saved as a run's model/ folder."""
    ds = tiny_dataset()
    torch.manual_seed(0)
    vq = build_model(ModelConfig(preset="vqvae-conv", quantizer={"codebook_size": 16}), ds.shape)
    train(vq, ds, TrainingConfig(epochs=1, batch_size=32, device="cpu"), progress=False)
    run = tmp_path_factory.mktemp("runs") / "vqvae-conv-000000000000"
    vq.save(run / "model")
    return run


def prior_config(folder, **settings):
    return ModelConfig(
        preset="vqvae-conv", quantizer={"codebook_size": 16, "prior": {"vqvae": folder, **SMALL, **settings}}
    )


@pytest.mark.parametrize("layers,kernel", [(1, 3), (3, 3), (2, 5)])
def test_no_output_sees_its_own_or_a_later_input(layers, kernel):
    torch.manual_seed(0)
    net = GatedPixelCNN(levels=5, channels=4, layers=layers, kernel=kernel, hidden=8)
    h, w = 4, 5
    e = torch.randn(1, 4, h, w, requires_grad=True)
    for i in range(h * w):
        r, c = divmod(i, w)
        (grad,) = torch.autograd.grad(net.features(e)[0, :, r, c].sum(), e)
        seen = grad.abs().sum(1).flatten()  # (h*w,): how much input position j moves output i
        assert torch.all(seen[i:] == 0), (i, seen)
        if c > 0:
            assert seen[i - 1] > 0  # the left neighbour is always seen
        if r > 0:
            assert seen[i - w] > 0  # and the one above


def test_enough_layers_leave_no_blind_spot():
    torch.manual_seed(0)
    net = GatedPixelCNN(levels=5, channels=4, layers=4, kernel=3, hidden=8)
    e = torch.randn(1, 4, 4, 4, requires_grad=True)
    (grad,) = torch.autograd.grad(net.features(e)[0, :, 3, 3].sum(), e)
    seen = grad.abs().sum(1).flatten()
    assert torch.all(seen[:15] > 0) and seen[15] == 0  # every earlier position of the 4x4 grid, not itself


def test_nll_of_a_tiny_grid_by_hand():
    net = GatedPixelCNN(levels=3, channels=2, layers=1, kernel=3, hidden=4)
    with torch.no_grad():  # every position: p = (1/2, 1/4, 1/4), whatever came before
        net.head[-1].weight.zero_()
        net.head[-1].bias.copy_(torch.tensor([0.5, 0.25, 0.25]).log())
    grid = torch.tensor([[[0, 1], [2, 0]], [[1, 1], [1, 1]]])
    nll = net.nll(grid)
    assert torch.allclose(nll, torch.tensor([6 * math.log(2), 8 * math.log(2)]))  # 1+2+2+1 bits; 4 x 2 bits


def conditionals_of(net):
    def conditionals(grids):
        with torch.no_grad():
            return torch.softmax(net(grids).double().flatten(2).transpose(1, 2), 2)

    return conditionals


def test_autoregressive_range_coder_round_trip_is_exact():
    torch.manual_seed(0)
    net = GatedPixelCNN(levels=16, channels=8, layers=3, kernel=3, hidden=16).eval()
    grids = torch.randint(0, 16, (37, 5, 6))
    cond = conditionals_of(net)
    stream = E.encode_autoregressive(grids, cond)
    assert torch.equal(E.decode_autoregressive(stream, 37, (5, 6), cond), grids)
    sizes = E.entropy_coded_autoregressive(grids, cond, chunk=10, checked=20)
    assert sizes["checked_images"] == 20
    ideal = float(-torch.log2(cond(grids).gather(2, grids.flatten(1).unsqueeze(2))).sum()) / 8 / 37
    assert sizes["ideal_bytes_per_image"] == pytest.approx(ideal)
    # 4 streams of whole 32-bit words: at most 4 bytes of padding and a few of coder overhead per stream
    assert ideal <= sizes["bytes_per_image"] <= ideal + 4 * 8 / 37
    with pytest.raises(AelabError, match="whole 32-bit words; got 5 bytes"):
        E.decode_autoregressive(stream[:5], 37, (5, 6), cond)


def test_a_skewed_prior_codes_below_the_raw_size():
    """Grids whose every index repeats the one before: a prior that knows it codes them in far fewer bits."""
    grids = torch.randint(0, 16, (50, 1, 1)).expand(50, 4, 4).contiguous()

    def cond(g):
        flat = g.flatten(1)
        p = torch.full((len(g), 16, 16), 0.001 / 15, dtype=torch.float64)
        p[:, 0] = 1 / 16
        prev = flat[:, :-1]
        p[:, 1:].scatter_(2, prev.unsqueeze(2), 0.999)
        return p

    sizes = E.entropy_coded_autoregressive(grids, cond)
    assert sizes["bytes_per_image"] < 1.5  # raw: 16 indices x 4 bits = 8 bytes


def test_the_prior_trains_only_the_pixelcnn_and_the_vqvae_stays_frozen(vq_folder):
    ds = tiny_dataset()
    torch.manual_seed(0)
    model = build_model(prior_config(vq_folder), ds.shape)
    assert isinstance(model, PixelCNNPriorVQ) and model.config.label == "vqvae-conv pixelcnn codebook_size:16"
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("prior_net.")}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("prior_net.") for n in trainable)
    before = float(model.eval().test_measures(ds.test)["prior_bits_per_index"])
    assert before == pytest.approx(4.0, abs=0.3)  # K = 16 and a fresh prior: near log2 16 bits
    result = train(model, ds, TrainingConfig(epochs=3, batch_size=32, device="cpu"), progress=False)
    for k, v in result.model.state_dict().items():
        if k in frozen:
            assert torch.equal(v, frozen[k]), k  # weights, BatchNorm statistics, the codebook and its EMA
    measures = result.model.test_measures(ds.test)
    assert measures["prior_bits_per_index"] < before
    assert measures["prior_bits_per_image"] == pytest.approx(measures["prior_bits_per_index"] * 49)
    assert result.history.train_loss == result.history.terms["nll"]


def test_a_cut_prior_run_resumes_bit_identical(vq_folder, tmp_path):
    ds = tiny_dataset()
    cfg = TrainingConfig(epochs=3, batch_size=32, device="cpu", schedule="cosine")

    def fresh(seed):
        torch.manual_seed(seed)
        return build_model(prior_config(vq_folder), ds.shape)

    whole = fresh(0)
    full = train(whole, ds, cfg, seed=1, progress=False)

    def stop(epoch, history):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(fresh(0), ds, cfg, seed=1, run_dir=tmp_path, progress=False, on_epoch=stop)
    resumed = fresh(5)
    again = train(resumed, ds, cfg, seed=1, run_dir=tmp_path, resume=True, progress=False)
    assert again.resumed_from == 1 and again.history.train_loss == full.history.train_loss
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_pixelcnn_sampler_and_the_prior_coded_row(vq_folder):
    from aelab.evaluation.compression import compression

    ds = tiny_dataset()
    torch.manual_seed(0)
    model = build_model(prior_config(vq_folder), ds.shape).eval()
    s = G.fit_sampler(model, ds)
    assert s.kind == "pixelcnn"
    a, b = s.codes(6, seed=3), s.codes(6, seed=3)
    assert a.shape == (6, 16, 7, 7) and torch.equal(a, b)
    codebook = model.quantizer.codebook
    assert torch.all((a.permute(0, 2, 3, 1).reshape(-1, 1, 16) == codebook).all(2).any(1))  # codebook vectors
    assert s.images(6, seed=3).shape == (6, 1, 28, 28)
    with pytest.raises(AelabError, match="sampler pixelcnn: model 'vqvae-conv codebook_size:16'"):
        G.fit_sampler(build_model(ModelConfig(preset="vqvae-conv", quantizer={"codebook_size": 16})), ds, "pixelcnn")
    rows = [r for r in compression(model, ds) if "codec" not in r]
    assert [r["storage"].split(" (")[0] for r in rows] == [
        "indices",
        "indices, entropy coded",
        "indices, entropy coded",
    ]
    assert "the model's prior" in rows[2]["storage"] and "96 decoded back" in rows[2]["storage"]
    assert rows[2]["psnr"] == rows[0]["psnr"]
    assert rows[2]["code_bytes"] >= rows[2]["ideal_bytes"] > 0


def test_bad_priors_are_refused_with_one_line(vq_folder, tmp_path):
    shape = (1, 28, 28)
    with pytest.raises(ModelError, match="is not a finished run folder or saved model"):
        build_model(prior_config(tmp_path / "nowhere"), shape)
    conv = build_model("conv-64")
    conv.save(tmp_path / "conv" / "model")
    with pytest.raises(ModelError, match="holds 'conv-64', not a VQ-VAE; .* allowed: a VQ-VAE run"):
        build_model(prior_config(tmp_path / "conv"), shape)
    other = ModelConfig(preset="vqvae-conv", quantizer={"codebook_size": 32, "prior": {"vqvae": vq_folder}})
    with pytest.raises(ModelError, match="is 'vqvae-conv codebook_size:16' on 1x28x28 images; this model is"):
        build_model(other, shape)
    model = build_model(prior_config(vq_folder), shape)
    with pytest.raises(ConfigError, match="training.ema_decay: a PixelCNN prior .* allowed for it: null"):
        model.check_training(TrainingConfig(ema_decay=0.99), False)
    with pytest.raises(ValueError, match="an odd width"):
        prior_config(vq_folder, kernel=4)


def test_prior_run_from_the_cli_and_its_refusal(vq_folder, tmp_path, idx_dir):
    runs = tmp_path / "runs"
    base = ["--dataset", "mnist", "--data-dir", str(idx_dir), "--runs-dir", str(runs), "--batch-size", "32"]
    r = runner.invoke(
        app, ["compare", "--models", "vqvae-conv", *base, "--epochs", "1", "--name", "vq", "--no-analysis"]
    )
    assert r.exit_code == 0, r.output
    (vq_run,) = [p for p in (runs / "vq").iterdir() if p.is_dir()]
    prior = [
        "--model",
        "vqvae-conv",
        "--set",
        f"model.quantizer.prior.vqvae={vq_run}",
        "--set",
        "model.quantizer.prior.channels=8",
    ]
    r = runner.invoke(app, ["train", *prior, *base, "--epochs", "1", "--name", "prior"])
    assert r.exit_code == 0, r.output
    row = json.loads((runs / "prior" / "metrics.json").read_text())["runs"][0]
    vq_row = json.loads((runs / "vq" / "metrics.json").read_text())["runs"][0]
    assert row["model"] == "vqvae-conv pixelcnn" and row["family"] == "vqvae-pixelcnn"
    assert row["test_psnr"] == pytest.approx(vq_row["test_psnr"])  # the frozen VQ-VAE's reconstructions
    assert 0 < row["prior_bits_per_index"] < 9 and row["loss_unit"].startswith("nats per image")
    (folder,) = [p for p in (runs / "prior").iterdir() if p.is_dir()]
    comp = json.loads((folder / "analysis" / "compression.json").read_text())
    assert any("the model's prior" in c["storage"] for c in comp)
    # a prior on a run that is not a VQ-VAE: one line, exit 2, nothing written
    r = runner.invoke(
        app, ["compare", "--models", "linear-3", *base, "--epochs", "1", "--name", "lin", "--no-analysis"]
    )
    (lin,) = [p for p in (runs / "lin").iterdir() if p.is_dir()]
    r = runner.invoke(
        app, ["train", "--model", "vqvae-conv", "--set", f"model.quantizer.prior.vqvae={lin}", *base, "--name", "bad"]
    )
    assert r.exit_code == 2
    assert "holds 'linear-3'" in error_line(r) and "allowed: a VQ-VAE run" in error_line(r)
    assert not (runs / "bad").exists()
    # its codes as a file coded with the prior, and back to images
    coded, out = tmp_path / "c.npz", tmp_path / "png"
    r = runner.invoke(app, ["encode", str(folder), "split:test", "-o", str(coded), "--entropy"])
    assert r.exit_code == 0, r.output
    assert "entropy coded" in r.output and "PSNR" in r.output
    r = runner.invoke(app, ["decode", str(folder), str(coded), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert len(list(out.glob("*.png"))) == row["test_images"]
    r = runner.invoke(app, ["decode", str(vq_run), str(coded), "-o", str(tmp_path / "no")])
    assert r.exit_code == 2 and "decode with the run that encoded them" in error_line(r)


def test_index_code_files_with_the_prior_and_with_marginals_decode_bit_identical(vq_folder, tmp_path):
    from aelab.apply.codes import decode_codes, encode_images, load_codes, save_codes

    ds = tiny_dataset()
    images, names = ds.test.images[:40], [f"t{i}" for i in range(40)]
    torch.manual_seed(0)
    prior = build_model(prior_config(vq_folder), ds.shape).eval()
    plain = encode_images(prior, images, names)  # the grid as uint8: the reference
    save_codes(plain, tmp_path / "plain.npz")
    assert plain.indices and plain.codes.shape == (40, 7, 7) and plain.bytes_per_image == 49
    reference = decode_codes(prior, load_codes(tmp_path / "plain.npz"))
    coded = encode_images(prior, images, names, entropy=True, batch_size=16)  # streams cut as the decoder cuts
    save_codes(coded, tmp_path / "prior.npz")
    back = load_codes(tmp_path / "prior.npz")
    assert back.stream is not None and back.stream_bytes == coded.stream_bytes
    assert torch.equal(decode_codes(prior, back, batch_size=16), reference)
    assert torch.equal(back.codes, plain.codes)  # the indices, bit-identical
    assert coded.bytes_per_image == coded.stream_bytes / 40 < 49
    # the same grids with per-position marginals (no model needed to read them back)
    lone = build_model(ModelConfig(preset="vqvae-conv", quantizer={"codebook_size": 16})).eval()
    marg = encode_images(lone, images, names, entropy=True)
    assert marg.stream is None  # a VQ-VAE without a prior: per-position marginals, made when saved
    save_codes(marg, tmp_path / "marginals.npz")
    again = load_codes(tmp_path / "marginals.npz")
    assert torch.equal(again.codes, encode_images(lone, images, names).codes)
    assert again.stream_bytes == marg.stream_bytes > 0
    assert torch.equal(decode_codes(lone, again), decode_codes(lone, encode_images(lone, images, names)))


def test_prior_code_files_from_another_prior_or_truncated_are_refused(vq_folder, tmp_path):
    from aelab.apply.codes import decode_codes, encode_images, load_codes, save_codes

    ds = tiny_dataset()
    torch.manual_seed(0)
    prior = build_model(prior_config(vq_folder), ds.shape).eval()
    torch.manual_seed(1)
    other = build_model(prior_config(vq_folder), ds.shape).eval()  # another PixelCNN on the same VQ-VAE
    save_codes(encode_images(prior, ds.test.images[:8], list("abcdefgh"), entropy=True), tmp_path / "c.npz")
    with pytest.raises(
        AelabError, match=f"made by model {prior.fingerprint()} but this is model {other.fingerprint()}"
    ):
        decode_codes(other, load_codes(tmp_path / "c.npz"))
    with np.load(tmp_path / "c.npz") as data:
        arrays = dict(data)
    arrays["stream"] = arrays["stream"][:-4]
    np.savez(tmp_path / "cut.npz", **arrays)
    with pytest.raises(AelabError, match="does not decode to the indices it was made of|cannot be decoded"):
        decode_codes(prior, load_codes(tmp_path / "cut.npz"))
    arrays["stream"] = arrays["stream"][:-1]
    np.savez(tmp_path / "odd.npz", **arrays)
    with pytest.raises(AelabError, match="whole 32-bit words"):
        decode_codes(prior, load_codes(tmp_path / "odd.npz"))
