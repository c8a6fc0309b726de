"""Settings that make a spec a model variant: code sparsity (:class:`SparsityConfig`), a variational
autoencoder (:class:`VariationalConfig`) or a vector-quantized one (:class:`QuantizerConfig`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

from aelab.config.base import Strict, short_form


class SparsityConfig(Strict):
    """Sparsity of the code (Jian Zhong, "Autoencoders with PyTorch: Full Code Guide").

    * ``topk``: keep the ``k`` largest units of each sample's code, zero the rest (CLI ``topk:K``).
    * ``lifetime``: winner-take-all across the batch: keep each unit's ``k`` largest values (or the top
      ``fraction`` of the batch), zero the rest; training only (CLI ``lifetime:K`` or ``lifetime:0.05``).
    * ``l1``: add ``weight * mean(|z|)`` to the loss (CLI ``l1:WEIGHT``).
    * ``kl``: add ``weight * mean_j KL(rho || rho_hat_j)``, rho_hat_j the batch mean of unit j; needs codes in
      (0, 1), e.g. ``code_activation: sigmoid`` (CLI ``kl:RHO:WEIGHT``).
    """

    kind: Literal["topk", "lifetime", "l1", "kl"]
    """topk, lifetime, l1 or kl."""
    k: Optional[int] = Field(None, ge=1)
    """Units kept per sample (topk) or per unit across the batch (lifetime)."""
    fraction: Optional[float] = None
    """Share of the batch kept per unit (lifetime), in (0, 1]."""
    weight: Optional[float] = Field(None, gt=0)
    """The penalty's lambda (l1, kl), > 0."""
    rho: Optional[float] = None
    """Target mean activation of each unit (kl), in (0, 1)."""

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        out = short_form(value, {"topk": ["k"], "lifetime": ["k"], "l1": ["weight"], "kl": ["rho", "weight"]})
        if isinstance(value, str) and out["kind"] == "lifetime" and isinstance(out.get("k"), float):
            out["fraction"] = out.pop("k")  # lifetime:0.05 is a share of the batch, lifetime:10 a count
        return out

    @model_validator(mode="after")
    def _complete(self) -> SparsityConfig:
        if self.kind == "topk" and self.k is None:
            raise ValueError("topk needs k, the number of code units kept per sample (topk:16)")
        if self.kind == "lifetime":
            if (self.k is None) == (self.fraction is None):
                raise ValueError("lifetime needs k (a count, lifetime:10) or a fraction of the batch (lifetime:0.05)")
            if self.fraction is not None and not 0 < self.fraction <= 1:
                raise ValueError(f"lifetime fraction: got {self.fraction}; allowed: (0, 1]")
        if self.kind in ("l1", "kl") and self.weight is None:
            raise ValueError(f"{self.kind} needs weight, the penalty's lambda > 0")
        if self.kind == "kl" and (self.rho is None or not 0 < self.rho < 1):
            raise ValueError(f"kl rho: got {self.rho}; allowed: 0 < rho < 1")
        return self


class VariationalConfig(Strict):
    """Make the autoencoder a variational one (Kingma & Welling 2014, "Auto-Encoding Variational Bayes").

    The encoder outputs a mean and a log-variance per latent unit; training samples ``z = mu + sigma * eps``
    (reparameterization) and minimizes the negative ELBO in nats per image: the decoder's negative
    log-likelihood of the image plus ``beta`` times KL(q(z|x) || N(0, I)). ``beta`` > 1 is the beta-VAE
    (Higgins et al. 2017); the warm-up ramps beta up from 0 (Bowman et al. 2016; cyclical: Fu et al. 2019);
    free bits keep each unit's KL at no less than ``free_bits`` nats in the optimized loss (Kingma et al. 2016).
    """

    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    """Decoder likelihood p(x|z): bernoulli (pixels in [0, 1] as probabilities; the common choice for MNIST-like
    data) or gaussian (mean = the decoder's output, standard deviation ``sigma``)."""
    sigma: Optional[float] = Field(None, gt=0)
    """gaussian: the fixed standard deviation in pixel units, e.g. 0.1; None = learned (one value for all pixels)."""
    beta: float = Field(1.0, ge=0)
    """Weight of the KL term (1 = the VAE; > 1 the beta-VAE), >= 0."""
    warmup_epochs: int = Field(0, ge=0)
    """KL warm-up: beta ramps linearly from 0 to ``beta`` over this many epochs (per cycle with the cyclical
    schedule); 0 = none."""
    schedule: Literal["linear", "cyclical"] = "linear"
    """linear (one ramp, then ``beta``) or cyclical (the training split into ``cycles`` cycles, each ramping over
    its first ``warmup_epochs`` epochs)."""
    cycles: int = Field(4, ge=1)
    """Cycles of the cyclical schedule."""
    free_bits: float = Field(0.0, ge=0)
    """Free bits per latent unit (nats): the optimized KL term uses max(KL_j, free_bits) for each unit j, with
    KL_j averaged over the batch; 0 = off. The reported ELBO always uses the true KL."""
    conditional: bool = False
    """Conditional VAE (Sohn et al. 2015): the one-hot class label enters the encoder (as extra input channels)
    and the decoder (appended to the code); generation of a chosen class. Needs labelled data."""

    @model_validator(mode="after")
    def _sigma_needs_gaussian(self) -> VariationalConfig:
        if self.likelihood == "bernoulli" and self.sigma is not None:
            raise ValueError(
                "sigma: a bernoulli likelihood has no sigma; allowed: set likelihood: gaussian, or leave sigma out"
            )
        return self


class PixelCNNPriorConfig(Strict):
    """A gated PixelCNN prior over the index grid of a trained VQ-VAE (van den Oord et al. 2016 and 2017): a
    second stage trained on the frozen VQ-VAE's codes of the training images. It gives the VQ-VAE a sampler
    (``pixelcnn``) and an entropy model of its codes (bits per image from real range-coded files)."""

    vqvae: Path
    """The trained VQ-VAE it builds on: its run folder (or that folder's ``model/``), stored as an absolute path.
    Its model config must be this one's without ``prior``."""
    channels: int = Field(64, ge=1)
    """C, the features of the vertical and horizontal stacks."""
    layers: int = Field(6, ge=1)
    """Gated layers; the vertical receptive field grows by kernel // 2 rows per layer."""
    kernel: int = Field(3, ge=3)
    """Odd kernel width of the stacks (3, 5, ...)."""
    hidden: int = Field(256, ge=1)
    """Channels of the output head (ReLU, 1x1 conv, ReLU, 1x1 conv to K logits)."""

    @field_validator("vqvae")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return Path(os.path.abspath(v.expanduser()))

    @field_validator("kernel")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"got {v}; allowed: an odd width >= 3 (3, 5, 7, ...)")
        return v


class QuantizerConfig(Strict):
    """Make the autoencoder a VQ-VAE (van den Oord et al. 2017, "Neural Discrete Representation Learning").

    Each position of the encoder's last feature map (D channels) is replaced by the nearest of
    ``codebook_size`` codebook vectors; gradients pass straight through to the encoder. The loss adds the
    codebook term ||sg[z_e] - e||^2 (unless the codebook follows an EMA of its assigned vectors) and
    ``commitment`` * ||z_e - sg[e]||^2. The code is a grid of indices: exactly h * w * log2(K) bits per image.
    """

    codebook_size: int = Field(256, ge=2)
    """K, the number of codebook vectors (>= 2); each index costs log2(K) bits."""
    commitment: float = Field(0.25, ge=0)
    """beta, the weight of the commitment loss (0.25 in the paper)."""
    ema: bool = True
    """Update the codebook as an exponential moving average of the encoder vectors assigned to each entry
    (the paper's appendix; Razavi et al. 2019) instead of by gradients."""
    decay: float = Field(0.99, gt=0, lt=1)
    """EMA decay of the codebook and of the usage counts."""
    restart_threshold: float = Field(1.0, ge=0)
    """Dead-code restarts: an entry whose EMA usage falls below this many assignments per batch is moved onto
    a random encoder vector of the batch (training only); 0 = no restarts."""
    prior: Optional[PixelCNNPriorConfig] = None
    """A PixelCNN prior trained on the frozen VQ-VAE named in it ({vqvae: RUN_FOLDER, channels: 64, ...}); the
    run trains only the prior. None: the VQ-VAE itself is trained."""
