"""Transform coding of a code: the principal axes of the training codes (the Karhunen-Loève transform), one
uniform quantizer step for every axis, and a factorized entropy model of the levels driving a range coder.

This is classical transform coding (Goyal, "Theoretical foundations of transform coding", IEEE Signal Processing
Magazine 18(5), 2001) put after an autoencoder's encoder: rotating the code onto decorrelated axes and giving every
axis the same step spends the bits where the variance is, so axes with little variance cost almost nothing. The
entropy model is the factorized one of :mod:`aelab.evaluation.entropy` (Ballé et al., ICLR 2017), fitted on the
training codes' levels. The step is not a free choice: :func:`transform_coded` picks the largest one whose decoded
held-out images are as good as a target (the 8-bit code's quality), so the rate is compared at the same quality.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from aelab.errors import AelabError
from aelab.evaluation.entropy import FactorizedModel, range_coded

Axes = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""``(mean (D,), basis (D, D), inverse (D, D))``: :meth:`TransformCode.axes`."""

JACOBIAN_CODES = 100
"""Codes whose Jacobians :func:`decoder_metric` holds at once (100 x 784 x 64 float64 values: 40 MB)."""
STEP_SEARCHES = 16
"""Halvings of the interval in :func:`transform_coded`'s search for the step (a relative precision of ~2^-13)."""


@dataclass
class TransformCode:
    """Codes ``(N, D)`` to integer levels and back: ``level = round(((z - mean) @ basis) / step) - low``, and
    ``z = ((level + low) * step) @ inverse + mean``.

    Attributes:
        mean: float32 ``(D,)``: the training codes' mean.
        basis: float32 ``(D, D)``: the analysis transform (:meth:`axes`); its columns are the axes.
        inverse: float32 ``(D, D)``: ``basis``'s inverse (its transpose when the basis is orthonormal).
        step: the quantizer step on every axis.
        low: int64 ``(D,)``: each axis's lowest training level (level 0 of the stored symbols).
        span: int64 ``(D,)``: the number of levels each axis takes in the training codes (test levels are clamped
            into them).
    """

    mean: torch.Tensor
    basis: torch.Tensor
    inverse: torch.Tensor
    step: float
    low: torch.Tensor
    span: torch.Tensor

    @staticmethod
    def axes(train_codes: torch.Tensor, metric: torch.Tensor | None = None) -> Axes:
        """The transform of training codes float ``(N, D)``, N >= 2: ``(mean (D,), basis (D, D), inverse (D, D))``.

        Without a metric, the basis is the eigenvectors of the codes' covariance, largest eigenvalue first (the
        KLT; orthonormal). With ``metric`` ``G`` (float ``(D, D)``, symmetric positive semi-definite: the
        distortion of a code error ``e`` is ``e^T G e``, e.g. a decoder's mean ``J^T J``), the codes are first
        mapped by ``G^(1/2)``, where that distortion is the squared distance, and the KLT is taken there: the
        weighted-MSE transform coder (Gersho and Gray, "Vector Quantization and Signal Compression", 1992).

        Raises:
            AelabError: fewer than 2 training codes.
        """
        if len(train_codes) < 2:
            raise AelabError(f"transform coding needs at least 2 training codes; got {len(train_codes)}")
        z = train_codes.double()
        d = z.shape[1]
        mean = z.mean(0)
        root, root_inverse = torch.eye(d, dtype=torch.float64), torch.eye(d, dtype=torch.float64)
        if metric is not None:
            values, vectors = torch.linalg.eigh(metric.double())
            values = values.clamp_min(float(values.max().clamp_min(1e-30)) * 1e-9)  # a direction the decoder ignores
            root = vectors @ torch.diag(values.sqrt()) @ vectors.T
            root_inverse = vectors @ torch.diag(values.rsqrt()) @ vectors.T
        _, axes = torch.linalg.eigh(torch.cov(((z - mean) @ root).T).reshape(d, d))
        axes = axes.flip(1)
        return mean.float(), (root @ axes).float(), (axes.T @ root_inverse).float()

    @classmethod
    def fit(cls, train_codes: torch.Tensor, step: float, axes: Axes) -> TransformCode:
        """The levels' range of ``train_codes`` ``(N, D)`` on ``axes`` (:meth:`axes`) at quantizer ``step`` (> 0)."""
        mean, basis, inverse = axes
        q = torch.round(((train_codes.float() - mean) @ basis) / step).long()
        low = q.min(0).values
        return cls(mean, basis, inverse, step, low, q.max(0).values - low + 1)

    def levels(self, codes: torch.Tensor) -> np.ndarray:
        """int32 ``(N, D)`` levels of float codes ``(N, D)``, each in ``0 .. span - 1``."""
        q = torch.round(((codes.float() - self.mean) @ self.basis) / self.step).long() - self.low
        return torch.minimum(q.clamp_min(0), self.span - 1).numpy().astype(np.int32)

    def codes(self, levels: np.ndarray) -> torch.Tensor:
        """float32 codes ``(N, D)`` of levels ``(N, D)``: the axes' values mapped back."""
        y = (torch.from_numpy(levels.astype(np.int64)) + self.low).float() * self.step
        return y @ self.inverse + self.mean

    def entropy_model(self, train_levels: np.ndarray) -> FactorizedModel:
        """The factorized model of training levels ``(N, D)``: each axis's histogram over its own span, add-one
        smoothed there (levels outside an axis's span never occur: test levels are clamped into it)."""
        width = max(int(self.span.max()), 2)  # the range coder needs two entries even where one level occurs
        counts = (np.arange(width)[None, :] < self.span.numpy()[:, None]).astype(np.int64)  # add one inside spans
        np.add.at(counts, (np.broadcast_to(np.arange(train_levels.shape[1]), train_levels.shape), train_levels), 1)
        zeros = torch.zeros(train_levels.shape[1])
        return FactorizedModel(zeros, zeros, counts)


def decoder_metric(decode: Callable[[torch.Tensor], torch.Tensor], codes: torch.Tensor, budget: int = 64_000):
    """``G = mean over codes of J^T J / P`` float64 ``(D, D)``: how a small code error ``e`` shows in the decoded
    output, whose mean squared error per value is about ``e^T G e`` (J: the ``(P, D)`` Jacobian of ``decode`` at
    each code, by central differences with a step of 1% of the codes' standard deviation).

    Args:
        decode: codes float ``(n, D)`` -> outputs float ``(n, P)`` (images flattened; clamped to the data range as
            they are measured).
        codes: float ``(N, D)``; the first ``budget // D`` (at least 8) are used, ``2 * D`` decodes of them.
    """
    d = codes.shape[1]
    z = codes[: max(budget // max(d, 1), 8)].float()
    h = float(z.std().clamp_min(1e-6)) * 0.01
    metric = torch.zeros(d, d, dtype=torch.float64)
    values = 0
    for part in z.split(JACOBIAN_CODES):  # the (n, P, D) Jacobians a few codes at a time: bounded memory
        columns = []
        for unit in range(d):
            shift = torch.zeros_like(part)
            shift[:, unit] = h
            columns.append(((decode(part + shift) - decode(part - shift)) / (2 * h)).double())
        jacobians = torch.stack(columns, -1)  # (n, P, D)
        metric += torch.einsum("npi,npj->ij", jacobians, jacobians)
        values += jacobians.shape[0] * jacobians.shape[1]
    return metric / max(values, 1)


def transform_coded(
    train_codes: torch.Tensor,
    test_codes: torch.Tensor,
    held_codes: torch.Tensor,
    good_enough: Callable[[torch.Tensor], bool],
    metric: torch.Tensor | None = None,
) -> tuple[dict, torch.Tensor]:
    """Transform code ``test_codes`` ``(N, D)`` at the largest step whose held-out codes still decode well enough.

    The axes (:meth:`TransformCode.axes`, weighted by ``metric`` when given) and the entropy model are fitted on
    ``train_codes`` ``(M, D)``. The step is searched (bisection in
    log step, :data:`STEP_SEARCHES` halvings, between 1/4096 and 4 times the largest axis's standard deviation) on
    ``held_codes`` ``(K, D)``: ``good_enough(decodable held codes (K, D))`` says whether images decoded from them
    reach the target quality; held-out data (a validation split), never the test codes, chooses it.

    Returns:
        ``({bytes_per_image, ideal_bytes_per_image, step}, the decoded test codes (N, D))`` of a real range-coded
        stream, decoded again and checked.

    Raises:
        AelabError: fewer than 2 training codes; no step reaches the target (not even the smallest); a coder fault.
    """
    axes = TransformCode.axes(train_codes, metric)
    spread = float(((train_codes.float() - axes[0]) @ axes[1]).std(0).max().clamp_min(1e-12))

    def passes(step: float) -> bool:
        code = TransformCode.fit(train_codes, step, axes)
        return good_enough(code.codes(code.levels(held_codes)))

    fine, coarse = spread / 4096, spread * 4
    if not passes(fine):
        raise AelabError("transform coding: even the finest step does not reach the target quality")
    if passes(coarse):
        fine = coarse
    else:
        for _ in range(STEP_SEARCHES):
            middle = (fine * coarse) ** 0.5
            fine, coarse = (middle, coarse) if passes(middle) else (fine, middle)
    code = TransformCode.fit(train_codes, fine, axes)
    model = code.entropy_model(code.levels(train_codes))
    symbols = code.levels(test_codes)
    sizes = range_coded(model, symbols, "transform levels")
    return {**sizes, "step": fine}, code.codes(symbols)


def coded_as_well_as_8_bit(
    fit_codes: torch.Tensor,
    held_codes: torch.Tensor,
    test_codes: torch.Tensor,
    held_quality: Callable[[torch.Tensor], float],
    decode: Callable[[torch.Tensor], torch.Tensor],
    higher_is_better: bool = True,
) -> tuple[dict, torch.Tensor] | None:
    """Transform code ``test_codes`` ``(N, D)`` as well as 8-bit levels code the held-out codes: the target is
    ``held_quality`` of ``held_codes`` ``(K, D)`` stored as the factorized model's 8-bit levels
    (:class:`aelab.evaluation.entropy.FactorizedModel` fitted on ``fit_codes`` ``(M, D)``), the axes are weighted
    by ``decode``'s :func:`decoder_metric`, and :func:`transform_coded` picks the step.

    Args:
        held_quality: held codes ``(K, D)`` -> the quality of the outputs decoded from them (PSNR in dB; or a
            squared error with ``higher_is_better`` False).
        decode: as in :func:`decoder_metric`.

    Returns:
        ``({bytes_per_image, ideal_bytes_per_image, step, held_quality}, decoded test codes (N, D))``, or None when
        no step reaches the 8-bit levels' quality.
    """
    eight_bit = FactorizedModel.fit(fit_codes)
    target = held_quality(eight_bit.dequantize(eight_bit.symbols(held_codes)))

    def good_enough(held_decodable: torch.Tensor) -> bool:
        quality = held_quality(held_decodable)
        return quality >= target if higher_is_better else quality <= target

    try:
        sizes, decoded = transform_coded(
            fit_codes, test_codes, held_codes, good_enough, decoder_metric(decode, fit_codes)
        )
    except AelabError:
        return None
    return {**sizes, "held_quality": target}, decoded
