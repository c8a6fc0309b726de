"""A VAE's likelihood bounds and latent use, in nats per image (what its test measures are made of).

* ELBO (Kingma & Welling 2014): ``E_q[log p(x|z)] - KL(q(z|x) || N(0, I))``, the expectation estimated with one
  sample of z per image, the KL in closed form.
* IWAE bound (Burda et al. 2016): ``log 1/k sum_i p(x|z_i) p(z_i) / q(z_i|x)``, z_i ~ q(z|x); at least the ELBO
  in expectation, tighter as k grows; with k = 1 it is the one-sample ELBO with a sampled KL.
* Active units (Burda et al. 2016): unit u is active when ``Var_x(E_q[z_u|x]) > 0.01`` over the test set.

The functions take any model with the VAE verbs (``posterior``, ``decode``, ``log_likelihood``).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from aelab.data.dataset import ImageSplit, to_unit_float

LOG_2PI = math.log(2 * math.pi)
ACTIVE_THRESHOLD = 0.01


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per unit: ``0.5 (mu^2 + exp(logvar) - 1 - logvar)``, same shape."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def normal_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) summed over all but the first dim: ``(N,)``."""
    return (-0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp())).flatten(1).sum(1)


def _elbo_terms(
    model: Any, x: torch.Tensor, y: torch.Tensor | None, mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    z = mu + eps.to(mu) * (0.5 * logvar).exp()
    return model.log_likelihood(model.decode(z, y), x), kl_normal(mu, logvar).flatten(1).sum(1)


@torch.no_grad()
def elbo(
    model: Any, x: torch.Tensor, y: torch.Tensor | None = None, eps: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image ``(N,)``: ``log p(x | z)`` with ``z = mu + sigma * eps`` (``eps`` ``(N, *code_shape)``; None:
    drawn from torch's generator) and the closed-form KL, both in nats. ELBO = the first minus the second."""
    mu, logvar = model.posterior(x, y)
    return _elbo_terms(model, x, y, mu, logvar, torch.randn_like(mu) if eps is None else eps)


def log_weights(
    model: Any, x: torch.Tensor, y: torch.Tensor | None, mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """The importance weights' logs ``log p(x|z_i) + log p(z_i) - log q(z_i|x)``, ``(k, N)`` in nats, for the
    posterior ``mu``, ``logvar`` ``(N, *code_shape)`` of ``x`` and the ``(k, N, *code_shape)`` standard normal
    draws ``eps`` (``z_i = mu + sigma * eps_i``). The k samples of all N images are decoded in one batch of k * N."""
    k, n = eps.shape[:2]
    z = (mu + eps.to(mu) * (0.5 * logvar).exp()).flatten(0, 1)  # (k * N, *code_shape), sample-major
    reps = (k,) + (1,) * (x.dim() - 1)
    log_lik = model.log_likelihood(model.decode(z, None if y is None else y.repeat(k)), x.repeat(reps))
    many = (k,) + (1,) * (mu.dim() - 1)
    log_w = (
        log_lik
        + normal_log_density(z, torch.zeros_like(z), torch.zeros_like(z))
        - normal_log_density(z, mu.repeat(many), logvar.repeat(many))
    )
    return log_w.view(k, n)


@torch.no_grad()
def iwae_bound(
    model: Any, x: torch.Tensor, y: torch.Tensor | None = None, k: int = 64, eps: torch.Tensor | None = None
) -> torch.Tensor:
    """The importance-weighted lower bound on log p(x), per image ``(N,)``, nats. The k samples of all N images
    are decoded in one batch of k * N.

    Args:
        x: float images ``(N, C, H, W)`` in [0, 1]; y: their labels ``(N,)`` (a conditional VAE) or None.
        eps: ``(k, N, *code_shape)`` standard normal draws (None: drawn from torch's generator).
    """
    mu, logvar = model.posterior(x, y)
    if eps is None:
        eps = torch.randn(k, *mu.shape, device=mu.device)
    return torch.logsumexp(log_weights(model, x, y, mu, logvar, eps), 0) - math.log(eps.shape[0])


@torch.no_grad()
def variational_metrics(
    model: Any, split: ImageSplit, k: int = 64, iwae_images: int = 1000, seed: int = 0, batch_size: int = 500
) -> dict:
    """Test-set measures of a VAE (nats per image): ``test_nelbo`` (-ELBO), ``test_recon_nll``, ``test_kl`` on the
    whole split; ``test_iwae_nll`` (-IWAE bound, k samples) and ``test_nelbo_subset`` (the -ELBO of the same
    images, from the same pass as ``test_nelbo``) on its first ``iwae_images`` images; ``active_units`` (of
    ``latent_units``). Seeded: same numbers for the same model."""
    model.eval()
    device = model.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        labels = split.labels.to(device)
        lls, kls, means = [], [], []
        for where, x in split.batches(batch_size, device):
            mu, logvar = model.posterior(x, labels[where])
            ll, kl_i = _elbo_terms(model, x, labels[where], mu, logvar, torch.randn_like(mu))
            lls.append(ll.double())
            kls.append(kl_i.double())
            means.append(mu.flatten(1).double())
        log_lik, kl = torch.cat(lls), torch.cat(kls)
        sub = min(iwae_images, len(split))
        step = max(1, batch_size // 10)  # images per IWAE batch: k times as many decodes
        bounds = [
            iwae_bound(
                model, to_unit_float(split[i : min(sub, i + step)], device), labels[i : min(sub, i + step)], k
            ).double()
            for i in range(0, sub, step)
        ]
        iw = torch.cat(bounds) if bounds else torch.zeros(0, dtype=torch.float64)
    variances = torch.cat(means).var(0).cpu()
    nelbo = -(log_lik - kl)
    return {
        "test_nelbo": float(nelbo.mean()),
        "test_recon_nll": float(-log_lik.mean()),
        "test_kl": float(kl.mean()),
        "test_iwae_nll": float(-iw.mean()),
        "test_nelbo_subset": float(nelbo[:sub].mean()),
        "iwae_k": k,
        "iwae_images": sub,
        "active_units": int((variances > ACTIVE_THRESHOLD).sum()),
        "latent_units": int(variances.numel()),
        "latent_variances": [round(float(v), 5) for v in variances],
    }


@torch.no_grad()
def iwae_nll(
    model: Any, split: ImageSplit, k: int = 5000, seed: int = 0, decodes: int | None = None, on_step: Any = None
) -> dict:
    """The importance-weighted estimate of the test negative log-likelihood: ``-log p(x)`` <= -IWAE bound with
    ``k`` samples per image (Burda et al. 2016; k = 5,000 is the literature's protocol), averaged over ``split``
    (nats per image), beside the -ELBO of the same images. One pass decodes at most ``decodes`` samples: the k
    samples of several images when k is smaller, else an image's k samples in parts whose log weights are
    joined by one logsumexp. The samples are drawn per image group before the parts, so ``decodes`` changes the
    speed and not the estimate. None: 1,000 on a CPU (2.5 s for 16 images of a conv VAE at k = 5,000 on a
    2-core CPU, against 8.1 s with 20,000: the smaller batches stay in cache), 20,000 on a GPU.

    Args:
        split: the images (uint8 ``(N, C, H, W)``) and their labels (used by a conditional VAE).
        seed: seeds the samples (a CPU generator: the same on every device).
        on_step: called with the number of images done after every pass (a progress bar).

    Returns:
        ``{nll, nelbo, k, images, bits_per_dim}``: nll and nelbo in nats per image; bits_per_dim = nll / (ln 2
        x pixels per image).
    """
    model.eval()
    g = torch.Generator().manual_seed(seed)
    if decodes is None:
        decodes = 20_000 if model.device.type == "cuda" else 1000
    per = max(1, decodes // k)  # images per pass
    part_k = max(1, decodes // per)  # samples per pass of each image: all k unless k > decodes
    nll = nelbo = 0.0
    for start in range(0, len(split), per):
        part = slice(start, min(start + per, len(split)))
        x = to_unit_float(split[part], model.device)
        y = split.labels[part].to(model.device)
        mu, logvar = model.posterior(x, y)  # once for the group: its parts and the ELBO share it
        eps = torch.randn(k, *mu.shape, generator=g)
        log_w = torch.cat([log_weights(model, x, y, mu, logvar, eps[i : i + part_k]) for i in range(0, k, part_k)])
        nll -= float((torch.logsumexp(log_w.double(), 0) - math.log(k)).sum())
        log_lik, kl = _elbo_terms(model, x, y, mu, logvar, torch.randn(mu.shape, generator=g))
        nelbo -= float((log_lik - kl).double().sum())
        if on_step is not None:
            on_step(part.stop)
    n = max(len(split), 1)
    pixels = split.pixels if len(split) else 1
    return {
        "nll": nll / n,
        "nelbo": nelbo / n,
        "k": k,
        "images": len(split),
        "bits_per_dim": nll / n / math.log(2) / pixels,
    }
