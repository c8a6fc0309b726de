"""Transform coding of codes: the KLT and its metric-weighted form, the decoder metric, the step search, the
stream, and the compression row it adds."""

import math

import numpy as np
import pytest
import torch

from aelab.data import ImageDataset, ImageSplit
from aelab.errors import AelabError
from aelab.evaluation.batches import encode_all
from aelab.evaluation.compression import TRANSFORM_STORAGE, compression, decoded_quality
from aelab.evaluation.entropy import FactorizedModel
from aelab.evaluation.rate_distortion import pca_coded
from aelab.evaluation.transform_coding import (
    TransformCode,
    coded_as_well_as_8_bit,
    decoder_metric,
    transform_coded,
)
from aelab.models import build_model


def correlated(n: int, seed: int = 0) -> torch.Tensor:
    """Codes (n, 2) with covariance [[2, 1], [1, 2]] and mean (3, -1): principal axes (1, 1) and (1, -1) / sqrt 2."""
    g = torch.Generator().manual_seed(seed)
    white = torch.randn(n, 2, generator=g, dtype=torch.float64)
    white = (white - white.mean(0)) @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(white.T))).T  # exactly white
    root = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64) / math.sqrt(2)
    scales = torch.tensor([math.sqrt(3.0), 1.0], dtype=torch.float64)
    return (white * scales @ root.T + torch.tensor([3.0, -1.0], dtype=torch.float64)).float()


def test_klt_axes_of_a_known_covariance():
    mean, basis, inverse = TransformCode.axes(correlated(2000))
    assert torch.allclose(mean, torch.tensor([3.0, -1.0]), atol=1e-5)
    first, second = basis[:, 0], basis[:, 1]  # the largest eigenvalue (3) first
    assert torch.allclose(first.abs(), torch.full((2,), 1 / math.sqrt(2)), atol=1e-5)
    assert float(first[0] * first[1]) > 0 and float(second[0] * second[1]) < 0
    assert torch.allclose(basis @ inverse, torch.eye(2), atol=1e-5)
    assert torch.allclose(inverse, basis.T, atol=1e-5)  # orthonormal without a metric


def test_metric_weighted_axes_measure_the_metric():
    codes = correlated(500)
    metric = torch.tensor([[4.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    _, basis, inverse = TransformCode.axes(codes, metric)
    error = torch.tensor([[0.3, -0.2], [1.0, 2.0]])
    by_metric = torch.einsum("ni,ij,nj->n", error.double(), metric, error.double()).float()
    assert torch.allclose((error @ basis).pow(2).sum(1), by_metric, atol=1e-5)  # 0.36 + 0.04 and 4 + 4
    assert torch.allclose(by_metric, torch.tensor([0.4, 8.0]))
    assert torch.allclose(basis @ inverse, torch.eye(2), atol=1e-5)
    with pytest.raises(AelabError, match="at least 2 training codes; got 1"):
        TransformCode.axes(codes[:1])


def test_levels_round_trip_within_half_a_step():
    codes = correlated(1000)
    axes = TransformCode.axes(codes)
    code = TransformCode.fit(codes, 0.25, axes)
    levels = code.levels(codes)
    assert levels.dtype == np.int32 and levels.min() == 0 and (levels.max(0) == code.span.numpy() - 1).all()
    error = (code.codes(levels) - codes) @ axes[1]  # on the axes: a rounding error each
    assert float(error.abs().max()) <= 0.125 + 1e-5
    far = code.levels(torch.tensor([[1e6, 1e6]]))  # clamped into the training span
    assert (far[0] <= code.span.numpy() - 1).all()


def test_entropy_model_counts_only_inside_each_span():
    code = TransformCode(torch.zeros(2), torch.eye(2), torch.eye(2), 1.0, torch.zeros(2, dtype=torch.long),
                         torch.tensor([3, 1]))  # fmt: skip
    model = code.entropy_model(np.array([[0, 0], [2, 0], [2, 0]], dtype=np.int32))
    assert model.counts.tolist() == [[2, 1, 3], [4, 0, 0]]  # add-one inside the span, nothing outside
    symbols = np.array([[1, 0], [2, 0], [0, 0]], dtype=np.int32)
    assert np.array_equal(model.decode(model.encode(symbols), 3), symbols)
    assert model.ideal_bits(symbols) == pytest.approx(-math.log2(1 / 6 * 3 / 6 * 2 / 6))  # the second axis: 0 bits


def test_decoder_metric_of_a_linear_decoder_is_its_gram_matrix():
    a = torch.tensor([[1.0, 2.0], [0.0, 1.0], [3.0, 0.0]])  # decode z -> z @ a.T: 3 outputs from 2 code units
    codes = correlated(50)
    metric = decoder_metric(lambda z: z @ a.T, codes)
    assert torch.allclose(metric, (a.T @ a).double() / 3, atol=1e-4)  # [[10, 2], [2, 5]] / 3


def test_step_search_finds_the_largest_step_that_is_good_enough():
    codes = torch.randn(4000, 3, generator=torch.Generator().manual_seed(1)) * torch.tensor([4.0, 1.0, 0.5])
    held, test = codes[:2000], codes[2000:]
    target = 0.01  # the mean squared error of a uniform quantizer is about step^2 / 12: step about 0.346

    def good_enough(decodable: torch.Tensor) -> bool:
        return float((decodable - held).pow(2).mean() * 3) <= target * 3

    sizes, decoded = transform_coded(codes, test, held, good_enough)
    assert sizes["step"] == pytest.approx(math.sqrt(12 * target), rel=0.05)
    code = TransformCode.fit(codes, sizes["step"], TransformCode.axes(codes))
    assert good_enough(code.codes(code.levels(held)))
    coarser = TransformCode.fit(codes, sizes["step"] * 1.01, TransformCode.axes(codes))
    assert not good_enough(coarser.codes(coarser.levels(held)))
    assert float((decoded - test).pow(2).mean()) == pytest.approx(target, rel=0.1)
    assert sizes["ideal_bytes_per_image"] <= sizes["bytes_per_image"] <= sizes["ideal_bytes_per_image"] + 0.01
    with pytest.raises(AelabError, match="even the finest step does not reach the target quality"):
        transform_coded(codes, test, held, lambda decodable: False)


def test_no_row_when_no_step_matches_the_8_bit_quality():
    codes = correlated(100)
    calls = iter([1.0])  # the 8-bit levels' quality, then every transform coding does worse

    def quality(decodable: torch.Tensor) -> float:
        return next(calls, 0.0)

    assert coded_as_well_as_8_bit(codes, codes, codes, quality, lambda z: z) is None


def test_compression_adds_a_transform_row_at_the_8_bit_quality():
    torch.manual_seed(0)
    model = build_model("conv-64").eval()
    imgs = torch.randint(0, 256, (60, 1, 28, 28), dtype=torch.uint8)
    labels = torch.zeros(60, dtype=torch.long)
    ds = ImageDataset(
        "t", ImageSplit(imgs[:40], labels[:40]), ImageSplit(imgs[40:50], labels[40:50]),
        ImageSplit(imgs[50:], labels[50:]),
    )  # fmt: skip
    rows = compression(model, ds)
    eight_bit = next(r for r in rows if r["storage"].startswith("uint8, entropy coded"))
    row = next(r for r in rows if r["storage"] == TRANSFORM_STORAGE)
    assert (row["code_bytes"] * 10) % 4 == 0  # whole 32-bit words over the 10 test images
    assert row["ideal_bytes"] <= row["code_bytes"] <= row["ideal_bytes"] + 0.4
    assert row["step"] > 0 and 0 < row["ssim"] <= 1 and row["psnr"] == pytest.approx(eight_bit["psnr"], abs=0.1)
    fit = encode_all(model, ds.train, ds.train.labels)
    levels = FactorizedModel.fit(fit)  # the target: the validation images' PSNR from 8-bit levels
    held = encode_all(model, ds.val, ds.val.labels)
    assert row["held_quality"] == pytest.approx(decoded_quality(model, ds.val, levels.dequantize(levels.symbols(held))))


def test_pca_rows_use_the_same_coders():
    g = torch.Generator().manual_seed(0)
    base = torch.rand(4, 1, 8, 8, generator=g)
    weights = torch.rand(300, 4, generator=g)
    imgs = (torch.einsum("nk,kchw->nchw", weights, base) / 4 * 255).round().to(torch.uint8)
    split = ImageSplit(imgs, torch.zeros(300, dtype=torch.long))
    row = pca_coded(split.head(200), split.take(torch.arange(200, 250)), split.take(torch.arange(250, 300)), 4)
    assert row["storage"].startswith("PCA (4 components), ")
    assert "entropy coded" in row["storage"] and row["psnr"] > 30 and row["code_bytes"] < 4
