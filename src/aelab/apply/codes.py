"""Compression as a tool (the "Convolutional Autoencoders" tutorial's use): images -> a code file -> images.

A code file is a NumPy ``.npz`` (uncompressed, readable with ``numpy.load``)::

    codes        (N, *code_shape)  uint8 / uint16 / float32   the quantized codes (see --bits)
    low, scale   (D,) float32      per-unit affine: code = codes * scale + low (D = code size; 0 and 1 for 32 bits)
    bits         ()  int           8, 16 or 32
    names        (N,) str          where each image came from
    model        ()  str           the fingerprint of the model that made them (decode checks it)
    input_shape  (3,) int          (C, H, W) of the images

Entropy coded (``aelab encode --entropy``, 8 bits), ``codes`` is replaced by a range-coded stream of the levels
(:mod:`aelab.evaluation.entropy`: a factorized model of the file's own levels, whose table travels in the file)::

    stream       (B,) uint8        the range coder's output: the rate is B / N bytes per image
    counts       (D, 256) uint32   each unit's level counts + 1: the probabilities the stream was coded with
    code_shape   (k,) int          the code's shape per image; N is len(names)
    checksum     ()  int           CRC-32 of the levels, checked after decoding

A model whose code is a grid of codebook indices (a VQ-VAE) stores the grid itself: ``codes`` ``(N, h, w)`` uint8
(uint16 for K > 256), ``low``/``scale`` empty, ``bits`` 8 or 16, and ``indices`` 1. Entropy coded, ``coder`` says
with what: ``marginals`` (per-position index counts of the file's own grids, ``counts`` (h*w, K), in the file) or
``prior`` (the model's own prior over its grid, a PixelCNN: nothing more in the file, and only that model decodes
it, position by position).

Quantization is :func:`aelab.evaluation.quantization.quantize`, the one ``aelab compression`` measures.
"""

from __future__ import annotations

import re
import zlib
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aelab.apply.code_file import FORMAT, CodeFile, shape3
from aelab.apply.index_codes import (
    decode_index_images,
    encode_indices,
    index_arrays,
    index_round_trip_psnr,
    read_indices,
)
from aelab.data.dataset import to_uint8
from aelab.errors import AelabError, ConfigError
from aelab.evaluation.batches import encode_all
from aelab.evaluation.compression import decoded_quality
from aelab.evaluation.entropy import FactorizedModel
from aelab.evaluation.quantization import QUANT_BITS, quantize
from aelab.io import atomic_write


@torch.no_grad()
def encode_images(
    model,
    images: torch.Tensor,
    names: list[str],
    bits: int = 8,
    batch_size: int = 1000,
    entropy: bool = False,
    refine: int = 0,
) -> CodeFile:
    """Encode uint8 images ``(N, C, H, W)`` and quantize the codes to ``bits`` per value (``entropy``: to be
    written as an entropy-coded stream). ``refine`` > 0: each image's code is first searched for that many steps
    with the decoder fixed (:func:`aelab.evaluation.refinement.search_codes`); the file is the same size.

    Raises:
        ConfigError: bits not 8, 16 or 32; entropy coding with other than 8 bits; refine below 0, or refine of a
            code a search cannot move (a VQ-VAE's indices, a top-k code) or of fewer than 2 images.
        AelabError: a conditional model.
    """
    from aelab.apply import refuse_unlabelled

    refuse_unlabelled(model, "encode")
    if bits not in QUANT_BITS:
        raise ConfigError(f"--bits: got {bits}; allowed: {', '.join(map(str, QUANT_BITS))}")
    if refine < 0:
        raise ConfigError(f"--refine: got {refine}; allowed: 0 (the encoder's code) or more search steps")
    reason = model.lacks("continuous_code") if refine else None
    if reason is not None:
        raise ConfigError(f"--refine: model {model.name!r} has no code of real values to search ({reason}); allowed: 0")
    if model.code_kind == "indices":
        return encode_indices(model, images, names, batch_size, entropy)
    if entropy and bits != 8:
        raise ConfigError(f"--entropy codes 8-bit levels; got --bits {bits}; allowed: --bits 8 with --entropy")
    if refine:
        from aelab.evaluation.refinement import search_codes

        codes = search_codes(model, images, refine)[1]
    else:
        codes = encode_all(model, images, None, batch_size)
    q, low, scale = quantize(codes, bits)
    shape = (len(images), *model.code_shape)
    return CodeFile(q.view(shape), low, scale, bits, list(names), model.fingerprint(), model.input_shape, entropy)


@torch.no_grad()
def decode_codes(model, codes: CodeFile, batch_size: int = 1000) -> torch.Tensor:
    """Images uint8 ``(N, C, H, W)`` decoded from a code file by ``model`` (for vector data: standardized float32
    rows ``(N, 1, 1, D)``).

    Raises:
        AelabError: the codes were made by another model (fingerprint or shape differs; both named).
    """
    from aelab.apply import refuse_unlabelled

    refuse_unlabelled(model, "decode")
    check_model(model, codes)
    model.eval()
    if codes.indices:
        return to_uint8(decode_index_images(model, codes, batch_size))
    z = codes.dequantized()
    parts = [
        model.clamp(model.decode(z[i : i + batch_size].to(model.device)).float()).cpu()
        for i in range(0, len(z), batch_size)
    ]
    out = torch.cat(parts) if parts else torch.zeros(0, *model.input_shape)
    return out if model.data_range is None else to_uint8(out)


def round_trip_quality(model, images: torch.Tensor, codes: CodeFile) -> str:
    """The round trip's quality in words (:func:`aelab.evaluation.compression.decoded_quality`, as ``aelab
    compression`` measures it): ``PSNR 24.10 dB`` (images) or ``MSE 0.0123`` (standardized vector rows)."""
    if codes.indices:
        return f"PSNR {index_round_trip_psnr(model, images, codes):.2f} dB"
    value = decoded_quality(model, images, codes.dequantized())
    return f"PSNR {value:.2f} dB" if model.data_range is not None else f"MSE {value:.5g} (standardized features)"


def write_rows(rows: torch.Tensor, model, folder: Path | str) -> Path:
    """Write decoded vector rows ``(N, 1, 1, D)``, de-standardized with the model's training statistics, as
    ``folder/decoded.npy`` float32 ``(N, D)``."""
    flat = rows.flatten(1)
    if model.standardization is not None:
        flat = flat * model.standardization[1] + model.standardization[0]
    path = Path(folder) / "decoded.npy"
    atomic_write(path, lambda f: np.save(f, flat.numpy().astype(np.float32)))
    return path


def check_model(model, codes: CodeFile) -> None:
    """Refuse codes made by another model.

    Raises:
        AelabError: code shape or model fingerprint differs (both named).
    """
    shape = codes.code_shape
    if shape != (tuple(model.code_shape[1:]) if codes.indices else tuple(model.code_shape)):
        raise AelabError(
            f"the codes are {'x'.join(map(str, shape))} per image but model {model.name!r} has codes of "
            f"{'x'.join(map(str, model.code_shape))}; decode with the model that encoded them"
        )
    if codes.model != model.fingerprint():
        raise AelabError(
            f"the codes were made by model {codes.model} but this is model {model.fingerprint()} "
            f"({model.name}); decode with the run that encoded them"
        )


def save_codes(codes: CodeFile, path: Path | str) -> Path:
    """Write ``codes`` to ``path`` (``.npz``, atomically)."""
    path = Path(path)
    if codes.indices:
        body = index_arrays(codes)
    else:
        body = _stream(codes) if codes.entropy else {"codes": _levels(codes)}
    arrays: dict[str, Any] = {
        "format": np.array(FORMAT),
        **body,
        "low": codes.low.numpy().astype(np.float32),
        "scale": codes.scale.numpy().astype(np.float32),
        "bits": np.array(codes.bits),
        "names": np.array(codes.names, dtype=str),
        "model": np.array(codes.model),
        "input_shape": np.array(codes.input_shape),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]
    return path


def _levels(codes: CodeFile) -> np.ndarray:
    return codes.codes.numpy().astype({8: np.uint8, 16: np.uint16, 32: np.float32}[codes.bits])


def _stream(codes: CodeFile) -> dict[str, np.ndarray]:
    """The entropy-coded arrays of 8-bit ``codes`` (sets ``codes.stream_bytes``)."""
    levels = codes.codes.flatten(1).numpy()
    model = FactorizedModel.of_levels(levels, codes.low, codes.scale)
    stream = model.encode(levels.astype(np.int32))
    codes.stream_bytes = len(stream)
    return {
        "stream": np.frombuffer(stream, dtype=np.uint8),
        "counts": model.counts.astype(np.uint32),
        "code_shape": np.array(codes.codes.shape[1:]),
        "checksum": np.array(zlib.crc32(levels.astype(np.uint8).tobytes())),
    }


def _unstream(data, names: int, low: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The levels ``(N, *code_shape)`` uint8 back from an entropy-coded file, and the stream's bytes.

    Raises:
        AelabError: the stream does not decode to the levels it was made of (damaged or truncated).
    """
    model = FactorizedModel(low, scale, data["counts"].astype(np.int64))
    stream = data["stream"].tobytes()
    levels = model.decode(stream, names).astype(np.uint8)
    if zlib.crc32(levels.tobytes()) != int(data["checksum"]):
        raise AelabError("the entropy-coded stream does not decode to the levels it was made of (damaged?)")
    shape = tuple(int(v) for v in data["code_shape"])
    return torch.from_numpy(levels).view(names, *shape), len(stream)


def load_codes(path: Path | str) -> CodeFile:
    """Read a code file written by :func:`save_codes`.

    Raises:
        AelabError: missing, not a ``.npz``, or not an aelab code file.
    """
    path = Path(path)
    if not path.is_file():
        raise AelabError(f"code file {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["format"]) != FORMAT:
                raise KeyError("format")
            if "indices" in data:
                return read_indices(data, len(data["names"]))
            bits, names = int(data["bits"]), [str(n) for n in data["names"]]
            low, scale = torch.from_numpy(data["low"].copy()), torch.from_numpy(data["scale"].copy())
            stream_bytes = None
            if "stream" in data:
                codes, stream_bytes = _unstream(data, len(names), low, scale)
            else:
                raw = data["codes"]
                codes = torch.from_numpy(raw.astype(np.int32) if raw.dtype == np.uint16 else raw.copy())
            shape = shape3(data["input_shape"])
            return CodeFile(
                codes, low, scale, bits, names, str(data["model"]), shape, stream_bytes is not None, stream_bytes
            )
    except (OSError, ValueError, KeyError) as exc:
        why = "it lacks the arrays aelab encode writes" if isinstance(exc, KeyError) else "not a NumPy .npz file"
        raise AelabError(f"{str(path)!r} is not an aelab code file ({why}); make one with 'aelab encode'") from None


def _save_png(picture, f) -> None:
    picture.save(f, format="PNG")


def png_names(names: list[str]) -> list[str]:
    """Output file names for decoded images: ``00000-<stem>.png`` (index first, so names are unique and sorted)."""
    out = []
    for i, name in enumerate(names):
        stem = Path(name).stem if ":" not in name else name.replace(":", "-")
        out.append(f"{i:05d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', stem)[:60]}.png")
    return out


def write_pngs(images: torch.Tensor, names: list[str], folder: Path | str) -> list[Path]:
    """Write uint8 images ``(N, C, H, W)`` as PNGs named by :func:`png_names` into ``folder``."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for image, name in zip(images, png_names(names)):
        arr = image.numpy()
        picture = Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0))
        paths.append(folder / name)
        atomic_write(paths[-1], partial(_save_png, picture))
    return paths
