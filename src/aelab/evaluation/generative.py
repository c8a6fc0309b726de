"""Generative autoencoders measured and sampled: likelihood bounds, active units, codebook use, samplers,
sample quality, traversals and the decoded manifold.

* ELBO (Kingma & Welling 2014), nats per image: ``E_q[log p(x|z)] - KL(q(z|x) || N(0, I))``, the expectation
  estimated with one sample of z per image, the KL in closed form.
* IWAE bound (Burda et al. 2016): ``log 1/k sum_i p(x|z_i) p(z_i) / q(z_i|x)``, z_i ~ q(z|x); at least the
  ELBO in expectation, tighter as k grows; with k = 1 it is the one-sample ELBO with a sampled KL.
* Active units (Burda et al. 2016): unit u is active when ``Var_x(E_q[z_u|x]) > 0.01`` over the test set.
* Samplers: a VAE's prior N(0, I); for any model with vector codes (and a VAE's aggregate posterior), a
  Gaussian mixture fitted to training codes (scikit-learn); for a VQ-VAE, each grid position's index frequencies
  in the training codes (independent positions).
* Frechet distance in the feature space of aelab's reference classifier (:mod:`aelab.evaluation.classifier`),
  with torchmetrics' ``FrechetInceptionDistance(feature=...)``: not the Inception FID; compare it only between
  aelab runs on the same dataset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from aelab.data.dataset import ImageDataset, ImageSplit, to_unit_float
from aelab.errors import AelabError
from aelab.models.autoencoder import AutoEncoder
from aelab.models.quantizer import VQAutoEncoder
from aelab.models.variational import LOG_2PI, VariationalAutoEncoder, kl_normal

SAMPLERS = ("auto", "prior", "gmm", "categorical")
ACTIVE_THRESHOLD = 0.01


def _device(model: AutoEncoder) -> torch.device:
    return next(model.parameters()).device


def _normal_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) summed over all but the first dim."""
    return (-0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp())).flatten(1).sum(1)


# ----------------------------------------------------------------------------------------- bounds
def _elbo_terms(model: VariationalAutoEncoder, x: torch.Tensor, y: torch.Tensor | None, mu: torch.Tensor,
                logvar: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    z = mu + eps.to(mu) * (0.5 * logvar).exp()
    return model.log_likelihood(model.decode(z, y), x), kl_normal(mu, logvar).flatten(1).sum(1)


@torch.no_grad()
def elbo(model: VariationalAutoEncoder, x: torch.Tensor, y: torch.Tensor | None = None,
         eps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image ``(N,)``: ``log p(x | z)`` with ``z = mu + sigma * eps`` (``eps`` ``(N, *code_shape)``; None:
    drawn from torch's generator) and the closed-form KL, both in nats. ELBO = the first minus the second."""
    mu, logvar = model.posterior(x, y)
    return _elbo_terms(model, x, y, mu, logvar, torch.randn_like(mu) if eps is None else eps)


@torch.no_grad()
def iwae_bound(model: VariationalAutoEncoder, x: torch.Tensor, y: torch.Tensor | None = None, k: int = 64,
               eps: torch.Tensor | None = None) -> torch.Tensor:
    """The importance-weighted lower bound on log p(x), per image ``(N,)``, nats. The k samples of all N images
    are decoded in one batch of k * N.

    Args:
        eps: ``(k, N, *code_shape)`` standard normal draws (None: drawn from torch's generator).
    """
    mu, logvar = model.posterior(x, y)
    if eps is None:
        eps = torch.randn(k, *mu.shape, device=mu.device)
    k, n = eps.shape[:2]
    z = (mu + eps.to(mu) * (0.5 * logvar).exp()).flatten(0, 1)  # (k * N, *code_shape), sample-major
    reps = (k,) + (1,) * (x.dim() - 1)
    log_lik = model.log_likelihood(model.decode(z, None if y is None else y.repeat(k)), x.repeat(reps))
    log_w = log_lik + _normal_log_density(z, torch.zeros_like(z), torch.zeros_like(z)) \
        - _normal_log_density(z, mu.repeat((k,) + (1,) * (mu.dim() - 1)), logvar.repeat((k,) + (1,) * (mu.dim() - 1)))
    return torch.logsumexp(log_w.view(k, n), 0) - math.log(k)


@torch.no_grad()
def variational_metrics(model: VariationalAutoEncoder, split: ImageSplit, k: int = 64, iwae_images: int = 1000,
                        seed: int = 0, batch_size: int = 500) -> dict:
    """Test-set measures of a VAE (nats per image): ``test_nelbo`` (-ELBO), ``test_recon_nll``, ``test_kl`` on the
    whole split; ``test_iwae_nll`` (-IWAE bound, k samples) and ``test_nelbo_subset`` (the -ELBO of the same
    images, from the same pass as ``test_nelbo``) on its first ``iwae_images`` images; ``active_units`` (of
    ``latent_units``). Seeded: same numbers for the same model."""
    model.eval()
    device = _device(model)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        labels = split.labels.to(device) if model.conditional else None
        log_lik, kl, means = [], [], []
        for where, x in split.batches(batch_size, device):
            y = labels[where] if labels is not None else None
            mu, logvar = model.posterior(x, y)
            ll, kl_i = _elbo_terms(model, x, y, mu, logvar, torch.randn_like(mu))
            log_lik.append(ll.double())
            kl.append(kl_i.double())
            means.append(mu.flatten(1).double())
        log_lik, kl = torch.cat(log_lik), torch.cat(kl)
        n, sub = len(split), min(iwae_images, len(split))
        step = max(1, batch_size // 10)  # images per IWAE batch: k times as many decodes
        iw = []
        for start in range(0, sub, step):
            stop = min(sub, start + step)
            x = to_unit_float(split.images[start:stop], device)
            iw.append(iwae_bound(model, x, labels[start:stop] if labels is not None else None, k).double())
        iw = torch.cat(iw)
    variances = torch.cat(means).var(0).cpu()
    nelbo = -(log_lik - kl)
    return {"test_nelbo": float(nelbo.mean()), "test_recon_nll": float(-log_lik.mean()), "test_kl": float(kl.mean()),
            "test_iwae_nll": float(-iw.mean()), "test_nelbo_subset": float(nelbo[:sub].mean()), "iwae_k": k,
            "iwae_images": sub, "active_units": int((variances > ACTIVE_THRESHOLD).sum()),
            "latent_units": int(variances.numel()), "latent_variances": [round(float(v), 5) for v in variances]}


def generative_metrics(model: AutoEncoder, split: ImageSplit, seed: int = 0) -> dict:
    """A generative model's own test measures: :func:`codebook_metrics` of a VQ-VAE, :func:`variational_metrics`
    of a VAE; {} for any other model."""
    if isinstance(model, VQAutoEncoder):
        return codebook_metrics(model, split)
    if isinstance(model, VariationalAutoEncoder):
        return variational_metrics(model, split, seed=seed)
    return {}


@torch.no_grad()
def codebook_metrics(model: VQAutoEncoder, split: ImageSplit, batch_size: int = 1000) -> dict:
    """A VQ-VAE's code on ``split``: ``bits_per_image`` (exact: h * w * log2 K), ``code_bytes``,
    ``perplexity`` (exp of the entropy of index use over the split; K at most), ``dead_codes`` (entries never
    used), ``codebook_size``."""
    model.eval()
    device = _device(model)
    counts = torch.zeros(model.quantizer.size, dtype=torch.float64, device=device)
    for _, x in split.batches(batch_size, device):
        counts += torch.bincount(model.indices(x).flatten(), minlength=model.quantizer.size).double()
    p = counts / counts.sum()
    entropy = float(-(p[p > 0] * p[p > 0].log()).sum())
    return {"bits_per_image": model.bits_per_image, "code_bytes": model.bits_per_image / 8,
            "perplexity": math.exp(entropy), "dead_codes": int((counts == 0).sum()),
            "codebook_size": model.quantizer.size}


# --------------------------------------------------------------------------------------- samplers
@dataclass
class Sampler:
    """Draws codes ``(n, *code_shape)`` (or VQ index grids ``(n, h, w)``) for a model's decoder."""

    kind: str
    model: AutoEncoder
    gmm: object = None
    frequencies: Optional[torch.Tensor] = None
    """categorical: ``(h * w, K)`` index frequencies per grid position."""

    def codes(self, n: int, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        shape = self.model.code_shape
        if self.kind == "prior":
            return torch.randn(n, *shape, generator=g)
        if self.kind == "gmm":
            self.gmm.random_state = seed
            z, _ = self.gmm.sample(n)
            z = torch.from_numpy(z).float()[torch.randperm(n, generator=g)]  # sklearn returns them by component
            return z.view(n, *shape)
        _, h, w = shape
        return torch.multinomial(self.frequencies, n, replacement=True, generator=g).t().reshape(n, h, w)

    @torch.no_grad()
    def images(self, n: int, seed: int = 0, y: torch.Tensor | None = None, batch_size: int = 1000) -> torch.Tensor:
        """``n`` generated images ``(n, C, H, W)`` float32 in [0, 1] (for a conditional model, of classes ``y``)."""
        model = self.model.eval()
        device = _device(model)
        codes = self.codes(n, seed)
        out = []
        for i in range(0, n, batch_size):
            c = codes[i:i + batch_size].to(device)
            yb = y[i:i + batch_size].to(device) if y is not None else None
            out.append((model.decode_indices(c) if self.kind == "categorical" else model.decode(c, yb))
                       .float().clamp(0, 1).cpu())
        return torch.cat(out)


def default_sampler(model: AutoEncoder) -> str:
    """prior for a VAE, categorical for a VQ-VAE, gmm for any other model."""
    return "prior" if isinstance(model, VariationalAutoEncoder) else "categorical" if isinstance(model, VQAutoEncoder) else "gmm"


def fit_sampler(model: AutoEncoder, dataset: ImageDataset, kind: str = "auto", components: int = 10,
                fit_images: int = 10000, seed: int = 0) -> Sampler:
    """A sampler of ``kind`` for ``model``, fitted on the first ``fit_images`` training images where it needs
    codes (gmm: ``GaussianMixture(components, covariance_type='full')``; categorical: index frequencies, with one
    pseudo-count per entry).

    Raises:
        AelabError: an unknown kind, or one the model has no codes for: prior without a prior (not a VAE),
            gmm or prior for a VQ-VAE (its codes are indices), categorical for a model without a codebook, a
            conditional model with gmm (its codes depend on the class), or vector data.
    """
    if kind not in SAMPLERS:
        raise AelabError(f"sampler: got {kind!r}; allowed: {', '.join(SAMPLERS)}")
    if dataset.is_vectors:
        raise AelabError(f"model {model.name!r} was trained on vector data; sampling generates images: allowed: "
                         "image models")
    kind = default_sampler(model) if kind == "auto" else kind
    vq = isinstance(model, VQAutoEncoder)
    if kind == "prior" and not isinstance(model, VariationalAutoEncoder):
        raise AelabError(f"sampler prior: model {model.name!r} is not a VAE, so its codes have no prior; allowed for "
                         f"it: {'categorical' if vq else 'gmm (a Gaussian mixture fitted to its training codes)'}")
    if kind == "gmm" and (vq or model.conditional):
        why = "are grids of codebook indices, not vectors" if vq else "depend on the class it is given"
        raise AelabError(f"sampler gmm: the codes of model {model.name!r} {why}; allowed for it: "
                         f"{'categorical' if vq else 'prior'}")
    if kind == "categorical" and not vq:
        raise AelabError(f"sampler categorical: model {model.name!r} has no codebook; allowed for it: "
                         f"{'prior, gmm' if isinstance(model, VariationalAutoEncoder) else 'gmm'}")
    if kind == "prior":
        return Sampler("prior", model)
    device = _device(model)
    train = ImageSplit(dataset.train.images[:fit_images], dataset.train.labels[:fit_images])
    model.eval()
    with torch.no_grad():
        if kind == "categorical":
            k = model.quantizer.size
            idx = torch.cat([model.indices(x).flatten(1).cpu() for _, x in train.batches(1000, device)])
            freq = torch.ones(idx.shape[1], k).scatter_add_(1, idx.t(), torch.ones(idx.t().shape))
            return Sampler("categorical", model, frequencies=freq / freq.sum(1, keepdim=True))
        codes = torch.cat([model.encode(x).flatten(1).double().cpu() for _, x in train.batches(1000, device)])
    from sklearn.mixture import GaussianMixture

    gmm = GaussianMixture(n_components=min(components, len(codes)), covariance_type="full", random_state=seed,
                          reg_covar=1e-5).fit(codes.numpy())
    return Sampler("gmm", model, gmm=gmm)


# ---------------------------------------------------------------------------------- sample quality
@torch.no_grad()
def frechet_distance(classifier, real: torch.Tensor, fake: torch.Tensor, batch_size: int = 1000) -> float:
    """Frechet distance between float images ``real`` and ``fake`` ``(N, C, H, W)`` in [0, 1], in the feature
    space of ``classifier.features`` (torchmetrics ``FrechetInceptionDistance`` with a custom extractor)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    fid = FrechetInceptionDistance(feature=classifier.features, normalize=True)
    for images, is_real in ((real, True), (fake, False)):
        for i in range(0, len(images), batch_size):
            fid.update(images[i:i + batch_size].float(), real=is_real)
    return float(fid.compute())


@dataclass
class Generation:
    """Samples of one model and their quality."""

    sampler: str
    grid: torch.Tensor
    """float ``(rows * cols, C, H, W)`` in [0, 1]: the samples shown (one row per class when conditional)."""
    rows: int
    frechet: Optional[float]
    """Frechet distance to the test images in the reference classifier's features (None without labels)."""
    class_accuracy: Optional[float]
    """Conditional models: share of the samples of class c that the reference classifier labels c."""
    per_class: list[float]
    classifier_accuracy: Optional[float]
    samples: int


def generate(model: AutoEncoder, dataset: ImageDataset, sampler: str = "auto", n: int = 64, seed: int = 0,
             quality_samples: int | None = None) -> Generation:
    """Draw samples from ``model`` (``n`` for the grid; a conditional model: one row of ``ceil(n / classes)``
    per class, at most 10 per row) and measure their quality on ``quality_samples`` more (default: as many as
    the test split) against the test split.

    Raises:
        AelabError: see :func:`fit_sampler`.
    """
    s = fit_sampler(model, dataset, sampler, seed=seed)
    classes = len(dataset.class_names)
    labelled = dataset.labelled
    if model.conditional:
        cols = min(10, max(1, math.ceil(n / classes)))
        y = torch.arange(classes).repeat_interleave(cols)
        grid, rows = s.images(len(y), seed, y), classes
    else:
        grid, rows = s.images(n, seed), max(1, math.ceil(n / 8))
    if not labelled:
        return Generation(s.kind, grid, rows, None, None, [], None, 0)
    from aelab.evaluation.classifier import reference_classifier

    clf = reference_classifier(dataset)
    m = quality_samples or len(dataset.test)
    y = torch.arange(m) % classes if model.conditional else None
    fake = s.images(m, seed + 1, y)
    real = dataset.test.floats()
    fd = frechet_distance(clf, real, fake)
    acc, per_class = None, []
    if y is not None:
        right = (clf.predict(fake) == y).float()
        acc = float(right.mean())
        per_class = [float(right[y == c].mean()) for c in range(classes)]
    return Generation(s.kind, grid, rows, fd, acc, per_class, clf.test_accuracy, m)


# ------------------------------------------------------------------------------- traversals, manifold
@torch.no_grad()
def traversals(model: AutoEncoder, dataset: ImageDataset, index: int = 0, steps: int = 9, units: int = 16
               ) -> tuple[torch.Tensor, list[int], np.ndarray]:
    """Sweep each latent unit over its range with the others held at test image ``index``'s code.

    The range of a unit is the 2nd..98th percentile of the test codes (for a VAE, of the posterior means, widened
    to at least the prior's -2..2). Units are shown most-varying first, at most ``units``.

    Returns: images ``(units, steps, C, H, W)`` float in [0, 1], the unit indices, and the values ``(units, steps)``.

    Raises:
        AelabError: the code is not a vector (a VQ-VAE's grid), or ``index`` is outside the test split.
    """
    if len(model.code_shape) != 1:
        raise AelabError(f"traversals need a code vector; model {model.name!r} has codes of shape {model.code_shape}")
    test = dataset.test
    if not 0 <= index < len(test):
        raise AelabError(f"test image index {index} out of range; allowed: 0..{len(test) - 1}")
    model.eval()
    device = _device(model)
    labels = test.labels.to(device) if model.conditional else None
    sub = ImageSplit(test.images[:2000], test.labels[:2000])
    codes = torch.cat([model.encode(x, labels[w] if labels is not None else None).float().cpu()
                       for w, x in sub.batches(1000, device)])
    lo, hi = torch.quantile(codes, 0.02, dim=0), torch.quantile(codes, 0.98, dim=0)
    if isinstance(model, VariationalAutoEncoder):
        lo, hi = torch.minimum(lo, torch.full_like(lo, -2.0)), torch.maximum(hi, torch.full_like(hi, 2.0))
    order = codes.var(0).argsort(descending=True)[:units].tolist()
    y = test.labels[index:index + 1].to(device) if model.conditional else None
    base = model.encode(to_unit_float(test.images[index:index + 1], device), y).float().cpu()[0]
    values = np.stack([np.linspace(float(lo[u]), float(hi[u]), steps) for u in order])
    z = base.repeat(len(order) * steps, 1)
    for r, u in enumerate(order):
        z[r * steps:(r + 1) * steps, u] = torch.from_numpy(values[r]).float()
    yb = y.expand(len(z)) if y is not None else None
    images = model.decode(z.to(device), yb).float().clamp(0, 1).cpu()
    return images.view(len(order), steps, *images.shape[1:]), order, values


@torch.no_grad()
def manifold(model: AutoEncoder, dataset: ImageDataset, steps: int = 15, y: int | None = None
             ) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Decode a ``steps`` x ``steps`` grid of 2-D latent points: for a VAE the prior's quantiles
    ``Phi^-1(linspace(0.05, 0.95))``, otherwise the 1st..99th percentile of each unit over the test codes.

    Returns: images ``(steps, steps, C, H, W)`` (row r = the second unit's r-th value, from the top), and the
    values of the first and second unit.

    Raises:
        AelabError: the code does not have exactly 2 values.
    """
    if model.code_shape != (2,):
        raise AelabError(f"the decoded manifold needs a 2-D code; model {model.name!r} has codes of shape "
                         f"{model.code_shape}")
    model.eval()
    device = _device(model)
    if isinstance(model, VariationalAutoEncoder):
        q = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, steps)).numpy()
        u, v = q, q[::-1].copy()
    else:
        codes = torch.cat([model.encode(x).float().cpu() for _, x in dataset.test.batches(1000, device)])
        lo, hi = torch.quantile(codes, 0.01, dim=0), torch.quantile(codes, 0.99, dim=0)
        u = np.linspace(float(lo[0]), float(hi[0]), steps)
        v = np.linspace(float(hi[1]), float(lo[1]), steps)
    z = torch.tensor([[a, b] for b in v for a in u], dtype=torch.float32)
    yb = torch.full((len(z),), y if y is not None else 0, dtype=torch.long, device=device) if model.conditional \
        else None
    images = model.decode(z.to(device), yb).float().clamp(0, 1).cpu()
    return images.view(steps, steps, *images.shape[1:]), u, v
