"""Looking inside a trained autoencoder: each function returns the data behind a figure.

Sources: latent interpolation ("AutoEncoders: minimal working examples"; COMP90051 workshop 8 for the
data-space vs latent-space rows), latent map / code heatmap / feature dictionary (Jian Zhong, "Full Code
Guide"), compression ("Convolutional Autoencoders").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


from aelab.data.dataset import ImageDataset, ImageSplit, to_unit_float
from aelab.errors import AelabError
from aelab.evaluation.codes import decoded_psnr, dequantize, encode_split, quantize
from aelab.models.autoencoder import AutoEncoder
from aelab.models.quantizer import VQAutoEncoder


def _device(model: AutoEncoder) -> torch.device:
    return next(model.parameters()).device


def resolve_class(dataset: ImageDataset, value: str | int) -> int:
    """A class given by index (``"5"``) or name (``"Sneaker"``, case-insensitive) -> its index.

    Raises:
        AelabError: no such class (the message lists the classes).
    """
    names = dataset.class_names
    text = str(value)
    if text.isdigit() and int(text) < len(names):
        return int(text)
    lowered = [n.lower() for n in names]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    listing = ", ".join(f"{i}={n}" for i, n in enumerate(names))
    raise AelabError(f"class {text!r} does not exist in {dataset.name}; allowed: {listing}")


def pick_of_class(split: ImageSplit, cls: int, seed: int) -> int:
    """A random (seeded) index of ``split`` whose label is ``cls``."""
    idx = torch.nonzero(split.labels == cls).flatten()
    if len(idx) == 0:
        raise AelabError(f"class {cls} has no test images")
    return int(idx[torch.randint(len(idx), (1,), generator=torch.Generator().manual_seed(seed))])


# ------------------------------------------------------------------------------------------ interpolation
@dataclass
class Interpolation:
    """``alphas`` (S,); ``data_space`` and ``latent_space`` float ``(S, C, H, W)`` in [0, 1]; the two inputs'
    test indices."""

    alphas: torch.Tensor
    data_space: torch.Tensor
    latent_space: torch.Tensor
    index_a: int
    index_b: int


@torch.no_grad()
def interpolate(model: AutoEncoder, split: ImageSplit, index_a: int, index_b: int, steps: int = 10) -> Interpolation:
    """Data-space row ``(1-a) x + a x'`` and latent-space row ``g((1-a) f(x) + a f(x'))`` for a in [0, 1].

    The latent row's endpoints are the reconstructions of the two inputs.

    Raises:
        AelabError: an index outside the split, or fewer than 2 steps.
    """
    for i in (index_a, index_b):
        if not 0 <= i < len(split):
            raise AelabError(f"test image index {i} out of range; allowed: 0..{len(split) - 1}")
    if steps < 2:
        raise AelabError(f"steps: got {steps}; allowed: 2 or more")
    model.eval()
    device = _device(model)
    x = to_unit_float(split.images[[index_a, index_b]], device)
    alphas = torch.linspace(0, 1, steps, device=device)
    shape = (-1,) + (1,) * (x.dim() - 1)
    data = (1 - alphas.view(shape)) * x[0:1] + alphas.view(shape) * x[1:2]
    z = model.encode(x)
    zshape = (-1,) + (1,) * (z.dim() - 1)
    latent = model.decode((1 - alphas.view(zshape)) * z[0:1] + alphas.view(zshape) * z[1:2])
    return Interpolation(alphas.cpu(), data.cpu(), latent.float().clamp(0, 1).cpu(), index_a, index_b)


# --------------------------------------------------------------------------------------------- latent map
@dataclass
class LatentMap:
    """``points`` (N, 2) float; ``labels`` (N,); ``method`` used ('code', 'pca' or 'tsne')."""

    points: np.ndarray
    labels: np.ndarray
    method: str


def latent_map(model: AutoEncoder, split: ImageSplit, method: str = "auto", n: int = 5000,
               seed: int = 0) -> LatentMap:
    """2-D map of the codes of the first ``n`` images of ``split``: the code itself when it is 2-D, else PCA
    (``auto``/``pca``) or t-SNE (``tsne``, scikit-learn)."""
    if method not in ("auto", "pca", "tsne"):
        raise AelabError(f"method: got {method!r}; allowed: auto, pca, tsne")
    sub = ImageSplit(split.images[:n], split.labels[:n])
    codes = encode_split(model, sub).numpy()
    if codes.shape[1] == 2 and method == "auto":
        return LatentMap(codes, sub.labels.numpy(), "code")
    if method == "tsne":
        from sklearn.manifold import TSNE

        pts = TSNE(n_components=2, random_state=seed, init="pca", perplexity=min(30, len(codes) - 1)).fit_transform(codes)
        return LatentMap(pts, sub.labels.numpy(), "tsne")
    from sklearn.decomposition import PCA

    return LatentMap(PCA(n_components=2, random_state=seed).fit_transform(codes), sub.labels.numpy(), "pca")


# ------------------------------------------------------------------------------------------- code heatmap
@dataclass
class CodeHeatmap:
    """``codes`` (N, D); ``frequency`` (D,) share of samples where each unit is active; ``dead`` (D,) bool."""

    codes: np.ndarray
    frequency: np.ndarray
    dead: np.ndarray


def code_heatmap(model: AutoEncoder, split: ImageSplit, n: int = 512, threshold: float = 1e-6) -> CodeHeatmap:
    """Codes of the first ``n`` images; a unit is active where ``|z| > threshold``, dead if never active."""
    codes = encode_split(model, ImageSplit(split.images[:n], split.labels[:n])).numpy()
    active = np.abs(codes) > threshold
    return CodeHeatmap(codes, active.mean(0), ~active.any(0))


# ------------------------------------------------------------------------------------- feature dictionary
@torch.no_grad()
def feature_dictionary(model: AutoEncoder, amplitude: float = 1.0) -> torch.Tensor:
    """What each code unit decodes to: ``g(a e_j) - g(0)`` for every unit j.

    Returns:
        float ``(D, C, H, W)``, one tile per code unit (D = code size).
    """
    model.eval()
    device = _device(model)
    d = model.code_size
    zero = torch.zeros(1, *model.code_shape, device=device)
    base = model.decode(zero).float()
    tiles = []
    for start in range(0, d, 256):
        eye = torch.eye(d, device=device)[start:start + 256] * amplitude
        tiles.append((model.decode(eye.view(-1, *model.code_shape)).float() - base).cpu())
    return torch.cat(tiles)


# ------------------------------------------------------------------------------------------ where it fails
@dataclass
class Failures:
    """``per_class`` list of (class name, images, MSE); ``worst`` test indices, their per-image MSE,
    originals and reconstructions (uint8 ``(k, C, H, W)``)."""

    per_class: list[tuple[str, int, float]]
    worst: list[int]
    worst_mse: list[float]
    originals: torch.Tensor
    reconstructions: torch.Tensor


@torch.no_grad()
def failures(model: AutoEncoder, dataset: ImageDataset, k: int = 8, batch_size: int = 1000) -> Failures:
    """Per-class test MSE and the ``k`` worst-reconstructed test images."""
    split = dataset.test
    if not 1 <= k <= len(split):
        raise AelabError(f"k: got {k}; allowed: 1..{len(split)}")
    model.eval()
    device = _device(model)
    errs = []
    for _, x in split.batches(batch_size, device):
        errs.append((model.reconstruct(x).float() - x).pow(2).flatten(1).mean(1).cpu())
    err = torch.cat(errs)
    per_class = []
    for c in sorted(set(split.labels.tolist())):
        mask = split.labels == c
        name = dataset.class_names[c] if c < len(dataset.class_names) else str(c)
        per_class.append((name, int(mask.sum()), float(err[mask].mean())))
    worst = err.topk(k).indices
    x = to_unit_float(split.images[worst], device)
    recon = (model.reconstruct(x).float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    return Failures(per_class, worst.tolist(), err[worst].tolist(), split.images[worst], recon)


# -------------------------------------------------------------------------------------------- compression
@torch.no_grad()
def compression(model: AutoEncoder, dataset: ImageDataset, batch_size: int = 1000) -> list[dict]:
    """Bytes per image of the code stored as float32, float16 and 8-bit quantized vs the raw 8-bit image,
    and the PSNR (dB, per image, averaged) of the test reconstruction decoded from each.

    8-bit quantization is :func:`aelab.evaluation.codes.quantize`: affine per code unit, with each unit's min and
    max over the test codes (those 2 x D float32 values are stored once, not per image): what ``aelab encode
    --bits 8`` writes for the test split. A VQ-VAE has one row: its index grid, ``h * w * log2(K) / 8`` bytes
    (the codebook is stored once, with the model).
    """
    codes = encode_split(model, dataset.test, batch_size)
    raw = dataset.test.images[0].numel()
    if isinstance(model, VQAutoEncoder):  # a VQ-VAE: its code is the index grid, exactly h * w * log2(K) bits
        code_bytes = model.bits_per_image / 8
        return [{"storage": f"indices (K={model.quantizer.size}, {math.log2(model.quantizer.size):g} bits each)",
                 "code_bytes": code_bytes, "image_bytes": raw, "compression_ratio": raw / code_bytes,
                 "psnr": decoded_psnr(model, dataset.test.images, codes, batch_size)}]
    q, low, scale = quantize(codes, 8)
    stored = {"float32": codes, "float16": codes.half().float(), "uint8": dequantize(q, low, scale)}
    d = model.code_size
    psnr = {name: decoded_psnr(model, dataset.test.images, z, batch_size) for name, z in stored.items()}
    rows = []
    for name, per_value in (("float32", 4), ("float16", 2), ("uint8", 1)):
        code_bytes = d * per_value
        rows.append({"storage": name, "code_bytes": code_bytes, "image_bytes": raw,
                     "compression_ratio": raw / code_bytes, "psnr": psnr[name]})
    return rows
