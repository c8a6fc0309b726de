"""The in-memory form of a code file (:class:`CodeFile`); :mod:`aelab.apply.codes` reads and writes it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aelab.evaluation.quantization import dequantize

FORMAT = "aelab-codes-1"


@dataclass
class CodeFile:
    """Quantized codes of N images and what is needed to decode them."""

    codes: torch.Tensor
    """``(N, *code_shape)``: uint8 (8 bits), int32 holding uint16 values (16 bits) or float32 (32 bits)."""
    low: torch.Tensor
    """float32 ``(D,)``."""
    scale: torch.Tensor
    """float32 ``(D,)``."""
    bits: int
    names: list[str]
    model: str
    """Fingerprint of the model that made the codes (:meth:`AutoEncoder.fingerprint`)."""
    input_shape: tuple[int, int, int]
    entropy: bool = False
    """The levels are stored as an entropy-coded stream (8 bits only)."""
    stream_bytes: int | None = None
    """Bytes of that stream, once written or read."""
    indices: bool = False
    """``codes`` is a grid of codebook indices ``(N, h, w)`` int64 (a VQ-VAE); ``low``/``scale`` are empty."""
    shape_per_image: tuple[int, ...] | None = None
    """The code shape of a prior-coded file (its ``codes`` are empty until decoded)."""
    checksum: int | None = None
    """CRC-32 of a prior-coded file's indices (as uint16), checked after decoding."""
    stream: bytes | None = None
    """Index grids coded with the model's prior: the stream, decoded by :func:`decode_codes` with that model
    (``codes`` is then empty until it is)."""

    @property
    def bytes_per_image(self) -> float:
        """Bytes of one image's code: the stream's share when entropy coded, else the levels' (the 2 x D float32
        of ``low``/``scale`` and, entropy coded, the 256 x D counts are stored once per file)."""
        if not len(self.codes):
            return 0.0
        if self.entropy and self.stream_bytes is not None:
            return self.stream_bytes / len(self.codes)
        return self.codes[0].numel() * self.bits / 8

    @property
    def code_shape(self) -> tuple[int, ...]:
        """The shape of one image's code as stored: ``code_shape``, or ``(h, w)`` for index grids."""
        return self.shape_per_image if self.shape_per_image is not None else tuple(self.codes.shape[1:])

    def dequantized(self) -> torch.Tensor:
        """float32 codes ``(N, *code_shape)`` (within ``scale / 2`` of the encoder's output)."""
        flat = dequantize(self.codes.flatten(1), self.low, self.scale)
        return flat.view(self.codes.shape)


def shape3(values) -> tuple[int, int, int]:
    """``(C, H, W)`` as ints from a stored array."""
    c, h, w = (int(v) for v in values)
    return c, h, w
