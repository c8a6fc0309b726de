"""RaPP's SAP and NAP scores (Kim et al., ICLR 2020): the pathway along the encoder, values by hand, NAP's
normalization, and the scores in the one-class runs and in ``aelab score``."""

import pytest
import torch
from torch import nn

from aelab.data import ImageDataset, ImageSplit
from aelab.errors import ConfigError
from aelab.evaluation.anomaly import one_class_metrics, scorer, separate
from aelab.evaluation.rapp import NAP, pathway_differences, sap_scores
from aelab.models import build_model
from aelab.models.activations import hidden_layer_outputs
from aelab.models.autoencoder import AutoEncoder


def tiny() -> AutoEncoder:
    """Images (1, 1, 2) -> identity layer, ReLU -> code = the sum; decoder: half the code to each pixel."""
    first, code, back = nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False), nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        first.weight.copy_(torch.eye(2))
        code.weight.copy_(torch.tensor([[1.0, 1.0]]))
        back.weight.copy_(torch.tensor([[0.5], [0.5]]))
    encoder = nn.Sequential(nn.Flatten(1), first, nn.ReLU(inplace=True), code)
    return AutoEncoder(encoder, nn.Sequential(back, nn.Unflatten(1, (1, 1, 2))), (1, 1, 2), (1,)).eval()


IMAGES = torch.tensor([[255, 0], [0, 255], [255, 255], [0, 0], [255, 51]], dtype=torch.uint8).view(5, 1, 1, 2)


def test_the_pathway_of_the_presets():
    widths = [a.shape[1] for a in build_model("conv-64").hidden_activations(torch.rand(3, 1, 28, 28))]
    assert widths == [784, 16 * 14 * 14, 32 * 7 * 7, 64]  # the input, the two ReLUs, the code
    widths = [a.shape[1] for a in build_model("linear-3").hidden_activations(torch.rand(3, 1, 28, 28))]
    assert widths == [784, 128, 64, 12, 3]
    assert hidden_layer_outputs(nn.Linear(2, 2), torch.zeros(1, 2)) == []  # not sequential: no hidden path


def test_pathway_copies_survive_in_place_layers():
    model = tiny()
    x = torch.tensor([[[[-1.0, 2.0]]]])
    assert hidden_layer_outputs(model.encoder, x)[0].tolist() == [[0.0, 2.0]]


def test_sap_by_hand():
    # x = (1, 0): hidden (1, 0), code 1; x_hat = (.5, .5): hidden (.5, .5), code 1 -> d = (.5, -.5, .5, -.5, 0)
    # x = (1, .2): hidden (1, .2), code 1.2; x_hat = (.6, .6): hidden (.6, .6), code 1.2 -> 4 * .4^2 = .64
    d = torch.cat(list(pathway_differences(tiny(), IMAGES)))
    assert torch.allclose(d[0], torch.tensor([0.5, -0.5, 0.5, -0.5, 0.0]))
    assert torch.allclose(sap_scores(tiny(), IMAGES), torch.tensor([1.0, 1.0, 0.0, 0.0, 0.64], dtype=torch.float64))


def test_nap_by_hand_and_its_normalization():
    model = tiny()
    projection = torch.zeros(5, 2, dtype=torch.float64)
    projection[0, 0], projection[3, 1] = 2.0, 1.0
    nap = NAP(torch.zeros(5, dtype=torch.float64), projection)
    assert torch.allclose(nap.scores(model, IMAGES[:1]), torch.tensor([(0.5 * 2) ** 2 + 0.5**2], dtype=torch.float64))
    # image 4: d = .4 (1, -1, 1, -1, 0): NAP (.4 * 2)^2 + .4^2 = .8, SAP 4 * .4^2 = .64; NAP x SAP = .512
    both = nap.nap_sap_scores(model, IMAGES[[0, 4]])
    assert torch.allclose(both, torch.tensor([1.25 * 1.0, 0.8 * 0.64], dtype=torch.float64))
    assert torch.allclose(
        scorer(model, "nap_sap", IMAGES)(IMAGES), NAP.fit(model, IMAGES).nap_sap_scores(model, IMAGES)
    )
    fitted = NAP.fit(model, IMAGES)  # on its own fitting images the scores sum to the rank kept, shrunk
    assert fitted.projection.shape == (5, 1)  # every difference is a multiple of (1, -1, 1, -1, 0): rank 1
    # one direction, s_1 = s: the sum of squares s^2 divided by s^2 + (lambda s)^2 = 1 / (1 + lambda^2)
    assert float(fitted.scores(model, IMAGES).sum()) == pytest.approx(1 / (1 + 1e-6), rel=1e-12)
    with pytest.raises(ConfigError, match="NAP needs at least 2 training images to normalize by; got 1"):
        NAP.fit(model, IMAGES[:1])


def test_nap_shrinkage_by_hand(monkeypatch):
    # d of the five images: multiples t (1, -1, 1, -1, 0) with t = .5, -.5, 0, 0, .4 (code differences are 0)
    model = tiny()
    t = torch.tensor([0.5, -0.5, 0.0, 0.0, 0.4], dtype=torch.float64)
    s = float((t - t.mean()).pow(2).sum().sqrt()) * 2.0  # the direction (1, -1, 1, -1, 0) has norm 2
    monkeypatch.setattr("aelab.evaluation.rapp.NAP_SHRINKAGE", 0.5)
    fitted = NAP.fit(model, IMAGES)
    assert float(fitted.projection.abs().sum()) == pytest.approx(4 * 0.5 / (s * (1 + 0.25) ** 0.5))
    assert float(fitted.scores(model, IMAGES).sum()) == pytest.approx(0.8)  # 1 / (1 + 0.5^2)
    monkeypatch.setattr("aelab.evaluation.rapp.NAP_SHRINKAGE", 0.0)  # RaPP's own 1 / s_i
    assert float(NAP.fit(model, IMAGES).scores(model, IMAGES).sum()) == pytest.approx(1.0)


def test_scorer_errors():
    with pytest.raises(ConfigError, match="--score: got 'psnr'; allowed: nap_sap, nap, sap, mse, ssim"):
        scorer(tiny(), "psnr")
    with pytest.raises(ConfigError, match="--score nap: needs the run's training images"):
        scorer(tiny(), "nap")


def test_the_analysis_offers_every_score_its_default_first():
    from typing import get_args

    from aelab.analyses.params import AnomalyParams
    from aelab.evaluation.anomaly import DEFAULT_SCORE, SCORE_KINDS

    field = AnomalyParams.model_fields["score"]
    assert get_args(field.annotation) == SCORE_KINDS
    assert field.default == DEFAULT_SCORE == SCORE_KINDS[0]


def test_one_class_metrics_report_every_score():
    model = tiny()
    labels = torch.tensor([0, 0, 1, 1, 0])
    test = ImageSplit(IMAGES, labels)
    normal = ImageSplit(IMAGES[[0, 1, 4]], torch.zeros(3, dtype=torch.long))
    dataset = ImageDataset("t", normal, normal, test)
    row = one_class_metrics(model, dataset, [0])
    assert set(row) == {"anomaly_score", "roc_auc", "pr_auc", "roc_auc_mse", "roc_auc_sap", "roc_auc_nap"}
    assert row["anomaly_score"] == "nap_sap"
    # SAP: normal 1, 1, .64; anomalies 0, 0: every pair ordered the wrong way
    assert row["roc_auc_sap"] == 0.0
    mse = separate(model, test, normal, [0], kind="mse")  # mse: normal .25, .25, .1; anomalies 0, 0
    assert row["roc_auc_mse"] == mse.roc_auc == 0.0
    assert row["roc_auc"] == separate(model, test, normal, [0], kind="nap_sap", train=normal).roc_auc
    assert row["roc_auc_nap"] == separate(model, test, normal, [0], kind="nap", train=normal).roc_auc


def test_one_class_table_beside_the_published_rows():
    from aelab.data.registry import CLASS_NAMES
    from aelab.evaluation.one_class_table import PUBLISHED, one_class_table

    names = CLASS_NAMES["fashion-mnist"]
    rows = [
        {
            "model": f"conv-16 normal_classes={i}",
            "normal": n,
            "anomaly_score": "nap_sap",
            "roc_auc": 0.9 + i / 100,
            "roc_auc_mse": 0.8,
            "roc_auc_sap": None,
        }
        for i, n in reversed(list(enumerate(names)))  # in any order: the table puts them in class order
    ]
    table, columns = one_class_table(rows, "fashion-mnist")
    assert [c.heading for c in columns] == ["method", *names, "mean", "source"]
    assert [r["method"] for r in table[:2]] == ["aelab conv-16, nap_sap (default)", "aelab conv-16, reconstruction MSE"]
    assert table[0]["c0"] == pytest.approx(90.0) and table[0]["c9"] == pytest.approx(99.0)
    assert table[0]["mean"] == pytest.approx(94.5) and table[1]["mean"] == pytest.approx(80.0)
    assert len(table) == 2 + len(PUBLISHED) and table[2]["c6"] == 83.3 and table[2]["mean"] == 93.5  # GEOM
    assert all(r["kind"] == "published" for r in table[2:])
    table, _ = one_class_table(rows[:2], "fashion-mnist")  # two classes: aelab's rows only
    assert [r["method"] for r in table] == ["aelab conv-16, nap_sap (default)", "aelab conv-16, reconstruction MSE"]
    assert one_class_table([{"model": "x", "test_mse": 0.1}], "digits") == ([], [])
