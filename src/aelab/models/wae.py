"""The Wasserstein autoencoder with an MMD penalty (WAE-MMD; Tolstikhin et al., "Wasserstein Auto-Encoders",
ICLR 2018, algorithm 2)::

    x (N,C,H,W) --encoder (deterministic)--> z (N, d) --decoder--> x_hat (N,C,H,W)
    z~ ~ N(0, I) (N, d)                                                 prior samples, one per image

    loss per image = ||x - x_hat||^2 (summed over pixels) + lambda * MMD_k(codes z, prior samples z~)

MMD with the inverse multiquadratic kernel ``k(a, b) = C / (C + ||a - b||^2)``, summed over the scales
``C = 2 d s`` for s in ``scales`` (the paper's code uses 0.1 ... 10 times ``2 d sigma^2`` with sigma^2 = 1), and
the unbiased estimator::

    MMD = sum_{i != j} k(z_i, z_j) / (n (n-1)) + sum_{i != j} k(z~_i, z~_j) / (n (n-1)) - 2 sum_{i,j} k(z_i, z~_j) / n^2

The code is the encoder's output (no noise); new images come from decoding prior samples (sampler ``prior``).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from aelab.config import Strict, parse_config
from aelab.models.autoencoder import AEOutput, AutoEncoder
from aelab.models.measures import Measure

SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


class WassersteinConfig(Strict):
    """Settings of the WAE-MMD family (``model.settings``)."""

    weight: float = Field(10.0, gt=0)
    """lambda, the weight of the MMD penalty against the squared error per image (10 in the paper's MNIST runs)."""
    kernel: Literal["imq"] = "imq"
    """The MMD kernel: imq (inverse multiquadratic, the paper's choice for its heavier tails)."""
    scales: list[float] = Field(list(SCALES), min_length=1)
    """Kernel scales s: the MMD sums the kernels with C = 2 d s (d: the code size)."""


def imq_mmd(z: torch.Tensor, prior: torch.Tensor, scales: tuple[float, ...] | list[float] = SCALES) -> torch.Tensor:
    """The unbiased MMD estimate between codes ``z`` and prior samples ``prior``, both ``(n, d)``, with the inverse
    multiquadratic kernel summed over ``C = 2 d s`` for s in ``scales``; a scalar (0 for n < 2)."""
    n, d = z.shape
    if n < 2:
        return z.new_zeros(())
    z, prior = z.float(), prior.float()
    off = 1.0 - torch.eye(n, device=z.device)
    dist = [(a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(-1) for a, b in ((z, z), (prior, prior), (z, prior))]
    total = z.new_zeros(())
    for s in scales:
        c = 2.0 * d * s
        k_zz, k_pp, k_zp = (c / (c + dd) for dd in dist)
        total = total + ((k_zz + k_pp) * off).sum() / (n * (n - 1)) - 2.0 * k_zp.mean()
    return total


class WassersteinAutoEncoder(AutoEncoder):
    """A WAE-MMD on any aelab encoder/decoder pair with a code vector (see the module sketch).

    ``forward`` returns the reconstruction, the code ``z``, the penalty ``weight * MMD(z, z~)`` with fresh prior
    samples ``z~`` (training only) and the term ``mmd``.
    """

    family = "wae"
    layerwise = False
    measures = (Measure("test_mmd", "MMD to prior", "{:.4f}", "", "generative"),)

    def __init__(
        self,
        encoder,
        decoder,
        input_shape: tuple[int, ...],
        code_shape: tuple[int, ...],
        name: str,
        config: WassersteinConfig,
    ) -> None:
        super().__init__(encoder, decoder, input_shape, code_shape, name=name)
        self.wasserstein = config

    @classmethod
    def from_config(
        cls, spec: Any, input_shape: tuple[int, int, int], config: Any, classes: int, vectors: bool
    ) -> WassersteinAutoEncoder:
        """The body as it is (its code vector is the latent); the settings are checked here.

        Raises:
            ConfigError: a setting the family does not have, or a bad value (named, with what is allowed).
            ModelError: vector data, or a body whose code is not a vector.
        """
        from aelab.errors import ModelError
        from aelab.models.bodies import build_body
        from aelab.models.variational import refuse_vectors

        refuse_vectors(config, vectors)
        settings = parse_config(WassersteinConfig, dict(config.settings or {}), source="model.settings")
        encoder, decoder, code_shape = build_body(spec.model_copy(update={"code_activation": "identity"}), input_shape)
        if len(code_shape) != 1:
            raise ModelError(
                f"model {config.label!r}: a WAE matches a code vector to N(0, I); this body's code is a "
                f"{'x'.join(map(str, code_shape))} map: allowed: an mlp or res spec (code_size)"
            )
        return cls(encoder, decoder, input_shape, code_shape, config.label, settings)

    # ------------------------------------------------------------------------------------- protocol
    @classmethod
    def loss_unit(cls, loss: str) -> str:
        return "squared error per image (+ lambda MMD)"

    @classmethod
    def figure_line(cls, config: Any) -> str:
        return "WAEs"

    @property
    def samplers(self) -> tuple[str, ...]:
        return ("prior", "gmm")

    def prior(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` draws ``(n, d)`` of the prior N(0, I)."""
        return torch.randn(n, *self.code_shape, generator=generator)

    def prior_quantile(self, p: torch.Tensor) -> torch.Tensor:
        """Quantiles of N(0, 1)."""
        return torch.distributions.Normal(0.0, 1.0).icdf(p)

    @torch.no_grad()
    def test_measures(self, split: Any, seed: int = 0) -> dict:
        """``test_mmd``: the MMD between the codes of (up to) 2,000 test images and as many prior samples (seeded)."""
        self.eval()
        x = split.floats(self.device)[:2000]
        z = self.encode(x).flatten(1)
        prior = self.prior(len(z), torch.Generator().manual_seed(seed)).to(z.device)
        return {"test_mmd": float(imq_mmd(z, prior, self.wasserstein.scales))}

    def describe(self) -> str:
        return f"WAE-MMD (lambda {self.wasserstein.weight:g}, {self.wasserstein.kernel} kernel)"

    # ------------------------------------------------------------------------------------------ verbs
    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> AEOutput:
        z = self.encode(x)
        if not self.training:
            return AEOutput(self.decoder(z), z, None)
        mmd = imq_mmd(z.flatten(1), torch.randn_like(z.flatten(1).float()), self.wasserstein.scales)
        return AEOutput(self.decoder(z), z, self.wasserstein.weight * mmd, {"mmd": mmd})

    def reconstruction_loss(self, out: AEOutput, x: torch.Tensor, loss_fn) -> torch.Tensor:
        """The paper's cost c(x, x_hat) = ||x - x_hat||^2, summed over pixels, averaged over the batch (the
        training config's loss is not used)."""
        return (out.reconstruction.float() - x).pow(2).flatten(1).sum(1).mean()
