"""Build an :class:`AutoEncoder` from a config and check that it fits the data; load a saved one."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from aelab.config import PRESETS, MLPSpec, ModelConfig
from aelab.errors import AelabError, ModelError
from aelab.models.autoencoder import CONFIG_NAME, WEIGHTS_NAME, AutoEncoder
from aelab.models.families import family_of
from aelab.models.layers import memory_format_of


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _body(config: ModelConfig, input_shape: tuple[int, ...] | None, vectors: bool):
    """The spec and input shape a model is built on: the preset's (checked against the data's shape), the
    spec's (which needs the data's shape), or for vector data an MLP with a linear output."""
    spec = PRESETS[config.preset].spec if config.preset is not None else config.spec
    assert spec is not None  # a model config has a preset or a spec
    if vectors:
        if not isinstance(spec, MLPSpec):
            mlps = ", ".join(n for n, p in PRESETS.items() if isinstance(p.spec, MLPSpec))
            raise ModelError(
                f"model {config.label!r} is convolutional and vector data has no image to convolve; "
                f"allowed: the MLP presets ({mlps}) or an mlp spec"
            )
        if input_shape is None:
            raise ModelError("a model for vector data needs the data's shape (1, 1, D)")
        spec = spec.model_copy(update={"output_activation": "identity"})
    elif config.preset is not None:
        preset = PRESETS[config.preset]
        fits_any = preset.spec.type == "res" and input_shape is not None  # res bodies take any divisible size
        if input_shape is not None and tuple(input_shape) != preset.input_shape and not fits_any:
            raise ModelError(
                f"model {config.preset!r} expects images of {_shape(preset.input_shape)} but the data "
                f"has {_shape(tuple(input_shape))}; use a res preset (any height and width divisible by "
                "4, e.g. --model res-16) or your own spec in a --config file, e.g. model: {spec: {type: "
                "conv, layers: [{channels: 16, stride: 2, padding: 1}, {channels: 32}]}}"
            )
        input_shape = input_shape if fits_any else preset.input_shape
    elif input_shape is None:
        raise ModelError("a model spec needs the data's input shape (C, H, W)")
    if config.code_activation is not None:
        spec = spec.model_copy(update={"code_activation": config.code_activation})
    return spec, tuple(int(v) for v in input_shape)  # type: ignore[union-attr]


def build_model(
    config: ModelConfig | str, input_shape: tuple[int, int, int] | None = None, vectors: bool = False, classes: int = 10
) -> AutoEncoder:
    """Build the autoencoder of ``config`` (a :class:`ModelConfig` or a preset name).

    Args:
        config: a preset name like ``"conv-64"`` or a :class:`ModelConfig`.
        input_shape: image shape ``(C, H, W)`` of the data. Presets default to the shape they were
            published for; specs need it.
        vectors: the data is standardized feature rows ``(1, 1, D)``: MLP presets and specs take the data's
            size, and the reconstruction is linear (no output activation: standardized features are unbounded).
        classes: number of classes of the data (a conditional VAE's label size).

    Raises:
        ModelError: unknown preset, a preset that doesn't fit ``input_shape`` (both shapes named, and the spec form
            to use instead), a conv model on vector data, a spec whose decoder does not give back ``input_shape``,
            or what the model's family refuses (see its ``from_config``).
        ConfigError: an unknown family, or settings the family does not have.
    """
    if isinstance(config, str):
        if config not in PRESETS:
            raise ModelError(f"unknown model preset {config!r}; allowed: {', '.join(PRESETS)}")
        config = ModelConfig(preset=config)
    filled = config.filled()
    spec, shape = _body(filled, input_shape, vectors)
    model = family_of(filled).from_config(spec, shape, filled, classes, vectors)  # type: ignore[arg-type]
    model.config = config
    model.data_range = None if vectors else 1.0
    with torch.no_grad():
        was = model.training
        model.eval()
        out = model.decode(
            model.encode(torch.zeros(1, *shape), torch.zeros(1, dtype=torch.long)), torch.zeros(1, dtype=torch.long)
        )
        model.train(was)
    if tuple(out.shape[1:]) != shape:
        raise ModelError(
            f"model {config.label!r}: the decoder outputs {_shape(tuple(out.shape[1:]))} but the input "
            f"is {_shape(shape)}; change the decoder layers"
        )
    return model


def load(directory: Path | str, device: str | torch.device = "cpu") -> AutoEncoder:
    """Load a model written by :meth:`AutoEncoder.save` (``config.json`` + ``model.safetensors``), in eval mode,
    its weights laid out in its fastest layout (:func:`aelab.models.layers.memory_format_of`).

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
    model = build_model(
        model_cfg, shape, vectors=bool(meta.get("vectors", False)), classes=int(meta.get("classes", 10))
    )
    model.standardization = standardization
    model.preprocessing = meta.get("preprocessing")
    try:
        model.load_state_dict(load_file(str(weights)))
    except Exception as exc:  # safetensors and torch raise several types for a bad or foreign file
        raise AelabError(f"{str(weights)!r} does not hold this model's weights ({type(exc).__name__})") from None
    return model.to(device=device, memory_format=memory_format_of(model)).eval()  # type: ignore[call-overload]
