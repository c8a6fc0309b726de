"""A VQ-VAE with a learned prior over its index grid: the second stage of van den Oord et al. 2017 (sec. 3.3), a
gated PixelCNN (:mod:`aelab.models.pixelcnn`) trained on the codes of a frozen, already trained VQ-VAE::

    x (N,C,H,W) --frozen VQ-VAE encoder + codebook--> indices (N, h, w) --PixelCNN--> logits (N, K, h, w)
    loss per image = -log p(indices) = sum over the h*w positions of the cross-entropy (nats)

The VQ-VAE's weights come from the run named in ``quantizer.prior.vqvae`` and are never updated (its BatchNorm
stays in eval mode); the run's reconstructions are the VQ-VAE's. The prior gives the model a sampler
(``pixelcnn``: ancestral sampling position by position) and an entropy model of its codes: each index's
probability given those before it, what a range coder needs (:meth:`PixelCNNPriorVQ.index_conditionals`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import torch

from aelab.errors import ConfigError, ModelError
from aelab.models.autoencoder import CONFIG_NAME, WEIGHTS_NAME, AEOutput
from aelab.models.measures import Measure
from aelab.models.pixelcnn import GatedPixelCNN
from aelab.models.quantizer import VQAutoEncoder


def _model_folder(path: Path) -> Path:
    """The saved-model folder of a run folder (its ``model/``), or ``path`` when it is one.

    Raises:
        ModelError: neither holds a saved model.
    """
    for folder in (path / "model", path):
        if (folder / CONFIG_NAME).is_file():
            return folder
    raise ModelError(
        f"model.quantizer.prior.vqvae: {str(path)!r} is not a finished run folder or saved model (no "
        f"{CONFIG_NAME}); allowed: the folder of a trained VQ-VAE run, e.g. runs/<experiment>/vqvae-conv-<id>"
    )


def _frozen_vqvae(spec: Any, config: Any, input_shape: tuple[int, ...], vectors: bool) -> VQAutoEncoder:
    """The trained VQ-VAE of ``config.quantizer.prior.vqvae``: built on ``spec`` from ``config`` less the prior,
    after its saved config is checked to be that, and given its saved weights.

    Raises:
        ModelError: not a saved model, not a VQ-VAE, another model config or input shape, or weights that do not fit.
    """
    import json

    from safetensors.torch import load_file

    from aelab.config import ModelConfig

    path = config.quantizer.prior.vqvae
    folder = _model_folder(path)
    where = f"model.quantizer.prior.vqvae: {str(path)!r}"
    try:
        meta = json.loads((folder / CONFIG_NAME).read_text())
        theirs = ModelConfig.model_validate(meta["model"]).filled().model_copy(update={"name": None})
        their_shape = tuple(int(v) for v in meta["input_shape"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{where} does not hold an aelab model config ({type(exc).__name__})") from None
    if theirs.quantizer is None or theirs.quantizer.prior is not None:
        raise ModelError(
            f"{where} holds {theirs.label!r}, not a VQ-VAE; a PixelCNN prior models the index grid of a VQ-VAE: "
            "allowed: a VQ-VAE run (e.g. --model vqvae-conv)"
        )
    own = config.model_copy(update={"quantizer": config.quantizer.model_copy(update={"prior": None}), "name": None})
    if own.model_dump(mode="json") != theirs.model_dump(mode="json") or their_shape != tuple(input_shape):
        raise ModelError(
            f"{where} is {theirs.label!r} on {'x'.join(map(str, their_shape))} images; this model is "
            f"{own.label!r} on {'x'.join(map(str, input_shape))}; allowed: the VQ-VAE's own model config (preset "
            "and quantizer settings) and data, with prior added"
        )
    vq = VQAutoEncoder.from_config(spec, input_shape, own, 1, vectors)  # type: ignore[arg-type]
    try:
        vq.load_state_dict(load_file(str(folder / WEIGHTS_NAME)))
    except Exception as exc:  # safetensors and torch raise several types for a bad or foreign file
        raise ModelError(
            f"{where}: its {WEIGHTS_NAME} does not hold the VQ-VAE's weights ({type(exc).__name__})"
        ) from None
    return vq


class PixelCNNPriorVQ(VQAutoEncoder):
    """A frozen VQ-VAE and a gated PixelCNN over its index grid (see the module sketch); only the PixelCNN trains.

    ``forward`` returns the reconstruction (eval mode; in training the input, unused), the quantized map, no
    penalty, and the terms ``nll`` (nats per image, the loss) and ``bits_per_index``.
    """

    family = "vqvae-pixelcnn"
    nats = True
    measures = (  # type: ignore[assignment]
        *VQAutoEncoder.measures,
        Measure("prior_bits_per_image", "PixelCNN NLL (bits/image)", "{:.1f}", "bits", "generative"),
        Measure("prior_bits_per_index", "PixelCNN NLL (bits/index)", "{:.3f}", "bits", "generative"),
    )

    def __init__(self, vq: VQAutoEncoder, name: str, settings: Any) -> None:
        super().__init__(vq.encoder, vq.decoder, vq.input_shape, vq.code_shape, name, vq.quantizer.config)
        self.quantizer.load_state_dict(vq.quantizer.state_dict())
        for p in self.parameters():
            p.requires_grad_(False)
        self.settings = settings
        self.prior_net = GatedPixelCNN(
            self.index_levels, settings.channels, settings.layers, settings.kernel, settings.hidden
        )
        self.train(self.training)

    @classmethod
    def from_config(
        cls, spec: Any, input_shape: tuple[int, int, int], config: Any, classes: int, vectors: bool
    ) -> PixelCNNPriorVQ:
        """The VQ-VAE of ``quantizer.prior.vqvae`` (loaded, checked, frozen) and a fresh PixelCNN.

        Raises:
            ModelError: no quantizer prior in the config, or the VQ-VAE run is missing, not a VQ-VAE, or another
                model config or image shape (see :func:`_frozen_vqvae`).
        """
        if config.quantizer is None or config.quantizer.prior is None:
            raise ModelError(
                f"model {config.label!r}: a PixelCNN prior is given as quantizer: {{prior: {{vqvae: RUN_FOLDER}}}} "
                "on the VQ-VAE's model config"
            )
        vq = _frozen_vqvae(spec, config, input_shape, vectors)
        return cls(vq, config.label, config.quantizer.prior)

    def train(self, mode: bool = True) -> PixelCNNPriorVQ:
        """Training mode for the PixelCNN only: the frozen VQ-VAE (BatchNorm, codebook) stays in eval mode."""
        super().train(mode)
        for part in (self.encoder, self.decoder, self.quantizer):
            part.eval()
        return self

    # ------------------------------------------------------------------------------------- protocol
    @classmethod
    def loss_unit(cls, loss: str) -> str:
        return "nats per image (PixelCNN NLL of the index grid)"

    @property
    def samplers(self) -> tuple[str, ...]:
        return ("pixelcnn", "categorical")

    def prior(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` quantized maps ``(n, D, h, w)`` of index grids drawn from the PixelCNN (on the CPU)."""
        self.eval()
        grids = self.prior_net.sample(n, tuple(self.code_shape[1:]), generator)  # type: ignore[arg-type]
        return self.quantizer.lookup(grids.to(self.device)).cpu()

    def check_training(self, training: Any, one_class: bool, binary: bool = False) -> None:
        """Refuse a weight average (its BatchNorm recomputation would touch the frozen VQ-VAE) and corruption.

        Raises:
            ConfigError: ``training.ema_decay`` or ``training.corruption`` set.
        """
        super().check_training(training, one_class, binary)
        for key in ("ema_decay", "corruption"):
            if getattr(training, key) is not None:
                raise ConfigError(
                    f"training.{key}: a PixelCNN prior trains on the frozen VQ-VAE's codes of clean images; "
                    "allowed for it: null"
                )

    @torch.no_grad()
    def test_measures(self, split: Any, seed: int = 0) -> dict:
        """The VQ-VAE's code measures and the PixelCNN's test NLL in bits per image and per index."""
        row = super().test_measures(split, seed)
        self.eval()
        total, n = 0.0, 0
        for _, x in split.batches(500, self.device):
            total += float(self.prior_net.nll(self.indices(x)).double().sum())
            n += len(x)
        bits = total / max(n, 1) / math.log(2)
        return {**row, "prior_bits_per_image": bits, "prior_bits_per_index": bits / self.code_size}

    @torch.no_grad()
    def index_conditionals(self, grids: torch.Tensor) -> Optional[torch.Tensor]:
        """float64 ``(N, h*w, K)`` on the CPU: each index's probability given those before it in raster order, for
        grids ``(N, h, w)``; the row of a position does not depend on the indices at and after it."""
        self.eval()
        logits = self.prior_net(grids.to(self.device)).float().cpu()
        return torch.softmax(logits.double().flatten(2).transpose(1, 2), dim=2)

    def describe(self) -> str:
        s = self.settings
        return (
            f"{super().describe()} + gated PixelCNN prior (C={s.channels}, {s.layers} layers, kernel {s.kernel}); "
            "the VQ-VAE frozen"
        )

    # ------------------------------------------------------------------------------------------ verbs
    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> AEOutput:
        with torch.no_grad():
            idx = self.indices(x)
        nll = self.prior_net.nll(idx).mean()
        recon = x if self.training else self.decode_indices(idx)
        terms = {"nll": nll, "bits_per_index": nll.detach() / (self.code_size * math.log(2))}
        return AEOutput(recon, self.quantizer.lookup(idx), None, terms)

    def reconstruction_loss(self, out: AEOutput, x: torch.Tensor, loss_fn) -> torch.Tensor:
        """The PixelCNN's NLL of the batch's index grids, nats per image (the training config's loss is not used)."""
        assert out.terms is not None
        return out.terms["nll"]
