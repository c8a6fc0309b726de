"""The image codecs a user would pick instead of an autoencoder, on the same test images: JPEG (optimized
Huffman tables) and WebP at a sweep of qualities, and PNG (lossless), each written by Pillow into a real file in
memory. Bytes per image are the files' sizes, headers included (a codec's fixed header is stated in
:func:`header_bytes`); quality is the PSNR (dB) and SSIM of the decoded image, per image, averaged."""

from __future__ import annotations

import io

import numpy as np
import torch

from aelab.evaluation.reconstruction import psnr_per_image, ssim_per_image

QUALITIES = {"JPEG": (5, 10, 20, 40, 70, 90), "WebP": (1, 5, 10, 25, 50, 80)}
"""The quality sweep of each lossy codec (Pillow's 0-100 scale)."""


def _file(image: np.ndarray, codec: str, quality: int | None) -> bytes:
    from PIL import Image

    pil = Image.fromarray(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0))
    out = io.BytesIO()
    if codec == "JPEG":
        pil.save(out, "JPEG", quality=quality, optimize=True)
    elif codec == "WebP":
        pil.save(out, "WEBP", quality=quality, method=6)
    else:
        pil.save(out, "PNG", optimize=True)
    return out.getvalue()


def _decoded(data: bytes, channels: int) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        arr = np.asarray(im.convert("L" if channels == 1 else "RGB"))
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def codec_point(images: torch.Tensor, codec: str, quality: int | None = None) -> dict:
    """One codec setting on uint8 ``images`` ``(N, C, H, W)``: ``{codec, quality, bytes_per_image, psnr, ssim}``
    (PSNR of a lossless codec: infinite; its SSIM 1)."""
    files = [_file(im, codec, quality) for im in images.numpy()]
    decoded = torch.from_numpy(np.stack([_decoded(f, images.shape[1]) for f in files]))
    x, y = images.float() / 255, decoded.float() / 255
    psnr = float(psnr_per_image(y, x).mean()) if quality is not None else float("inf")
    ssim = float(ssim_per_image(y, x).mean()) if quality is not None else 1.0
    size = sum(map(len, files)) / len(files)
    return {"codec": codec, "quality": quality, "bytes_per_image": size, "psnr": psnr, "ssim": ssim}


def codec_curves(images: torch.Tensor) -> list[dict]:
    """Every setting of :data:`QUALITIES` and PNG on uint8 ``images`` ``(N, C, H, W)``, ordered by codec and
    rate."""
    points = [codec_point(images, codec, q) for codec, qs in QUALITIES.items() for q in qs]
    return points + [codec_point(images, "PNG")]


def bytes_at_psnr(points: list[dict], codec: str, psnr: float) -> float | None:
    """The codec's bytes per image at ``psnr``: linear in log bytes between the two sweep points around it
    (None when the sweep does not reach it)."""
    curve = sorted((p["psnr"], p["bytes_per_image"]) for p in points if p["codec"] == codec)
    for (p0, b0), (p1, b1) in zip(curve, curve[1:]):
        if p0 <= psnr <= p1 and p1 > p0:
            t = (psnr - p0) / (p1 - p0)
            return float(np.exp(np.log(b0) + t * (np.log(b1) - np.log(b0))))
    return None


def header_bytes(codec: str, channels: int = 1) -> int:
    """The size of the codec's file for a 1x1 image at its highest quality: roughly what its headers cost."""
    quality = {"JPEG": 90, "WebP": 80}.get(codec)
    return len(_file(np.zeros((channels, 1, 1), np.uint8), codec, quality))
