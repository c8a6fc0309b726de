"""The autoencoder protocol: :class:`AutoEncoder`, the base of every model family, and what one forward pass
gives (:class:`AEOutput`).

A model class says what it is and does, so that nothing outside :mod:`aelab.models` asks which class it holds:

* its code: :attr:`~AutoEncoder.code_kind` (``vector``, ``map`` or ``indices``) and ``code_shape``;
* its loss: :meth:`~AutoEncoder.loss_unit` (per-pixel error or nats per image) and
  :meth:`~AutoEncoder.reconstruction_loss`;
* its measures: :attr:`~AutoEncoder.measures` and the :meth:`~AutoEncoder.test_measures` hook the engine calls;
* its samplers: :attr:`~AutoEncoder.samplers` (the first is the default) and :meth:`~AutoEncoder.prior`;
* what it can and cannot do: :meth:`~AutoEncoder.lacks` names the reason (analyses and commands ask it), and
  :meth:`~AutoEncoder.check_training` refuses a training it cannot do;
* its labels: a batch is images and class labels ``(x, y)``; every verb takes ``y``, and the models that need
  labels (a conditional VAE) use them.

The base class is the deterministic autoencoder (optionally sparse or tied); the families are
:mod:`.variational` (VAE), :mod:`.quantizer` (VQ-VAE) and those registered in :mod:`.families`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Optional

import torch
from torch import nn

from aelab.errors import ConfigError, ModelError
from aelab.models import measures as M
from aelab.models.needs import NEEDS  # noqa: F401  (re-exported: what lacks() answers for)
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

    family: ClassVar[str] = "autoencoder"
    """The family's name (``aelab models`` shows it)."""
    measures: ClassVar[tuple[M.Measure, ...]] = ()
    """The family's own test measures (keys of :meth:`test_measures`), besides those of every model."""
    nats: ClassVar[bool] = False
    """True when the training loss is a negative log-likelihood in nats per image (not the config's loss)."""
    layerwise: ClassVar[bool] = True
    """Greedy layer-wise pretraining applies (a decoder that mirrors the encoder is still needed)."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        input_shape: tuple[int, ...],
        code_shape: tuple[int, ...],
        name: str = "autoencoder",
        sparsity: nn.Module | None = None,
        penalty: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.sparsity = sparsity if sparsity is not None else nn.Identity()
        self.decoder = decoder
        self.penalty = penalty
        self.input_shape = tuple(input_shape)
        self.code_shape = tuple(code_shape)
        self.name = name
        self.config: Any = None
        """The :class:`~aelab.config.ModelConfig` it was built from (set by ``build_model``; needed by save)."""
        self.data_range: Optional[float] = 1.0
        """The range of the data it reconstructs: 1.0 for images in [0, 1]; None for standardized vector rows
        (built with ``vectors=True``: linear output, no PSNR/SSIM, no clamping)."""
        self.standardization: tuple[torch.Tensor, torch.Tensor] | None = None
        """Vector data: per-feature (mean, std) ``(D,)`` of the raw training features; inputs are standardized
        with them before :meth:`encode` (kept in ``config.json``)."""
        self.preprocessing: dict | None = None
        """How inputs are made from image files (kept in ``config.json``; see :func:`aelab.data.preprocessing`)."""

    @classmethod
    def from_config(
        cls, spec: Any, input_shape: tuple[int, int, int], config: Any, classes: int, vectors: bool
    ) -> AutoEncoder:
        """Build this family's model on the body ``spec`` (what :func:`aelab.build_model` calls).

        Args:
            spec: the body (an mlp, conv or res spec), its code activation already set.
            input_shape: ``(C, H, W)`` of the data.
            config: the :class:`~aelab.config.ModelConfig`, with its preset's fields filled in.
            classes: the number of classes of the data (1 when unlabelled).
            vectors: the data is standardized vector rows.

        Raises:
            ModelError: top-k larger than the code, KL sparsity without codes in (0, 1), tied weights on a model
                that is not a symmetric MLP.
        """
        from aelab.models.bodies import build_body, ends_in_sigmoid
        from aelab.models.sparsity import KLPenalty, TopK, build_sparsity
        from aelab.models.tied import tie_weights

        encoder, decoder, code_shape = build_body(spec, input_shape)
        sparsity, penalty = build_sparsity(config.sparsity)
        if isinstance(sparsity, TopK) and sparsity.k > math.prod(code_shape):
            raise ModelError(
                f"sparsity topk:{sparsity.k}: k is larger than the code of {config.label!r} "
                f"({math.prod(code_shape)} units); allowed: 1..{math.prod(code_shape)}"
            )
        if isinstance(penalty, KLPenalty) and not ends_in_sigmoid(encoder):
            raise ModelError(
                f"sparsity kl needs codes in (0, 1) but the encoder of {config.label!r} does not end in "
                "a sigmoid; use a spec with code_activation: sigmoid, or l1 sparsity"
            )
        model = cls(encoder, decoder, input_shape, code_shape, name=config.label, sparsity=sparsity, penalty=penalty)
        if config.tied:
            tie_weights(model)
        return model

    # ------------------------------------------------------------------------------------------ verbs
    # ``y`` (int64 class labels ``(N,)``) is used by the models that need labels (a conditional VAE).
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

    def hidden_activations(self, x: torch.Tensor, y: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The path along the encoder that RaPP compares (Kim et al., ICLR 2020): ``x`` ``(N, C, H, W)`` itself,
        each hidden layer's output (:func:`aelab.models.activations.hidden_layer_outputs`) and the code, each
        flattened to float32 ``(N, F_i)``."""
        from aelab.models.activations import hidden_layer_outputs

        inner = hidden_layer_outputs(self.encoder, x)
        return [x.flatten(1).float(), *inner, self.encode(x, y).flatten(1).float()]

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Reconstruction ``(N, C, H, W)`` of ``x`` without gradients, float32, clamped to the data range
        (eval mode is the caller's choice)."""
        return self.clamp(self.decode(self.encode(x, y), y).float())

    def clamp(self, out: torch.Tensor) -> torch.Tensor:
        """Model outputs clamped to the data's range ([0, 1] for images; unchanged for vector rows)."""
        return out if self.data_range is None else out.clamp(0.0, self.data_range)

    # --------------------------------------------------------------------------------------- protocol
    @property
    def code_kind(self) -> str:
        """``vector`` (``(D,)``), ``map`` (``(C, h, w)`` values) or ``indices`` (a grid of codebook indices)."""
        return "vector" if len(self.code_shape) == 1 else "map"

    @classmethod
    def loss_unit(cls, loss: str) -> str:
        """What the training loss of this family measures, given the training config's ``loss``."""
        return {
            "mse": "MSE per pixel",
            "mse_sum": "squared error per image",
            "bce": "BCE per pixel",
            "l1": "absolute error per pixel",
        }[loss]

    @classmethod
    def figure_line(cls, config: Any) -> str:
        """The line a run of this family and model config belongs to in the rate-distortion figure."""
        from aelab.config import PRESETS

        if config.preset is None:
            return "your models"
        return {"aelab": "aelab presets", "tutorial": "tutorial presets"}[PRESETS[config.preset].recipe]

    @property
    def samplers(self) -> tuple[str, ...]:
        """How codes can be drawn for generation, the default first: ``gmm`` (a Gaussian mixture fitted to
        training codes), ``prior`` (the model's prior), ``categorical`` (a codebook's index frequencies)."""
        return ("gmm",)

    def prior(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` codes ``(n, *code_shape)`` drawn from the model's prior (on the CPU).

        Raises:
            ModelError: the model has no prior.
        """
        raise self._no_prior()

    def prior_quantile(self, p: torch.Tensor) -> torch.Tensor:
        """The quantiles ``p`` (values in (0, 1), any shape) of one code unit under the prior (same shape).

        Raises:
            ModelError: the model has no prior.
        """
        raise self._no_prior()

    def _no_prior(self) -> ModelError:
        return ModelError(
            f"model {self.name!r} has no prior over its codes; allowed samplers for it: {', '.join(self.samplers)}"
        )

    def lacks(self, need: str) -> Optional[str]:
        """Why this model cannot give what ``need`` names (one of :data:`NEEDS`), or None when it can."""
        if need == "vector_code" and len(self.code_shape) != 1:
            return f"its code is a {'x'.join(map(str, self.code_shape))} map"
        if need == "code_2d" and self.code_shape != (2,):
            return "its code does not have exactly 2 values"
        if need == "likelihood":
            return "it is not a VAE, so it has no likelihood of its images to estimate"
        return getattr(self.sparsity, "lacks", lambda _: None)(need)  # a sparsity operation may forbid more

    def check_training(self, training: Any, one_class: bool, binary: bool = False) -> None:
        """Refuse, before anything is trained, a training this model cannot do.

        Args:
            training: the :class:`~aelab.config.TrainingConfig`.
            one_class: the data is restricted to normal classes (anomaly detection).
            binary: the images are binarized (``data.binarize``): pixels of 0 or 1.

        Raises:
            ModelError: a batch too small for the code's lifetime sparsity.
            ConfigError: layer-wise pretraining of a family it does not apply to.
        """
        check = getattr(self.sparsity, "check_batch_size", None)
        if check is not None:
            check(training.batch_size)
        if training.layerwise_epochs and not self.layerwise:
            raise ConfigError(
                f"training.layerwise_epochs: model {self.name!r} is generative ({self.describe()}), and greedy "
                "layer-wise pretraining is for deterministic autoencoders; allowed for it: null"
            )

    def test_measures(self, split: Any, seed: int = 0) -> dict:
        """The family's own measures on a test split (:attr:`measures`); keys set to None here drop measures of
        every model that do not apply to it. The deterministic autoencoder has none: {}."""
        return {}

    def describe(self) -> str:
        """What the model is, in a few words (``aelab models``)."""
        return "autoencoder" + (" (tied)" if self.config is not None and self.config.tied else "")

    def reconstruction_loss(self, out: AEOutput, x: torch.Tensor, loss_fn) -> torch.Tensor:
        """The data term of the loss for a batch: ``loss_fn(reconstruction, x)`` (the training config's loss);
        a VAE uses its decoder's negative log-likelihood instead (nats per image)."""
        return loss_fn(out.reconstruction.float(), x)

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Called by the trainer before epoch ``epoch`` (1-based) of ``epochs`` (a VAE sets its KL weight)."""

    def save_meta(self) -> dict:
        """What ``config.json`` records besides the config and shapes (a conditional VAE: its classes)."""
        return {}

    # ------------------------------------------------------------------------------------ layer-wise
    def stages(self) -> list[tuple[nn.Sequential, nn.Sequential]]:
        """The (encoder stage, mirror decoder stage) pairs for greedy layer-wise pretraining, input side
        first (see :mod:`aelab.models.stages`).

        Raises:
            ModelError: the decoder does not mirror the encoder.
        """
        return mirrored_stages(self.encoder, self.decoder, self.name)

    def stage_model(self, k: int) -> AutoEncoder:
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
    def device(self) -> torch.device:
        """The device of the model's parameters."""
        return next(self.parameters()).device

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

        h = hashlib.sha256(
            json.dumps(
                [
                    self.name,
                    list(self.input_shape),
                    list(self.code_shape),
                    self.config.model_dump(mode="json") if self.config else None,
                ]
            ).encode()
        )
        for key, value in sorted(self.state_dict().items()):
            h.update(key.encode())
            h.update(value.detach().cpu().contiguous().float().numpy().tobytes())
        return h.hexdigest()[:16]

    def save(self, directory: Path | str, preprocessing: dict | None = None) -> Path:
        """Write ``directory/config.json`` (model config, input and code shape, how inputs are made) and
        ``directory/model.safetensors`` (the weights): a model that loads with :func:`aelab.load` without the
        dataset and without pickle. Written atomically, file by file.

        Raises:
            ModelError: the model was not built by ``build_model`` (it has no config to save).
        """
        from safetensors.torch import save as to_bytes

        from aelab.io import atomic_write

        if self.config is None:
            raise ModelError(f"model {self.name!r} has no config to save; build it with aelab.build_model")
        if preprocessing is not None:
            self.preprocessing = preprocessing
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in self.state_dict().items()}
        meta = {
            "format": "aelab-autoencoder",
            "version": 1,
            "name": self.name,
            "model": self.config.model_dump(mode="json", exclude_none=True),
            "input_shape": list(self.input_shape),
            "code_shape": list(self.code_shape),
            "parameters": self.num_parameters(),
            "vectors": self.data_range is None,
            **self.save_meta(),
        }
        if self.standardization is not None:
            mean, std = self.standardization
            meta["standardization"] = {"mean": mean.tolist(), "std": std.tolist()}
        if self.preprocessing is not None:
            meta["preprocessing"] = self.preprocessing
        atomic_write(directory / WEIGHTS_NAME, lambda f: f.write(to_bytes(tensors)))
        atomic_write(directory / CONFIG_NAME, lambda f: f.write(json.dumps(meta, indent=2).encode()))
        return directory
