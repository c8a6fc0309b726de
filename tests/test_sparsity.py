import math

import pytest
import torch

from aelab.config import ConvLayerSpec, ConvSpec, MLPSpec, ModelConfig, SparsityConfig, TrainingConfig, parse_config
from aelab.errors import AelabError, ConfigError, ModelError
from aelab.evaluation import code_sparsity
from aelab.models import build_model
from aelab.models.sparsity import KLPenalty, L1Penalty, LifetimeTopK, TopK, kl_divergence


def test_topk_keeps_exactly_k_per_sample_and_the_largest():
    z = torch.tensor([[0.1, 5.0, -2.0, 3.0, 0.5], [4.0, 1.0, 2.0, -1.0, 9.0]])
    out = TopK(2)(z)
    assert out.tolist() == [[0.0, 5.0, 0.0, 3.0, 0.0], [4.0, 0.0, 0.0, 0.0, 9.0]]
    r = torch.randn(64, 10, 3, 3)
    assert ((TopK(7)(r).flatten(1) != 0).sum(1) == 7).all()


def test_topk_gradient_only_through_kept_units():
    z = torch.tensor([[0.1, 5.0, -2.0, 3.0]], requires_grad=True)
    (TopK(2)(z) * torch.tensor([[1.0, 2.0, 3.0, 4.0]])).sum().backward()
    assert z.grad.tolist() == [[0.0, 2.0, 0.0, 4.0]]


def test_lifetime_topk_per_unit_across_the_batch():
    z = torch.tensor([[1.0, 0.0], [3.0, -1.0], [2.0, 5.0], [0.5, 4.0]], requires_grad=True)
    op = LifetimeTopK(k=2).train()
    out = op(z)
    assert out.tolist() == [[0.0, 0.0], [3.0, 0.0], [2.0, 5.0], [0.0, 4.0]]
    out.sum().backward()
    assert z.grad.tolist() == [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    r = torch.randn(100, 16)
    assert ((LifetimeTopK(fraction=0.05).train()(r) != 0).sum(0) == 5).all()  # ceil(0.05 * 100)
    assert LifetimeTopK(fraction=0.05).batch_k(10) == 1


def test_lifetime_passes_through_in_eval():
    z = torch.randn(8, 4)
    assert torch.equal(LifetimeTopK(k=1).eval()(z), z)


def test_kl_formula_by_hand():
    rho, rho_hat = 0.05, torch.tensor([0.05, 0.5])
    kl = kl_divergence(rho, rho_hat)
    assert kl[0].item() == pytest.approx(0.0, abs=1e-7)
    assert kl[1].item() == pytest.approx(0.05 * math.log(0.1) + 0.95 * math.log(1.9), rel=1e-6)
    z = torch.tensor([[0.1, 0.4], [0.0 + 1e-3, 0.6]])  # unit means 0.0505, 0.5
    expected = 0.1 * (kl_divergence(0.05, torch.tensor(0.0505)) + kl_divergence(0.05, torch.tensor(0.5))) / 2
    assert KLPenalty(0.05, 0.1)(z).item() == pytest.approx(expected.item(), rel=1e-5)
    saturated = torch.ones(4, 3)
    assert torch.isfinite(KLPenalty(0.05, 1.0)(saturated))


def test_l1_penalty_by_hand():
    z = torch.tensor([[1.0, -2.0], [0.0, 3.0]])
    assert L1Penalty(0.5)(z).item() == pytest.approx(0.5 * 6 / 4)


def test_sparsity_config_strings_and_errors():
    assert parse_config(ModelConfig, {"preset": "fc-64", "sparsity": "topk:16"}).sparsity.k == 16
    life = parse_config(ModelConfig, {"preset": "fc-64", "sparsity": "lifetime:0.05"}).sparsity
    assert (life.k, life.fraction) == (None, 0.05)
    assert parse_config(ModelConfig, {"preset": "fc-64", "sparsity": "lifetime:10"}).sparsity.k == 10
    kl = parse_config(ModelConfig, {"preset": "fc-64", "sparsity": "kl:0.05:0.1"}).sparsity
    assert (kl.rho, kl.weight) == (0.05, 0.1)
    for bad, msg in [
        ("lifetime:1.5", "allowed: (0, 1]"),
        ("lifetime:0.0", "allowed: (0, 1]"),
        ("kl:1.2:0.1", "allowed: 0 < rho < 1"),
        ("kl:0:0.1", "allowed: 0 < rho < 1"),
        ("topk:0", "greater than or equal to 1"),
        ("dropout:1", "allowed kinds: topk, lifetime, l1, kl"),
    ]:
        with pytest.raises(ConfigError, match=msg.replace("(", "\\(").replace(")", "\\)").replace("]", "\\]")):
            parse_config(ModelConfig, {"preset": "fc-64", "sparsity": bad})


def test_k_larger_than_code_and_kl_without_sigmoid():
    with pytest.raises(ModelError, match="k is larger than the code of 'linear-3 topk:16' \\(3 units\\)"):
        build_model(ModelConfig(preset="linear-3", sparsity="topk:16"))
    with pytest.raises(ModelError, match="kl needs codes in \\(0, 1\\)"):
        build_model(ModelConfig(preset="fc-64", sparsity="kl:0.05:0.1"))
    m = build_model(ModelConfig(preset="fc-64", code_activation="sigmoid", sparsity="kl:0.05:0.1"))
    z = m.encode(torch.rand(3, 1, 28, 28))
    assert bool(((z > 0) & (z < 1)).all())


def test_topk_on_conv_code():
    spec = ConvSpec(layers=[ConvLayerSpec(channels=4, kernel=3, stride=2, padding=1)])
    m = build_model(ModelConfig(spec=spec, sparsity=SparsityConfig(kind="topk", k=5)), (1, 8, 8))
    z = m.encode(torch.rand(6, 1, 8, 8))
    assert z.shape == (6, 4, 4, 4) and ((z.flatten(1) != 0).sum(1) == 5).all()


def test_code_sparsity_stats():
    codes = torch.tensor([[0.0, 1.0, 0.0], [2.0, 3.0, 0.0]])
    s = code_sparsity(codes)
    assert (s["l0"], s["dead_units"], s["units"]) == (1.5, 1, 3)


def test_training_with_topk_and_penalties_runs(tmp_path):
    from aelab.config import DataConfig
    from aelab.data import load_dataset
    from aelab.training import train

    ds = load_dataset(DataConfig(name="digits"))
    torch.manual_seed(0)
    model = build_model(ModelConfig(spec=MLPSpec(hidden=[], code_size=16), sparsity="l1:0.01"), ds.shape)
    h = train(model, ds, TrainingConfig(epochs=3), progress=False).history
    assert all(p > 0 for p in h.train_penalty) and h.train_loss[-1] < h.train_loss[0]
    lifetime = build_model(ModelConfig(spec=MLPSpec(hidden=[], code_size=16), sparsity="lifetime:100"), ds.shape)
    with pytest.raises(AelabError, match="k is larger than the batch \\(64\\)"):
        train(lifetime, ds, TrainingConfig(epochs=1), progress=False)


def test_evaluate_reports_the_same_code_statistics_as_code_sparsity():
    from aelab.data import ImageSplit
    from aelab.evaluation import encode_all, evaluate

    torch.manual_seed(0)
    m = build_model(ModelConfig(spec=MLPSpec(hidden=[], code_size=12), sparsity="topk:3"), (1, 8, 8))
    split = ImageSplit(torch.randint(0, 256, (50, 1, 8, 8), dtype=torch.uint8), torch.zeros(50, dtype=torch.long))
    got = evaluate(m, split, batch_size=7)
    want = code_sparsity(encode_all(m, split.images))
    assert got["code_l0"] == pytest.approx(want["l0"]) == pytest.approx(3.0)
    assert got["dead_units"] == want["dead_units"]
    assert got["code_mean_abs"] == pytest.approx(want["mean_abs"], rel=1e-6)
