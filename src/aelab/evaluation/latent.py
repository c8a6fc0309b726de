"""Looking at the latent space: each function returns the data behind a figure.

Sources: latent interpolation ("AutoEncoders: minimal working examples"; COMP90051 workshop 8 for the
data-space vs latent-space rows), latent map / code heatmap / feature dictionary (Jian Zhong, "Full Code
Guide"); latent traversals and the decoded 2-D manifold (Kingma & Welling 2014, figure 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from aelab.data.dataset import ImageDataset, ImageSplit, to_unit_float
from aelab.errors import AelabError
from aelab.evaluation.batches import encode_all
from aelab.models.autoencoder import AutoEncoder


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
    """A random (seeded) index of ``split`` whose label is ``cls``.

    Raises:
        AelabError: the class has no image in the split.
    """
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
    device = model.device
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


def latent_map(model: AutoEncoder, split: ImageSplit, method: str = "auto", n: int = 5000, seed: int = 0) -> LatentMap:
    """2-D map of the codes of the first ``n`` images of ``split``: the code itself when it is 2-D, else PCA
    (``auto``/``pca``) or t-SNE (``tsne``, scikit-learn).

    Raises:
        AelabError: an unknown method.
    """
    if method not in ("auto", "pca", "tsne"):
        raise AelabError(f"method: got {method!r}; allowed: auto, pca, tsne")
    labels = split.labels[:n]
    codes = encode_all(model, split.images[:n], labels).numpy()
    if codes.shape[1] == 2 and method == "auto":
        return LatentMap(codes, labels.numpy(), "code")
    if method == "tsne":
        from sklearn.manifold import TSNE

        pts = TSNE(n_components=2, random_state=seed, init="pca", perplexity=min(30, len(codes) - 1)).fit_transform(
            codes
        )
        return LatentMap(pts, labels.numpy(), "tsne")
    from sklearn.decomposition import PCA

    return LatentMap(PCA(n_components=2, random_state=seed).fit_transform(codes), labels.numpy(), "pca")


# ------------------------------------------------------------------------------------------- code heatmap
@dataclass
class CodeHeatmap:
    """``codes`` (N, D); ``frequency`` (D,) share of samples where each unit is active; ``dead`` (D,) bool."""

    codes: np.ndarray
    frequency: np.ndarray
    dead: np.ndarray


def code_heatmap(model: AutoEncoder, split: ImageSplit, n: int = 512, threshold: float = 1e-6) -> CodeHeatmap:
    """Codes of the first ``n`` images; a unit is active where ``|z| > threshold``, dead if never active."""
    codes = encode_all(model, split.images[:n], split.labels[:n]).numpy()
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
    device = model.device
    d = model.code_size
    base = model.decode(torch.zeros(1, *model.code_shape, device=device)).float()
    tiles = []
    for start in range(0, d, 256):
        eye = torch.eye(d, device=device)[start : start + 256] * amplitude
        tiles.append((model.decode(eye.view(-1, *model.code_shape)).float() - base).cpu())
    return torch.cat(tiles)


# ------------------------------------------------------------------------------- traversals, manifold
@torch.no_grad()
def traversals(
    model: AutoEncoder, dataset: ImageDataset, index: int = 0, steps: int = 9, units: int = 16
) -> tuple[torch.Tensor, list[int], np.ndarray]:
    """Sweep each latent unit over its range with the others held at test image ``index``'s code.

    The range of a unit is the 2nd..98th percentile of the test codes (for a model with a prior, widened to at
    least the prior's 2.3rd..97.7th percentile, -2..2 for N(0, 1)). Units are shown most-varying first, at most
    ``units``.

    Returns: images ``(units, steps, C, H, W)`` float in [0, 1], the unit indices, and the values ``(units, steps)``.

    Raises:
        AelabError: the code is not a vector (a VQ-VAE's grid), or ``index`` is outside the test split.
    """
    if model.lacks("vector_code"):
        raise AelabError(f"traversals need a code vector; model {model.name!r} has codes of shape {model.code_shape}")
    test = dataset.test
    if not 0 <= index < len(test):
        raise AelabError(f"test image index {index} out of range; allowed: 0..{len(test) - 1}")
    codes = encode_all(model, test.images[:2000], test.labels[:2000])
    lo, hi = torch.quantile(codes, 0.02, dim=0), torch.quantile(codes, 0.98, dim=0)
    if "prior" in model.samplers:
        edges = model.prior_quantile(torch.special.ndtr(torch.tensor([-2.0, 2.0], dtype=torch.float64))).float()
        lo, hi = torch.minimum(lo, edges[0].expand_as(lo)), torch.maximum(hi, edges[1].expand_as(hi))
    order = codes.var(0).argsort(descending=True)[:units].tolist()
    y = test.labels[index : index + 1].to(model.device)
    base = model.encode(to_unit_float(test.images[index : index + 1], model.device), y).float().cpu()[0]
    values = np.stack([np.linspace(float(lo[u]), float(hi[u]), steps) for u in order])
    z = base.repeat(len(order) * steps, 1)
    for r, u in enumerate(order):
        z[r * steps : (r + 1) * steps, u] = torch.from_numpy(values[r]).float()
    images = model.decode(z.to(model.device), y.expand(len(z))).float().clamp(0, 1).cpu()
    return images.view(len(order), steps, *images.shape[1:]), order, values


@torch.no_grad()
def manifold(
    model: AutoEncoder, dataset: ImageDataset, steps: int = 15, y: int | None = None
) -> tuple[torch.Tensor, np.ndarray, np.ndarray, str]:
    """Decode a ``steps`` x ``steps`` grid of 2-D latent points: for a model with a prior its quantiles at
    ``linspace(0.05, 0.95)``, otherwise the 1st..99th percentile of each unit over the test codes.

    Returns: images ``(steps, steps, C, H, W)`` (row r = the second unit's r-th value, from the top), the values
    of the first and second unit, and how they were chosen (for the figure).

    Raises:
        AelabError: the code does not have exactly 2 values.
    """
    if model.lacks("code_2d"):
        raise AelabError(
            f"the decoded manifold needs a 2-D code; model {model.name!r} has codes of shape {model.code_shape}"
        )
    model.eval()
    if "prior" in model.samplers:
        q = model.prior_quantile(torch.linspace(0.05, 0.95, steps)).numpy()
        u, v, how = q, q[::-1].copy(), "prior quantiles"
    else:
        codes = encode_all(model, dataset.test.images, dataset.test.labels)
        lo, hi = torch.quantile(codes, 0.01, dim=0), torch.quantile(codes, 0.99, dim=0)
        u = np.linspace(float(lo[0]), float(hi[0]), steps)
        v, how = np.linspace(float(hi[1]), float(lo[1]), steps), "1st-99th percentile of test codes"
    z = torch.tensor([[a, b] for b in v for a in u], dtype=torch.float32)
    labels = torch.full((len(z),), y if y is not None else 0, dtype=torch.long, device=model.device)
    images = model.decode(z.to(model.device), labels).float().clamp(0, 1).cpu()
    return images.view(steps, steps, *images.shape[1:]), u, v, how
