"""Entropy coding of a code: a factorized model and real bitstreams.

The code of each image is quantized to 8 bits per unit with the training split's range per unit
(:func:`aelab.evaluation.quantization.quantize`; test values outside it are clamped). The factorized model gives
each code unit its own categorical distribution over the 256 levels: the histogram of the training split's
quantized codes, add-one smoothed, so every level can be coded. This is the factorized prior of Ballé et al.,
"End-to-end Optimized Image Compression", ICLR 2017, fitted after training instead of learned with the model.
The bitstream is written by the range coder of ``constriction`` (Bamler, 2022); its length is the rate.

A VQ-VAE's index grid is coded with per-position marginals (:func:`entropy_coded_indices`) or, with a model of its
own that gives each index's probability given the indices before it (a PixelCNN prior), autoregressively
(:func:`encode_autoregressive`, :func:`decode_autoregressive`): position by position, the decoder re-running the
model on the grid decoded so far (h * w passes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from aelab.errors import AelabError
from aelab.evaluation.quantization import dequantize, quantize

LEVELS = 256


@dataclass
class FactorizedModel:
    """One categorical distribution per code unit over its 8-bit levels.

    Attributes:
        low: float32 ``(D,)``: each unit's lowest training value (level 0).
        scale: float32 ``(D,)``: the value of one level step.
        counts: int64 ``(D, L)``: how often each unit took each of its L levels (256 for 8-bit codes, K for a
            VQ-VAE's indices) in the fit, plus one (add-one smoothing).
    """

    low: torch.Tensor
    scale: torch.Tensor
    counts: np.ndarray

    @property
    def probabilities(self) -> np.ndarray:
        """float64 ``(D, L)``: the counts normalized per unit (each row sums to 1, every entry > 0)."""
        counts = self.counts.astype(np.float64)
        return counts / counts.sum(1, keepdims=True)

    @classmethod
    def fit(cls, train_codes: torch.Tensor) -> FactorizedModel:
        """Fit on the training split's codes, float ``(N, D)``.

        Raises:
            AelabError: no training codes.
        """
        if len(train_codes) == 0:
            raise AelabError("the factorized entropy model needs training codes; the training split is empty")
        q, low, scale = quantize(train_codes.float(), 8)
        return cls.of_levels(q.numpy(), low, scale)

    @classmethod
    def of_levels(
        cls, levels: np.ndarray, low: torch.Tensor, scale: torch.Tensor, n_levels: int = LEVELS
    ) -> FactorizedModel:
        """The model of ``levels`` ``(N, D)`` in ``0..n_levels-1``: 8-bit levels quantized with ``low`` and
        ``scale`` ``(D,)``, or a VQ-VAE's index grids flattened (``low`` and ``scale`` then unused)."""
        symbols = levels.astype(np.int64)
        d = symbols.shape[1]
        counts = np.ones((d, n_levels), dtype=np.int64)  # add-one smoothing
        np.add.at(counts, (np.broadcast_to(np.arange(d), symbols.shape), symbols), 1)
        return cls(low, scale, counts)

    def symbols(self, codes: torch.Tensor) -> np.ndarray:
        """int32 ``(N, D)`` levels of float codes ``(N, D)`` (clamped to the training range)."""
        q = ((codes.float() - self.low) / self.scale).round().clamp_(0, LEVELS - 1)
        return q.numpy().astype(np.int32)

    def dequantize(self, symbols: np.ndarray) -> torch.Tensor:
        """float32 codes ``(N, D)`` of levels ``(N, D)``."""
        return dequantize(torch.from_numpy(symbols.astype(np.int64)), self.low, self.scale)

    def ideal_bits(self, symbols: np.ndarray) -> float:
        """The model's information content of ``symbols`` ``(N, D)`` in bits: the rate an ideal coder reaches."""
        p = self.probabilities[np.arange(symbols.shape[1]), symbols]  # (N, D)
        return float(-np.log2(p).sum())

    def encode(self, symbols: np.ndarray) -> bytes:
        """A range-coded bitstream of ``symbols`` int32 ``(N, D)``, unit by unit (each unit's N levels with its
        one categorical model); its length is the rate. N is not stored."""
        import constriction

        encoder = constriction.stream.queue.RangeEncoder()
        for unit, probabilities in enumerate(self.probabilities):
            column = np.ascontiguousarray(symbols[:, unit], dtype=np.int32)
            encoder.encode(column, constriction.stream.model.Categorical(probabilities, perfect=False))
        return encoder.get_compressed().tobytes()

    def decode(self, data: bytes, n: int) -> np.ndarray:
        """The ``n`` x D levels back from :meth:`encode`'s bytes (exactly).

        Raises:
            AelabError: bytes that are not a whole number of 32-bit words, or that do not decode.
        """
        import constriction

        if len(data) % 4:
            raise AelabError(f"an entropy-coded stream is whole 32-bit words; got {len(data)} bytes (truncated?)")
        decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype=np.uint32).copy())
        try:
            columns = [
                decoder.decode(constriction.stream.model.Categorical(probabilities, perfect=False), n)
                for probabilities in self.probabilities
            ]
        except (ValueError, RuntimeError, AssertionError) as exc:
            raise AelabError(f"the entropy-coded stream cannot be decoded ({exc}); is it whole?") from None
        return np.stack(columns, 1).astype(np.int32) if columns else np.zeros((n, 0), np.int32)


def entropy_coded(train_codes: torch.Tensor, test_codes: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """Code ``test_codes`` ``(N, D)`` with the factorized model of ``train_codes``: ``({bytes_per_image,
    ideal_bytes_per_image}, the dequantized test codes (N, D) the decoder gets)``. The stream is decoded again
    and checked to give the same levels.

    Raises:
        AelabError: the decoded levels differ (a coder fault).
    """
    model = FactorizedModel.fit(train_codes)
    symbols = model.symbols(test_codes)
    return range_coded(model, symbols, "levels"), model.dequantize(symbols)


def range_coded(model: FactorizedModel, symbols: np.ndarray, what: str) -> dict:
    """Range-code ``symbols`` ``(N, D)``, decode the stream and check it: bytes per image, real and ideal.

    Raises:
        AelabError: the decoded ``what`` differ (a coder fault).
    """
    stream = model.encode(symbols)
    if not np.array_equal(model.decode(stream, len(symbols)), symbols):
        raise AelabError(f"the range coder did not give back the coded {what}")
    n = max(len(symbols), 1)
    return {"bytes_per_image": len(stream) / n, "ideal_bytes_per_image": model.ideal_bits(symbols) / 8 / n}


def entropy_coded_indices(train: torch.Tensor, test: torch.Tensor, levels: int) -> dict:
    """Code a VQ-VAE's test index grids ``(N, h, w)`` with per-position marginals of the training grids
    ``(M, h, w)`` (one categorical over the ``levels`` = K codebook entries per grid position, add-one smoothed):
    ``{bytes_per_image, ideal_bytes_per_image}`` of a real range-coded stream, decoded again and checked.

    Raises:
        AelabError: no training grids, or the decoded indices differ (a coder fault).
    """
    if len(train) == 0:
        raise AelabError("the index marginals need training codes; the training split is empty")
    zeros = torch.zeros(train[0].numel())
    model = FactorizedModel.of_levels(train.flatten(1).numpy(), zeros, zeros, levels)
    return range_coded(model, test.flatten(1).numpy().astype(np.int32), "indices")


Conditionals = Callable[[torch.Tensor], torch.Tensor]
"""Index grids ``(N, h, w)`` -> float64 ``(N, h*w, K)``: each index's probability given those before it (raster
order); the row of a position may not depend on the indices at and after it."""


def encode_autoregressive(grids: torch.Tensor, conditionals: Conditionals) -> bytes:
    """A range-coded stream of index grids ``(N, h, w)`` int64, position by position, each index with its own
    categorical from ``conditionals`` of the whole grids (one pass). N and the grid shape are not stored."""
    import constriction

    symbols = grids.flatten(1).numpy().astype(np.int32)
    probabilities = conditionals(grids).numpy()
    encoder = constriction.stream.queue.RangeEncoder()
    family = constriction.stream.model.Categorical(perfect=False)
    for pos in range(symbols.shape[1]):
        encoder.encode(np.ascontiguousarray(symbols[:, pos]), family, np.ascontiguousarray(probabilities[:, pos]))
    return encoder.get_compressed().tobytes()


def decode_autoregressive(data: bytes, n: int, shape: tuple[int, int], conditionals: Conditionals) -> torch.Tensor:
    """The ``n`` grids ``(n, h, w)`` int64 back from :func:`encode_autoregressive`'s bytes: position by position,
    with ``conditionals`` of the grids decoded so far (later positions 0).

    Raises:
        AelabError: bytes that are not a whole number of 32-bit words, or that do not decode.
    """
    import constriction

    if len(data) % 4:
        raise AelabError(f"an entropy-coded stream is whole 32-bit words; got {len(data)} bytes (truncated?)")
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype=np.uint32).copy())
    family = constriction.stream.model.Categorical(perfect=False)
    grids = torch.zeros(n, shape[0] * shape[1], dtype=torch.long)
    try:
        for pos in range(grids.shape[1]):
            p = np.ascontiguousarray(conditionals(grids.view(n, *shape))[:, pos].numpy())
            grids[:, pos] = torch.from_numpy(decoder.decode(family, p).astype(np.int64))
    except (ValueError, RuntimeError, AssertionError) as exc:
        raise AelabError(f"the entropy-coded stream cannot be decoded ({exc}); is it whole?") from None
    return grids.view(n, *shape)


def entropy_coded_autoregressive(
    grids: torch.Tensor, conditionals: Conditionals, chunk: int = 1000, checked: int = 1000
) -> dict:
    """Code index grids ``(N, h, w)`` with the model's own ``conditionals``, in streams of ``chunk`` grids:
    ``{bytes_per_image, ideal_bytes_per_image, checked_images}``. The first ``checked`` grids' streams are
    decoded again (h * w model passes per stream) and checked to give the same indices.

    Raises:
        AelabError: the decoded indices differ (a coder fault, or a model whose rows see later positions).
    """
    total, ideal, done = 0, 0.0, 0
    for start in range(0, len(grids), chunk):
        part = grids[start : start + chunk]
        stream = encode_autoregressive(part, conditionals)
        total += len(stream)
        p = conditionals(part).gather(2, part.flatten(1).unsqueeze(2))
        ideal += float(-torch.log2(p).sum())
        if start < checked:
            if not torch.equal(
                decode_autoregressive(stream, len(part), (part.shape[1], part.shape[2]), conditionals), part
            ):
                raise AelabError("the range decoder did not give back the coded indices")
            done += len(part)
    n = max(len(grids), 1)
    return {"bytes_per_image": total / n, "ideal_bytes_per_image": ideal / 8 / n, "checked_images": done}
