"""The one autoencoder class: an encoder, a decoder, and the verbs around them.

The contract with the trainer: ``model(x)`` returns an :class:`AEOutput` (reconstruction, code, penalty), so
one (optionally compiled) call gives everything the loss needs, whatever the variant (sparse, tied, ...).
The trainer imports no model variant: what a variant needs from training it says through
:meth:`AutoEncoder.check_batch_size` and :meth:`AutoEncoder.stages`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple, Optional

import torch
from torch import nn

from aelab.errors import ModelError
from aelab.models.stages import mirrored_stages, stage_parts

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


class AEOutput(NamedTuple):
    """What one forward pass gives.

    Attributes:
        reconstruction: ``(N, C, H, W)``, same dtype as the input (in [0, 1] with a sigmoid output).
        code: ``(N, *code_shape)``: the code after the sparsity operation (top-k etc.).
        penalty: scalar tensor added to the loss: the weighted L1/KL sparsity penalty, a VAE's beta * KL, a
            VQ-VAE's codebook + commitment loss; None when the model has none.
        terms: scalar tensors the trainer averages over each epoch and keeps in ``History.terms`` (a VAE's KL
            and beta, a VQ-VAE's perplexity); None for none.
    """

    reconstruction: torch.Tensor
    code: torch.Tensor
    penalty: Optional[torch.Tensor]
    terms: Optional[dict] = None


class AutoEncoder(nn.Module):
    """An encoder ``f`` and a decoder ``g``; reconstruction ``x_hat = g(f(x))``.

    ::

        x (N, C, H, W) --encoder--> z (N, *code_shape) --sparsity--> z' --decoder--> x_hat (N, C, H, W)
                                                                      \\--penalty--> L1 / KL term

    Args:
        encoder: maps float images ``(N, C, H, W)`` in [0, 1] to codes ``(N, *code_shape)``.
        decoder: maps codes back to images ``(N, C, H, W)``.
        input_shape: ``(C, H, W)`` the model accepts.
        code_shape: shape of one code, e.g. ``(3,)`` or ``(64, 1, 1)``.
        name: display name (preset name or spec type).
        sparsity: an operation on the code (top-k, lifetime top-k), or None.
        penalty: a module mapping the code to a weighted scalar penalty (L1, KL), or None.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, input_shape: tuple[int, ...],
                 code_shape: tuple[int, ...], name: str = "autoencoder", sparsity: nn.Module | None = None,
                 penalty: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.sparsity = sparsity if sparsity is not None else nn.Identity()
        self.decoder = decoder
        self.penalty = penalty
        self.input_shape = tuple(input_shape)
        self.code_shape = tuple(code_shape)
        self.name = name
        self.config = None
        """The :class:`~aelab.config.ModelConfig` it was built from (set by ``build_model``; needed by save)."""
        self.vectors = False
        """True when built for vector data (standardized feature rows ``(1, 1, D)``, linear reconstruction)."""
        self.standardization: tuple[torch.Tensor, torch.Tensor] | None = None
        """Vector data: per-feature (mean, std) ``(D,)`` of the raw training features; inputs are standardized
        with them before :meth:`encode` (kept in ``config.json``)."""

    # ------------------------------------------------------------------------------------------ verbs
    # ``y`` (int64 class labels ``(N,)``) is used by conditional models only (see ``conditional``).
    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Codes ``(N, *code_shape)`` of images ``x`` ``(N, C, H, W)`` (after the sparsity operation)."""
        return self.sparsity(self.encoder(x))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images ``(N, C, H, W)`` decoded from codes ``z`` ``(N, *code_shape)``."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> AEOutput:
        """Reconstruction, code and penalty of ``x`` ``(N, C, H, W)`` in one pass (see :class:`AEOutput`)."""
        z = self.encode(x)
        return AEOutput(self.decoder(z), z, None if self.penalty is None else self.penalty(z))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Reconstruction ``(N, C, H, W)`` of ``x`` without gradients (eval mode is the caller's choice)."""
        return self.decode(self.encode(x, y), y)

    # ------------------------------------------------------------------------------- training needs
    conditional = False
    """True when the model takes class labels ``y`` with the images (a conditional VAE)."""
    generative = False
    """True for models trained as generative models (VAE, VQ-VAE), whose test metrics include their own bounds."""

    def reconstruction_loss(self, out: AEOutput, x: torch.Tensor, loss_fn) -> torch.Tensor:
        """The data term of the loss for a batch: ``loss_fn(reconstruction, x)`` (the training config's loss);
        a VAE uses its decoder's negative log-likelihood instead (nats per image)."""
        return loss_fn(out.reconstruction.float(), x)

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Called by the trainer before epoch ``epoch`` (1-based) of ``epochs`` (a VAE sets its KL weight)."""

    def check_batch_size(self, batch_size: int) -> None:
        """Refuse a batch size the model cannot train with (lifetime top-k keeps k values per unit per batch).

        Raises:
            ModelError: the sparsity operation needs a larger batch.
        """
        check = getattr(self.sparsity, "check_batch_size", None)
        if check is not None:
            check(batch_size)

    def stages(self) -> list[tuple[nn.Sequential, nn.Sequential]]:
        """The (encoder stage, mirror decoder stage) pairs for greedy layer-wise pretraining, input side
        first (see :mod:`aelab.models.stages`).

        Raises:
            ModelError: the decoder does not mirror the encoder.
        """
        return mirrored_stages(self.encoder, self.decoder, self.name)

    def stage_model(self, k: int) -> "AutoEncoder":
        """The autoencoder made of the first ``k`` encoder stages and their mirror decoder stages (1-based),
        sharing their layers with this model (the model itself for the last stage).

        Raises:
            ModelError: the decoder does not mirror the encoder.
        """
        if k == len(self.stages()):
            return self
        encoder, decoder, code_shape = stage_parts(self.encoder, self.decoder, self.input_shape, self.name, k)
        return AutoEncoder(encoder, decoder, self.input_shape, code_shape, name=f"{self.name} stage {k}")

    # ------------------------------------------------------------------------------------ properties
    @property
    def sigmoid_output(self) -> bool:
        """True when the decoder ends in a sigmoid (reconstructions in (0, 1), as BCE needs)."""
        last = [m for m in self.decoder.modules() if not isinstance(m, (nn.Sequential, nn.Unflatten))]
        return bool(last) and isinstance(last[-1], nn.Sigmoid)

    @property
    def code_size(self) -> int:
        """Number of values in one code."""
        return math.prod(self.code_shape)

    @property
    def input_size(self) -> int:
        """Number of values in one input image (C*H*W)."""
        return math.prod(self.input_shape)

    @property
    def compression_ratio(self) -> float:
        """Input values per code value (C*H*W / code size)."""
        return self.input_size / self.code_size

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters (shared tensors counted once)."""
        seen = {id(p): p for p in self.parameters() if p.requires_grad or not trainable_only}
        return sum(p.numel() for p in seen.values())

    def fingerprint(self) -> str:
        """16 hex digits identifying this model: a SHA-256 of its config, shapes and weights (what a code file
        records, so codes are decoded only by the model that made them)."""
        import hashlib

        h = hashlib.sha256(json.dumps([self.name, list(self.input_shape), list(self.code_shape),
                                       self.config.model_dump(mode="json") if self.config else None]).encode())
        for key, value in sorted(self.state_dict().items()):
            h.update(key.encode())
            h.update(value.detach().cpu().contiguous().float().numpy().tobytes())
        return h.hexdigest()[:16]

    # ---------------------------------------------------------------------------------- save / load
    def save(self, directory: Path | str) -> Path:
        """Write ``directory/config.json`` (model config, input and code shape) and
        ``directory/model.safetensors`` (the weights): a model that loads with :func:`load` without the
        dataset and without pickle. Written atomically, file by file.

        Raises:
            ModelError: the model was not built by ``build_model`` (it has no config to save).
        """
        from safetensors.torch import save

        from aelab.io import atomic_write

        if self.config is None:
            raise ModelError(f"model {self.name!r} has no config to save; build it with aelab.build_model")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in self.state_dict().items()}
        meta = {"format": "aelab-autoencoder", "version": 1, "name": self.name,
                "model": self.config.model_dump(mode="json", exclude_none=True),
                "input_shape": list(self.input_shape), "code_shape": list(self.code_shape),
                "parameters": self.num_parameters(), "vectors": self.vectors}
        if self.conditional:
            meta["classes"] = int(getattr(self, "classes"))
        if self.standardization is not None:
            meta["standardization"] = {"mean": self.standardization[0].tolist(), "std": self.standardization[1].tolist()}
        atomic_write(directory / WEIGHTS_NAME, lambda f: f.write(save(tensors)))
        atomic_write(directory / CONFIG_NAME, lambda f: f.write(json.dumps(meta, indent=2).encode()))
        return directory
