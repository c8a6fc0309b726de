"""Build an :class:`AutoEncoder` from a config and check that it fits the data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from aelab.config import ConvSpec, MLPSpec, ModelConfig
from aelab.errors import AelabError, ModelError
from aelab.models.autoencoder import CONFIG_NAME, WEIGHTS_NAME, AutoEncoder
from aelab.models.conv import build_conv
from aelab.models.mlp import build_mlp
from aelab.models.presets import PRESETS
from aelab.models.resnet import build_res
from aelab.models.sparsity import KLPenalty, TopK, build_sparsity
from aelab.models.tied import tie_weights


def _ends_in_sigmoid(encoder: torch.nn.Module) -> bool:
    layers = list(encoder.children()) if isinstance(encoder, torch.nn.Sequential) else [encoder]
    return bool(layers) and isinstance(layers[-1], torch.nn.Sigmoid)


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def build_model(config: ModelConfig | str, input_shape: tuple[int, int, int] | None = None,
                vectors: bool = False) -> AutoEncoder:
    """Build the autoencoder of ``config`` (a :class:`ModelConfig` or a preset name).

    Args:
        config: a preset name like ``"conv-64"`` or a :class:`ModelConfig`.
        input_shape: image shape ``(C, H, W)`` of the data. Presets default to the shape they were
            published for; specs need it.
        vectors: the data is standardized feature rows ``(1, 1, D)``: MLP presets and specs take the data's
            size, and the reconstruction is linear (no output activation: standardized features are unbounded).

    Raises:
        ModelError: unknown preset, a preset that doesn't fit ``input_shape`` (both shapes named), a conv
            model on vector data, or a spec whose decoder does not give back ``input_shape``.
    """
    if isinstance(config, str):
        if config not in PRESETS:
            raise ModelError(f"unknown model preset {config!r}; allowed: {', '.join(PRESETS)}")
        config = ModelConfig(preset=config)
    if vectors:
        spec = PRESETS[config.preset].spec if config.preset is not None else config.spec
        if not isinstance(spec, MLPSpec):
            mlps = ", ".join(n for n, p in PRESETS.items() if isinstance(p.spec, MLPSpec))
            raise ModelError(f"model {config.label!r} is convolutional and vector data has no image to convolve; "
                             f"allowed: the MLP presets ({mlps}) or an mlp spec")
        if input_shape is None:
            raise ModelError("a model for vector data needs the data's shape (1, 1, D)")
        spec = spec.model_copy(update={"output_activation": "identity"})
    elif config.preset is not None:
        preset = PRESETS[config.preset]
        spec = preset.spec
        if input_shape is not None and tuple(input_shape) != preset.input_shape:
            raise ModelError(f"model {config.preset!r} expects images of {_shape(preset.input_shape)} but the data "
                             f"has {_shape(tuple(input_shape))}; pick a model for that shape (see 'aelab models') "
                             "or give a spec")
        input_shape = preset.input_shape
    else:
        spec = config.spec
        if input_shape is None:
            raise ModelError("a model spec needs the data's input shape (C, H, W)")
    if config.code_activation is not None:
        spec = spec.model_copy(update={"code_activation": config.code_activation})
    input_shape = tuple(int(v) for v in input_shape)  # type: ignore[assignment]
    builder = build_mlp if isinstance(spec, MLPSpec) else build_conv if isinstance(spec, ConvSpec) else build_res
    encoder, decoder, code_shape = builder(spec, input_shape)  # type: ignore[arg-type]
    sparsity, penalty = build_sparsity(config.sparsity)
    if isinstance(sparsity, TopK) and sparsity.k > math.prod(code_shape):
        raise ModelError(f"sparsity topk:{sparsity.k}: k is larger than the code of {config.label!r} "
                         f"({math.prod(code_shape)} units); allowed: 1..{math.prod(code_shape)}")
    if isinstance(penalty, KLPenalty) and not _ends_in_sigmoid(encoder):
        raise ModelError(f"sparsity kl needs codes in (0, 1) but the encoder of {config.label!r} does not end in a "
                         "sigmoid; use a spec with code_activation: sigmoid, or l1 sparsity")
    model = AutoEncoder(encoder, decoder, input_shape, code_shape, name=config.label, sparsity=sparsity,
                        penalty=penalty)
    model.config = config
    model.vectors = vectors
    if config.tied:
        tie_weights(model)
    with torch.no_grad():
        was = model.training
        model.eval()
        out = model.reconstruct(torch.zeros(1, *input_shape))
        model.train(was)
    if tuple(out.shape[1:]) != input_shape:
        raise ModelError(f"model {config.label!r}: the decoder outputs {_shape(tuple(out.shape[1:]))} but the input "
                         f"is {_shape(input_shape)}; change the decoder layers")
    return model


def load(directory: Path | str, device: str | torch.device = "cpu") -> AutoEncoder:
    """Load a model written by :meth:`AutoEncoder.save` (``config.json`` + ``model.safetensors``), in eval mode.

    Raises:
        AelabError: no such folder, or its files are missing or not an aelab model.
    """
    from safetensors.torch import load_file

    directory = Path(directory)
    cfg_path, weights = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    if not cfg_path.is_file() or not weights.is_file():
        raise AelabError(f"{str(directory)!r} is not a saved aelab model (needs {CONFIG_NAME} and {WEIGHTS_NAME})")
    try:
        meta = json.loads(cfg_path.read_text())
        model_cfg = ModelConfig.model_validate(meta["model"])
        shape = tuple(meta["input_shape"])
        scaling = meta.get("standardization")
        standardization = None if scaling is None else (torch.tensor(scaling["mean"]), torch.tensor(scaling["std"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise AelabError(f"{str(cfg_path)!r} is not an aelab model config ({type(exc).__name__})") from None
    model = build_model(model_cfg, shape, vectors=bool(meta.get("vectors", False)))
    model.standardization = standardization
    try:
        model.load_state_dict(load_file(str(weights)))
    except Exception as exc:  # safetensors and torch raise several types for a bad or foreign file
        raise AelabError(f"{str(weights)!r} does not hold this model's weights ({type(exc).__name__})") from None
    return model.to(device).eval()
