"""Code files of index grids (a VQ-VAE's code): the grids as uint8/uint16, or range coded with per-position
marginals (their counts in the file) or with the model's own prior (a PixelCNN; decoded only by that model,
position by position). :mod:`aelab.apply.codes` calls these for a model whose ``code_kind`` is ``indices``."""

from __future__ import annotations

import zlib

import numpy as np
import torch

from aelab.apply.code_file import CodeFile, shape3
from aelab.data.dataset import to_unit_float
from aelab.errors import AelabError
from aelab.evaluation.entropy import FactorizedModel, decode_autoregressive, encode_autoregressive


def encode_indices(model, images: torch.Tensor, names: list[str], batch_size: int, entropy: bool) -> CodeFile:
    """A VQ-VAE's index grids as a code file; entropy coded with the model's prior when it has one (the stream made
    here: only the model can code it), else with per-position marginals when saved. The grid is stored exactly
    (uint8, or uint16 for K > 256) whatever ``bits`` says: quantizing an index would change it."""
    model.eval()
    grids = torch.cat([model.indices(x).cpu() for _, x in _batches(model, images, batch_size)])
    empty = torch.zeros(0)
    width = 8 if model.index_levels <= 256 else 16
    codes = CodeFile(grids, empty, empty, width, list(names), model.fingerprint(), model.input_shape, entropy)
    codes.indices = True
    if entropy and model.index_conditionals(grids[:1]) is not None:
        codes.stream = encode_autoregressive(grids, _chunked(model.index_conditionals, batch_size))
        codes.stream_bytes = len(codes.stream)
        codes.checksum = zlib.crc32(grids.numpy().astype(np.uint16).tobytes())
    return codes


def _batches(model, images: torch.Tensor, batch_size: int):
    for i in range(0, len(images), batch_size):
        yield i, to_unit_float(images[i : i + batch_size], model.device)


def _chunked(conditionals, batch_size: int):
    """``conditionals`` applied ``batch_size`` grids at a time (the encoder and the decoder cut the same way)."""

    def apply(grids: torch.Tensor) -> torch.Tensor:
        return torch.cat([conditionals(grids[i : i + batch_size]) for i in range(0, len(grids), batch_size)])

    return apply


def index_grids(model, codes: CodeFile, batch_size: int) -> torch.Tensor:
    """The index grids of a file: as read, or decoded from a stream coded with the model's prior (checked with the
    file's CRC-32).

    Raises:
        AelabError: the stream does not decode to the grids it was made of (damaged or truncated).
    """
    if codes.stream is None:
        return codes.codes
    shape = (int(model.code_shape[1]), int(model.code_shape[2]))
    grids = decode_autoregressive(codes.stream, len(codes.names), shape, _chunked(model.index_conditionals, batch_size))
    if codes.checksum is not None and zlib.crc32(grids.numpy().astype(np.uint16).tobytes()) != codes.checksum:
        raise AelabError("the entropy-coded stream does not decode to the indices it was made of (damaged?)")
    codes.codes = grids
    return grids


def index_arrays(codes: CodeFile) -> dict[str, np.ndarray]:
    """The arrays of an index-grid file: the grids, or a stream (the model's prior's, or per-position marginals',
    whose counts are kept)."""
    kind = np.uint8 if codes.bits == 8 else np.uint16
    if not codes.entropy:
        return {"indices": np.array(1), "codes": codes.codes.numpy().astype(kind)}
    grids = codes.codes
    out = {"indices": np.array(1), "code_shape": np.array(codes.code_shape)}
    if codes.stream is not None:
        return {
            **out,
            "coder": np.array("prior"),
            "stream": np.frombuffer(codes.stream, dtype=np.uint8),
            "checksum": np.array(codes.checksum),
        }
    levels = 1 << codes.bits if codes.bits == 8 else int(grids.max()) + 1
    flat = grids.flatten(1).numpy()
    model = FactorizedModel.of_levels(flat, torch.zeros(0), torch.zeros(0), levels)
    stream = model.encode(flat.astype(np.int32))
    codes.stream_bytes = len(stream)
    return {
        **out,
        "coder": np.array("marginals"),
        "stream": np.frombuffer(stream, dtype=np.uint8),
        "counts": model.counts.astype(np.uint32),
        "checksum": np.array(zlib.crc32(flat.astype(np.uint16).tobytes())),
    }


def read_indices(data, n: int) -> CodeFile:
    """An index-grid file's :class:`CodeFile` (a marginals stream decoded here; a prior's kept for the model).

    Raises:
        AelabError: a marginals stream that does not decode to the grids it was made of.
    """
    empty, bits = torch.zeros(0), int(data["bits"])
    names, model, shape = [str(v) for v in data["names"]], str(data["model"]), shape3(data["input_shape"])
    if "stream" not in data:
        grids = torch.from_numpy(data["codes"].astype(np.int64))
        return CodeFile(grids, empty, empty, bits, names, model, shape, False, indices=True)
    grid_shape = tuple(int(v) for v in data["code_shape"])
    stream = data["stream"].tobytes()
    if str(data["coder"]) == "prior":
        none = torch.zeros(0, *grid_shape, dtype=torch.long)
        return CodeFile(
            none,
            empty,
            empty,
            bits,
            names,
            model,
            shape,
            True,
            len(stream),
            True,
            grid_shape,
            int(data["checksum"]),
            stream,
        )
    coder = FactorizedModel(empty, empty, data["counts"].astype(np.int64))
    flat = coder.decode(stream, n)
    if zlib.crc32(flat.astype(np.uint16).tobytes()) != int(data["checksum"]):
        raise AelabError("the entropy-coded stream does not decode to the indices it was made of (damaged?)")
    grids = torch.from_numpy(flat.astype(np.int64)).view(n, *grid_shape)
    return CodeFile(grids, empty, empty, bits, names, model, shape, True, len(stream), True)


@torch.no_grad()
def decode_index_images(model, codes: CodeFile, batch_size: int) -> torch.Tensor:
    """float32 images ``(N, C, H, W)`` in [0, 1] decoded from an index-grid file (a prior's stream decoded first).

    Raises:
        AelabError: see :func:`index_grids`.
    """
    grids = index_grids(model, codes, batch_size)
    parts = [
        model.decode_indices(grids[i : i + batch_size].to(model.device)).float().clamp(0, 1).cpu()
        for i in range(0, len(grids), batch_size)
    ]
    return torch.cat(parts) if parts else torch.zeros(0, *model.input_shape)


@torch.no_grad()
def index_round_trip_psnr(model, images: torch.Tensor, codes: CodeFile) -> float:
    """PSNR (dB, per image, averaged) of uint8 ``images`` decoded from their index grids (float, unrounded)."""
    from aelab.evaluation.reconstruction import psnr_per_image

    total = 0.0
    for i, x in _batches(model, images, 1000):
        out = model.decode_indices(codes.codes[i : i + len(x)].to(model.device)).float().clamp(0, 1)
        total += float(psnr_per_image(out, x).sum())
    return total / max(len(images), 1)
