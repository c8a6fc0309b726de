"""Build an :class:`AutoEncoder` from a config and check that it fits the data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from aelab.config import ConvSpec, MLPSpec, ModelConfig, QuantizerConfig, VariationalConfig
from aelab.errors import AelabError, ModelError
from aelab.models.autoencoder import CONFIG_NAME, WEIGHTS_NAME, AutoEncoder
from aelab.models.conv import build_conv
from aelab.models.mlp import build_mlp
from aelab.models.presets import PRESETS
from aelab.models.quantizer import VQAutoEncoder
from aelab.models.resnet import build_res
from aelab.models.sparsity import KLPenalty, TopK, build_sparsity
from aelab.models.tied import tie_weights
from aelab.models.variational import VariationalAutoEncoder


def _ends_in_sigmoid(encoder: torch.nn.Module) -> bool:
    layers = list(encoder.children()) if isinstance(encoder, torch.nn.Sequential) else [encoder]
    return bool(layers) and isinstance(layers[-1], torch.nn.Sigmoid)


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _with_code(spec, n: int):
    """``spec`` with a code of ``n`` values (conv: ``n`` channels in the last encoder stage)."""
    if isinstance(spec, ConvSpec):
        layers = list(spec.layers)
        layers[-1] = layers[-1].model_copy(update={"channels": n})
        return spec.model_copy(update={"layers": layers, "code_activation": "identity"})
    return spec.model_copy(update={"code_size": n, "code_activation": "identity"})


def _code_channels(spec) -> int:
    return spec.layers[-1].channels if isinstance(spec, ConvSpec) else spec.code_size


def generative_settings(config: ModelConfig) -> tuple[VariationalConfig | None, QuantizerConfig | None]:
    """The VAE and VQ settings of ``config``: its own (already completed with its preset's at validation), else its
    preset's (None, None: a deterministic autoencoder)."""
    preset = PRESETS[config.preset] if config.preset is not None else None
    return (config.variational or (preset.variational if preset else None),
            config.quantizer or (preset.quantizer if preset else None))


def _build_generative(builder, spec, input_shape, config: ModelConfig, variational, quantizer,
                      classes: int) -> AutoEncoder:
    if quantizer is not None:
        if not isinstance(spec, ConvSpec) or spec.decoder == "fc":
            raise ModelError(f"model {config.label!r}: a quantizer (VQ-VAE) needs a conv spec whose code is a feature "
                             "map (D, h, w) decoded by conv layers; allowed: a {type: conv} spec or vqvae-conv")
        encoder, decoder, code_shape = builder(spec, input_shape)
        return VQAutoEncoder(encoder, decoder, input_shape, code_shape, config.label, quantizer)
    d = _code_channels(spec)
    k = classes if variational.conditional else 0
    if variational.conditional and classes < 2:
        raise ModelError(f"model {config.label!r} is a conditional VAE and needs labelled data with 2 or more classes; "
                         f"this data has {classes}: allowed: a dataset with classes (a folder with one sub-folder "
                         "per class), or variational.conditional: false")
    c, h, w = input_shape
    encoder, _, encoded = builder(_with_code(spec, 2 * d), (c + k, h, w))  # means and log-variances: 2d
    _, decoder, _ = builder(_with_code(spec, d + k), input_shape)
    code_shape = (d, *encoded[1:])
    return VariationalAutoEncoder(encoder, decoder, input_shape, code_shape, config.label, variational, k)


def build_model(config: ModelConfig | str, input_shape: tuple[int, int, int] | None = None,
                vectors: bool = False, classes: int = 10) -> AutoEncoder:
    """Build the autoencoder of ``config`` (a :class:`ModelConfig` or a preset name).

    Args:
        config: a preset name like ``"conv-64"`` or a :class:`ModelConfig`.
        input_shape: image shape ``(C, H, W)`` of the data. Presets default to the shape they were
            published for; specs need it.
        vectors: the data is standardized feature rows ``(1, 1, D)``: MLP presets and specs take the data's
            size, and the reconstruction is linear (no output activation: standardized features are unbounded).
        classes: number of classes of the data (a conditional VAE's label size).

    Raises:
        ModelError: unknown preset, a preset that doesn't fit ``input_shape`` (both shapes named), a conv
            model on vector data, or a spec whose decoder does not give back ``input_shape``; a generative model
            on vector data, a quantizer on a model without a conv feature map, a conditional VAE on data with
            fewer than 2 classes.
    """
    if isinstance(config, str):
        if config not in PRESETS:
            raise ModelError(f"unknown model preset {config!r}; allowed: {', '.join(PRESETS)}")
        config = ModelConfig(preset=config)
    variational, quantizer = generative_settings(config)
    if (variational is not None or quantizer is not None) and (config.sparsity is not None or config.tied):
        raise ModelError(f"model {config.label!r}: sparsity and tied weights are for deterministic autoencoders, and "
                         "this one is generative (VAE / VQ-VAE); allowed for it: neither")
    if vectors and (variational is not None or quantizer is not None):
        raise ModelError(f"model {config.label!r} is generative (VAE / VQ-VAE) and models images in [0, 1]; vector "
                         "data is standardized, not images: allowed there: deterministic MLP presets and specs")
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
    if variational is not None or quantizer is not None:
        model = _build_generative(builder, spec, input_shape, config, variational, quantizer, classes)
        return _checked(model, config, input_shape, vectors)
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
    if config.tied:
        tie_weights(model)
    return _checked(model, config, input_shape, vectors)


def _checked(model: AutoEncoder, config: ModelConfig, input_shape: tuple[int, ...], vectors: bool) -> AutoEncoder:
    model.config = config
    model.vectors = vectors
    with torch.no_grad():
        was = model.training
        model.eval()
        y = torch.zeros(1, dtype=torch.long) if model.conditional else None
        out = model.reconstruct(torch.zeros(1, *input_shape), y)
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
    model = build_model(model_cfg, shape, vectors=bool(meta.get("vectors", False)), classes=int(meta.get("classes", 10)))
    model.standardization = standardization
    try:
        model.load_state_dict(load_file(str(weights)))
    except Exception as exc:  # safetensors and torch raise several types for a bad or foreign file
        raise AelabError(f"{str(weights)!r} does not hold this model's weights ({type(exc).__name__})") from None
    return model.to(device).eval()
