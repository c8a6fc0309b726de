"""A code as stored bytes: quantization of codes (what ``aelab encode`` writes) and the compression table (bytes
per image and the quality of the images decoded from them; the "Convolutional Autoencoders" tutorial's view)."""

from __future__ import annotations

import math
from typing import Any

import torch

from aelab.data.dataset import ImageDataset, ImageSplit, to_unit_float
from aelab.evaluation.batches import encode_all
from aelab.evaluation.quantization import dequantize, quantize
from aelab.evaluation.reconstruction import psnr_per_image
from aelab.models.autoencoder import AutoEncoder


@torch.no_grad()
def decoded_quality(
    model: AutoEncoder, images: torch.Tensor | ImageSplit, codes: torch.Tensor, batch_size: int = 1000
) -> float:
    """How well ``model.decode(codes)`` restores uint8 ``images`` ``(N, C, H, W)``: the PSNR (dB, per image,
    averaged; decoded images clamped to [0, 1]), or for vector rows the mean squared error per row; ``codes``
    float ``(N, D)`` or ``(N, *code_shape)``, e.g. dequantized: what storing the codes that way costs."""
    if model.data_range is None:
        return _decoded_mean(model, images, codes, batch_size, lambda out, x: (out - x).pow(2).flatten(1).mean(1))
    return _decoded_mean(model, images, codes, batch_size, psnr_per_image)


@torch.no_grad()
def decoded_ssim(
    model: AutoEncoder, images: torch.Tensor | ImageSplit, codes: torch.Tensor, batch_size: int = 1000
) -> float:
    """The SSIM (per image, averaged) of uint8 ``images`` ``(N, C, H, W)`` decoded from ``codes`` (as
    :func:`decoded_quality`)."""
    from aelab.evaluation.reconstruction import ssim_per_image

    return _decoded_mean(model, images, codes, batch_size, ssim_per_image)


def _decoded_mean(model: AutoEncoder, images, codes: torch.Tensor, batch_size: int, per_image) -> float:
    model.eval()
    device, total = model.device, 0.0
    for i in range(0, len(images), batch_size):
        x = to_unit_float(images[i : i + batch_size], device)
        z = codes[i : i + batch_size].to(device).float().view(-1, *model.code_shape)
        total += float(per_image(model.clamp(model.decode(z).float()), x).sum())
    return total / max(len(images), 1)


CODEC_IMAGES = 1000
"""Test images the classical codecs are measured on (each image is its own file)."""
ENTROPY_FIT_IMAGES = 10_000
"""Training images whose codes fit the factorized entropy model."""


def _row(storage: str, code_bytes: float, raw: int, psnr: float) -> dict:
    return {
        "storage": storage,
        "code_bytes": code_bytes,
        "image_bytes": raw,
        "compression_ratio": raw / code_bytes,
        "psnr": psnr,
    }


@torch.no_grad()
def compression(model: AutoEncoder, dataset: ImageDataset, batch_size: int = 1000) -> list[dict]:
    """Bytes per image of the code stored as float32, float16, 8-bit quantized and entropy coded, vs the raw 8-bit
    image, with the PSNR (dB, per image, averaged) of the test reconstruction decoded from each; then the
    classical codecs on the first :data:`CODEC_IMAGES` test images (rows with a ``codec``), and the bytes JPEG and
    WebP need at the entropy-coded code's PSNR.

    8-bit quantization is :func:`quantize`: affine per code unit, with each unit's min and max over the test
    codes (those 2 x D float32 values are stored once, not per image): what ``aelab encode --bits 8`` writes for
    the test split. The entropy-coded row is :mod:`aelab.evaluation.entropy`: levels in the training codes' range,
    a factorized model fitted on the first :data:`ENTROPY_FIT_IMAGES` training codes, a real range-coded stream.
    The transform-coded row (:data:`TRANSFORM_STORAGE`; :mod:`aelab.evaluation.transform_coding`) codes the same
    codes on decoder-weighted principal axes with one step, the largest at which the validation images (the
    fitting images when there is no validation split) decode as well as from the 8-bit levels; no such row when
    no step does.
    A model whose code is a grid of indices (a VQ-VAE) has two code rows: the grid at exactly ``h * w * log2(K)``
    bits (the codebook is stored once, with the model), and the grid range coded with per-position marginals of
    the training grids (:func:`aelab.evaluation.entropy.entropy_coded_indices`; lossless, the same PSNR); a model
    with a prior over its indices (``index_conditionals``, a PixelCNN) a third, coded autoregressively with it
    (:func:`aelab.evaluation.entropy.entropy_coded_autoregressive`; the first 1,000 test grids decoded back).
    """
    test = dataset.test
    codes = encode_all(model, test, test.labels, batch_size)
    raw = test.pixels
    if model.code_kind == "indices":
        return _index_rows(model, dataset, codes, batch_size)
    q, low, scale = quantize(codes, 8)
    stored = {"float32": codes, "float16": codes.half().float(), "uint8": dequantize(q, low, scale)}
    rows = [
        _row(name, model.code_size * per_value, raw, decoded_quality(model, test, stored[name], batch_size))
        for name, per_value in (("float32", 4), ("float16", 2), ("uint8", 1))
    ]
    from aelab.evaluation.entropy import entropy_coded

    fit = dataset.train.head(ENTROPY_FIT_IMAGES)
    fit_codes = encode_all(model, fit, fit.labels, batch_size)
    sizes, decoded = entropy_coded(fit_codes, codes)
    psnr = decoded_quality(model, test, decoded, batch_size)
    rows.append(_row("uint8, entropy coded (factorized, range coder)", sizes["bytes_per_image"], raw, psnr))
    rows[-1]["ideal_bytes"] = sizes["ideal_bytes_per_image"]
    if model.data_range is not None:  # images (vector rows have no SSIM)
        rows[-1]["ssim"] = decoded_ssim(model, test, decoded, batch_size)
    held = dataset.val if len(dataset.val) else fit
    rows += _transform_row(model, test, held, fit_codes, codes, batch_size)
    return rows + _codec_rows(test.head(CODEC_IMAGES).images, raw, psnr)


TRANSFORM_STORAGE = "decoder-weighted KLT, one step, entropy coded (factorized, range coder)"
"""The storage name of the transform-coded row (:func:`aelab.evaluation.transform_coding.transform_coded`)."""


def _transform_row(
    model: AutoEncoder, test: ImageSplit, held: ImageSplit, fit_codes: torch.Tensor, codes: torch.Tensor, batch: int
) -> list[dict]:
    """The test codes transform coded at the quality the 8-bit entropy-coded code reaches on ``held`` images (the
    validation split; the fitting images when there is none): the step is chosen there, not on the test set. No
    row when no step reaches that quality."""
    from aelab.evaluation.transform_coding import coded_as_well_as_8_bit

    model.eval()

    def decode(z: torch.Tensor) -> torch.Tensor:
        return model.clamp(model.decode(z.to(model.device).view(-1, *model.code_shape)).float()).flatten(1).cpu()

    found = coded_as_well_as_8_bit(
        fit_codes,
        encode_all(model, held, held.labels, batch),
        codes,
        lambda held_decodable: decoded_quality(model, held, held_decodable, batch),
        decode,
        higher_is_better=model.data_range is not None,  # PSNR for images, squared error for vector rows
    )
    if found is None:
        return []
    sizes, decoded = found
    row = _row(TRANSFORM_STORAGE, sizes["bytes_per_image"], test.pixels, decoded_quality(model, test, decoded, batch))
    row.update(ideal_bytes=sizes["ideal_bytes_per_image"], step=sizes["step"], held_quality=sizes["held_quality"])
    if model.data_range is not None:
        row["ssim"] = decoded_ssim(model, test, decoded, batch)
    return [row]


def _index_rows(model: AutoEncoder, dataset: ImageDataset, codes: torch.Tensor, batch_size: int) -> list[dict]:
    """A VQ-VAE: its index grid at h * w * log2 K bits, entropy coded with per-position marginals, the codecs."""
    from aelab.evaluation.entropy import entropy_coded_indices

    discrete: Any = model  # a grid of codebook indices
    test, fit = dataset.test, dataset.train.head(ENTROPY_FIT_IMAGES)
    psnr = decoded_quality(model, test, codes, batch_size)
    storage = f"indices (K={discrete.index_levels}, {math.log2(discrete.index_levels):g} bits each)"
    rows = [_row(storage, discrete.bits_per_image / 8, test.pixels, psnr)]

    def grids(split: ImageSplit) -> torch.Tensor:
        return torch.cat([discrete.indices(x).cpu() for _, x in split.batches(batch_size, model.device)])

    test_grids = grids(test)
    sizes = entropy_coded_indices(grids(fit), test_grids, discrete.index_levels)
    rows.append(
        _row(
            "indices, entropy coded (per-position marginals, range coder)", sizes["bytes_per_image"], test.pixels, psnr
        )
    )
    rows[-1]["ideal_bytes"] = sizes["ideal_bytes_per_image"]
    if discrete.index_conditionals(test_grids[:1]) is not None:  # a model of its own indices (a prior)
        from aelab.evaluation.entropy import entropy_coded_autoregressive

        own = entropy_coded_autoregressive(test_grids, discrete.index_conditionals)
        storage = f"indices, entropy coded (the model's prior, range coder; {own['checked_images']:,} decoded back)"
        rows.append(
            {**_row(storage, own["bytes_per_image"], test.pixels, psnr), "ideal_bytes": own["ideal_bytes_per_image"]}
        )
    ssim = decoded_ssim(model, test, codes, batch_size)  # the indices are lossless: one SSIM for every row
    return [{**r, "ssim": ssim} for r in rows] + _codec_rows(test.head(CODEC_IMAGES).images, test.pixels, psnr)


def _codec_rows(images: torch.Tensor, raw: int, psnr: float | None) -> list[dict]:
    """JPEG, WebP and PNG files of ``images``, and JPEG's and WebP's bytes at ``psnr``."""
    from aelab.evaluation.image_codecs import bytes_at_psnr, codec_curves

    points = codec_curves(images)
    n = f"{len(images):,} test images"
    rows = [
        {
            **_row(
                f"{p['codec']} {'q' + str(p['quality']) if p['quality'] is not None else 'lossless'} ({n})",
                p["bytes_per_image"],
                raw,
                p["psnr"],
            ),
            "codec": p["codec"],
            "quality": p["quality"],
            "ssim": p["ssim"],
        }
        for p in points
    ]
    if psnr is None:
        return rows
    for codec in ("JPEG", "WebP"):
        at = bytes_at_psnr(points, codec, psnr)
        if at is not None:
            rows.append({**_row(f"{codec} at the entropy-coded PSNR (interpolated)", at, raw, psnr), "codec": codec})
    return rows
