"""The variational autoencoder: VAE, beta-VAE with KL warm-up and free bits, and the conditional VAE.

Sources: Kingma & Welling 2014 ("Auto-Encoding Variational Bayes": reparameterization, the ELBO); Higgins et
al. 2017 (beta-VAE); Bowman et al. 2016 (KL warm-up); Fu et al. 2019 (cyclical schedule); Kingma et al. 2016
(free bits); Sohn et al. 2015 (conditional VAE); Burda et al. 2016 (the importance-weighted bound)::

    x (N,C,H,W) [+ one-hot y as K channels] --encoder--> (N, 2d) --split--> mu, log sigma^2 (N, d)
    z = mu + sigma * eps  (training; eps ~ N(0, I))      z = mu  (eval: the posterior mean is the code)
    z [+ one-hot y] --decoder--> x_hat (N,C,H,W): Bernoulli probabilities or the Gaussian mean

    loss per image (nats) = -log p(x|z) + beta_t * KL(q(z|x) || N(0, I))

All terms are in nats per image (summed over pixels and latent units, averaged over the batch).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from aelab.config import VariationalConfig
from aelab.errors import ConfigError, ModelError
from aelab.models.autoencoder import AEOutput, AutoEncoder
from aelab.models.bounds import LOG_2PI, kl_normal, variational_metrics
from aelab.models.measures import Measure

GENERATIVE = "generative"


def beta_at(config: VariationalConfig, epoch: int, epochs: int) -> float:
    """The KL weight of epoch ``epoch`` (1-based) of ``epochs``.

    linear: ``beta * min(1, (epoch - 1) / warmup_epochs)`` (0 in the first epoch); cyclical: the same ramp
    restarted at the start of each of ``cycles`` equal cycles. Without warm-up, ``beta`` throughout.
    """
    if config.warmup_epochs == 0:
        return config.beta
    t = epoch - 1
    if config.schedule == "cyclical":
        t = t % max(1, math.ceil(epochs / config.cycles))
    return config.beta * min(1.0, t / config.warmup_epochs)


def one_hot_maps(y: torch.Tensor, classes: int, like: torch.Tensor) -> torch.Tensor:
    """One-hot labels ``(N,)`` as ``(N, classes, *like.shape[2:])`` (constant over positions), dtype of ``like``."""
    hot = F.one_hot(y, classes).to(like.dtype)
    return hot.view(*hot.shape, *([1] * (like.dim() - 2))).expand(-1, -1, *like.shape[2:])


class VariationalAutoEncoder(AutoEncoder):
    """A VAE on any aelab encoder/decoder pair (see the module sketch).

    Args:
        encoder: maps ``(N, C[+K], H, W)`` to ``(N, 2d, ...)``: the means, then the log-variances, along dim 1.
        decoder: maps ``(N, d[+K], ...)`` to images ``(N, C, H, W)`` (a sigmoid output for bernoulli).
        input_shape: ``(C, H, W)``; code_shape: ``(d, ...)``, the latent shape.
        config: the :class:`~aelab.config.VariationalConfig`.
        classes: K, the number of classes of a conditional VAE (0 otherwise).

    ``forward`` returns the reconstruction (the decoder's mean), the sample ``z``, the penalty
    ``beta_t * KL`` (with free bits) and the terms ``kl`` (the true KL, nats per image) and ``beta``.
    """

    beta: torch.Tensor
    family = "vae"
    nats = True
    layerwise = False
    measures = (
        Measure("test_nelbo", "-ELBO (nats)", "{:.2f}", "nats per image", GENERATIVE),
        Measure("test_iwae_nll", "-IWAE bound (nats)", "{:.2f}", "nats per image", GENERATIVE),
        Measure("test_kl", "KL (nats)", "{:.2f}", "nats per image", GENERATIVE),
        Measure("active_units", "active units", "{}", "", GENERATIVE),
    )

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        input_shape: tuple[int, ...],
        code_shape: tuple[int, ...],
        name: str,
        config: VariationalConfig,
        classes: int = 0,
    ) -> None:
        super().__init__(encoder, decoder, input_shape, code_shape, name=name)
        self.variational = config
        self.classes = classes
        self.register_buffer("beta", torch.tensor(float(beta_at(config, 1, 1))))
        self.log_sigma = (
            nn.Parameter(torch.zeros(())) if config.likelihood == "gaussian" and config.sigma is None else None
        )

    @classmethod
    def from_config(
        cls, spec: Any, input_shape: tuple[int, int, int], config: Any, classes: int, vectors: bool
    ) -> VariationalAutoEncoder:
        """The encoder is the body with twice the code's values (means and log-variances); a conditional VAE's
        encoder takes K more input channels (the one-hot label) and its decoder K more code values.

        Raises:
            ModelError: vector data, or a conditional VAE on data with fewer than 2 classes.
        """
        from aelab.models.bodies import build_body, code_channels, with_code

        refuse_vectors(config, vectors)
        variational = config.variational
        k = classes if variational.conditional else 0
        if variational.conditional and classes < 2:
            raise ModelError(
                f"model {config.label!r} is a conditional VAE and needs labelled data with 2 or more "
                f"classes; this data has {classes}: allowed: a dataset with classes (a folder with one "
                "sub-folder per class), or variational.conditional: false"
            )
        d = code_channels(spec)
        c, h, w = input_shape
        encoder, _, encoded = build_body(with_code(spec, 2 * d), (c + k, h, w))  # means and log-variances: 2d
        _, decoder, _ = build_body(with_code(spec, d + k), input_shape)
        return cls(encoder, decoder, input_shape, (d, *encoded[1:]), config.label, variational, k)

    # ------------------------------------------------------------------------------------- protocol
    @property
    def conditional(self) -> bool:
        """True when the model takes class labels with every image and code (a conditional VAE)."""
        return self.classes > 0

    @classmethod
    def loss_unit(cls, loss: str) -> str:
        return "-log p(x|z), nats per image"

    @classmethod
    def figure_line(cls, config: Any) -> str:
        return "VAEs (posterior mean)"

    @property
    def samplers(self) -> tuple[str, ...]:
        return ("prior",) if self.conditional else ("prior", "gmm")

    def prior(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` draws ``(n, *code_shape)`` of the prior N(0, I)."""
        return torch.randn(n, *self.code_shape, generator=generator)

    def prior_quantile(self, p: torch.Tensor) -> torch.Tensor:
        """Quantiles of N(0, 1)."""
        return torch.distributions.Normal(0.0, 1.0).icdf(p)

    def lacks(self, need: str) -> Optional[str]:
        if need == "unlabelled" and self.conditional:
            return "a conditional model needs the class label with every image and code"
        if need == "likelihood":
            return None
        return super().lacks(need)

    def check_training(self, training: Any, one_class: bool, binary: bool = False) -> None:
        """Refuses, besides the base checks, denoising and one-class data for a conditional VAE (aelab's
        denoising and anomaly measures reconstruct images without their labels), and a gaussian likelihood of
        binarized images (their pixels are 0 or 1: a bernoulli likelihood)."""
        super().check_training(training, one_class, binary)
        if binary and self.variational.likelihood != "bernoulli":
            raise ConfigError(
                f"data.binarize: binarized images have pixels of 0 or 1, whose likelihood is bernoulli, but model "
                f"{self.name!r} has a {self.variational.likelihood} likelihood; allowed: "
                "model.variational.likelihood: bernoulli, or data.binarize: null"
            )
        if self.conditional and (training.corruption is not None or one_class):
            key = "training.corruption" if training.corruption is not None else "data.normal_classes"
            raise ConfigError(
                f"{key}: model {self.name!r} is conditional, and aelab's denoising and anomaly measures "
                "reconstruct images without their labels; allowed for it: null (an unconditional model "
                "for denoising or anomaly detection)"
            )

    def test_measures(self, split: Any, seed: int = 0) -> dict:
        """-ELBO, -IWAE bound, KL and active units (:func:`aelab.models.bounds.variational_metrics`); no code
        sparsity measures (the posterior mean is never exactly zero)."""
        return {
            **variational_metrics(self, split, seed=seed),
            "code_l0": None,
            "dead_units": None,
            "code_mean_abs": None,
        }

    def describe(self) -> str:
        v = self.variational
        return f"{'conditional ' if v.conditional else ''}VAE ({v.likelihood}, beta {v.beta:g})"

    def save_meta(self) -> dict:
        return {"classes": self.classes} if self.conditional else {}

    # ------------------------------------------------------------------------------------------ verbs
    def _labels(self, y: torch.Tensor | None) -> torch.Tensor:
        if y is None:
            raise ModelError(
                f"model {self.name!r} is a conditional VAE: it needs the class labels y with the images "
                f"or codes; allowed: class indices 0..{self.classes - 1}"
            )
        return y

    def posterior(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x): mean and log-variance, each ``(N, *code_shape)``, float32."""
        if self.conditional:
            x = torch.cat([x, one_hot_maps(self._labels(y), self.classes, x)], 1)
        mu, logvar = self.encoder(x).float().chunk(2, dim=1)
        return mu, logvar

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The posterior mean ``(N, *code_shape)``: the code of ``x`` (what tables and analyses use)."""
        return self.posterior(x, y)[0]

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's mean ``(N, C, H, W)`` for latents ``z`` ``(N, *code_shape)`` (and labels ``y``)."""
        if self.conditional:
            z = torch.cat([z, one_hot_maps(self._labels(y), self.classes, z)], 1)
        return self.decoder(z)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> AEOutput:
        mu, logvar = self.posterior(x, y)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        kl_units = kl_normal(mu, logvar).flatten(1)  # (N, d)
        kl = kl_units.sum(1).mean()
        fb = self.variational.free_bits
        optimized = kl if fb == 0 else kl_units.mean(0).clamp(min=fb).sum()
        return AEOutput(self.decode(z, y), z, self.beta * optimized, {"kl": kl, "beta": self.beta})

    # ---------------------------------------------------------------------------------- likelihoods
    @property
    def sigma(self) -> torch.Tensor:
        """The Gaussian likelihood's standard deviation (a scalar tensor; learned or fixed)."""
        if self.log_sigma is not None:
            return self.log_sigma.exp()
        return torch.tensor(self.variational.sigma or 1.0)

    def log_likelihood(self, mean: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x | z) per image ``(N,)`` in nats, given the decoder's output ``mean`` for z.

        bernoulli: ``sum x log m + (1 - x) log(1 - m)`` (torch's BCE, which clamps the logs at -100);
        gaussian: ``-sum [(x - m)^2 / (2 sigma^2) + log sigma + log(2 pi) / 2]``.
        """
        if self.variational.likelihood == "bernoulli":
            return -F.binary_cross_entropy(mean.float(), x, reduction="none").flatten(1).sum(1)
        log_sigma = (
            self.log_sigma if self.log_sigma is not None else torch.tensor(math.log(self.variational.sigma or 1.0))
        )
        d = x[0].numel()
        return -(
            (x - mean.float()).pow(2).flatten(1).sum(1) / (2 * (2 * log_sigma).exp()) + d * (log_sigma + 0.5 * LOG_2PI)
        )

    def reconstruction_loss(self, out: AEOutput, x: torch.Tensor, loss_fn) -> torch.Tensor:
        """-log p(x | z) in nats per image, averaged over the batch (the training config's loss is not used)."""
        return -self.log_likelihood(out.reconstruction, x).mean()

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Set the KL weight of this epoch (:func:`beta_at`); no host sync."""
        self.beta.fill_(beta_at(self.variational, epoch, epochs))


def refuse_vectors(config: Any, vectors: bool) -> None:
    """Refuse vector data for a generative family (it models images in [0, 1]).

    Raises:
        ModelError: ``vectors`` is true.
    """
    if vectors:
        raise ModelError(
            f"model {config.label!r} is generative and models images in [0, 1]; vector data is "
            "standardized, not images: allowed there: deterministic MLP presets and specs"
        )
