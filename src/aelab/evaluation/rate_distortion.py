"""Models beside the codecs a user would pick instead (``aelab codecs``): each model's entropy-coded code and PCA
with the same quantizer and entropy model, as rate (bits per image, from real streams) against quality (PSNR and
SSIM of the decoded test images), with the bytes JPEG and WebP files need at the same PSNR.

The rows come from each run's compression analysis (:func:`aelab.evaluation.compression.compression`: its
smallest entropy-coded row, and its codec rows), so the numbers are the ones the report shows.
"""

from __future__ import annotations

import torch

from aelab.data.dataset import ImageSplit


def best_coded(rows: list[dict]) -> dict | None:
    """The smallest entropy-coded row of one model's compression rows (None when it has none)."""
    coded = [r for r in rows if "codec" not in r and "entropy coded" in r["storage"]]
    return min(coded, key=lambda r: r["code_bytes"]) if coded else None


def codec_points(rows: list[dict]) -> list[dict]:
    """The codec sweep of compression rows, as :func:`aelab.evaluation.image_codecs.codec_curves` gives it."""
    return [
        {
            "codec": r["codec"],
            "quality": r.get("quality"),
            "bytes_per_image": r["code_bytes"],
            "psnr": r["psnr"],
            "ssim": r.get("ssim"),
        }
        for r in rows
        if "codec" in r and "interpolated" not in r["storage"]
    ]


def table_row(model: str, coded: dict, points: list[dict]) -> dict:
    """One model's row: its coded rate and quality, JPEG's and WebP's bytes at its PSNR (None where their sweep does
    not reach it), and its bytes as a share of the better codec's (None unless both reach it)."""
    from aelab.evaluation.image_codecs import bytes_at_psnr

    at = {codec: bytes_at_psnr(points, codec, coded["psnr"]) for codec in ("JPEG", "WebP")}
    known = [b for b in at.values() if b is not None] if None not in at.values() else []
    return {
        "model": model,
        "storage": coded["storage"],
        "code_bytes": coded["code_bytes"],
        "bits_per_image": coded["code_bytes"] * 8,
        "psnr": coded["psnr"],
        "ssim": coded.get("ssim"),
        "jpeg_bytes_at_psnr": at["JPEG"],
        "webp_bytes_at_psnr": at["WebP"],
        "share_of_best_codec": coded["code_bytes"] / min(known) if known else None,
    }


@torch.no_grad()
def pca_coded(train: ImageSplit, held: ImageSplit, test: ImageSplit, components: int, seed: int = 0) -> dict:
    """PCA with ``components`` as a code, fitted on ``train``, its test coefficients coded like an autoencoder's
    code: 8-bit levels with the factorized model (:func:`aelab.evaluation.entropy.entropy_coded`) and transform
    coded at the 8-bit levels' quality on ``held`` images
    (:func:`aelab.evaluation.transform_coding.coded_as_well_as_8_bit`), both fitted on up to 10,000 training
    coefficients, decoded and measured. Returns the smaller of the two as a compression row (``storage``,
    ``code_bytes``, ``psnr``, ``ssim``), as :func:`best_coded` picks a model's."""
    import numpy as np

    from aelab.evaluation.compression import ENTROPY_FIT_IMAGES, TRANSFORM_STORAGE
    from aelab.evaluation.entropy import entropy_coded
    from aelab.evaluation.pca import fit_pca
    from aelab.evaluation.reconstruction import psnr_per_image, ssim_per_image
    from aelab.evaluation.transform_coding import coded_as_well_as_8_bit

    pca = fit_pca(train, components, seed)

    def coefficients(split: ImageSplit) -> torch.Tensor:
        return torch.from_numpy(pca.transform(split.floats().reshape(len(split), -1).numpy()).astype(np.float32))

    def decode(codes: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.clip(pca.inverse_transform(codes.numpy()), 0, 1).astype(np.float32))

    def row(storage: str, sizes: dict, decoded: torch.Tensor) -> dict:
        x = test.floats()
        out = decode(decoded).view(x.shape)
        return {
            "storage": f"PCA ({components} components), {storage}",
            "code_bytes": sizes["bytes_per_image"],
            "ideal_bytes": sizes["ideal_bytes_per_image"],
            "psnr": float(psnr_per_image(out, x).mean()),
            "ssim": float(ssim_per_image(out, x).mean()),
        }

    fit, test_codes = coefficients(train.head(ENTROPY_FIT_IMAGES)), coefficients(test)
    rows = [row("8-bit levels, entropy coded (factorized, range coder)", *entropy_coded(fit, test_codes))]
    held_x = held.floats()
    found = coded_as_well_as_8_bit(
        fit,
        coefficients(held),
        test_codes,
        lambda codes: float(psnr_per_image(decode(codes).view(held_x.shape), held_x).mean()),
        decode,
    )
    if found is not None:
        rows.append(row(TRANSFORM_STORAGE, *found))
    return min(rows, key=lambda r: r["code_bytes"])
