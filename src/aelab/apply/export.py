"""Export a trained autoencoder: the model folder (``config.json`` + ``model.safetensors``, loadable with
:func:`aelab.load`; the layout of huggingface_hub's ``PyTorchModelHubMixin``), and with ONNX ``encoder.onnx``
and ``decoder.onnx`` with a dynamic batch axis, checked with ``onnx.checker`` and against PyTorch with
onnxruntime.

::

    encoder.onnx: images float32 (batch, C, H, W) in [0, 1] -> code float32 (batch, *code_shape)
    decoder.onnx: code float32 (batch, *code_shape)       -> reconstruction float32 (batch, C, H, W)

Both carry metadata (``onnx.load(path).metadata_props``): ``aelab.preprocessing`` (JSON: how an input is made
from an image file: mode, size, resize filter, background for transparency, scaling, layout), ``aelab.input_shape``,
``aelab.code_shape``, ``aelab.name``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aelab.errors import AelabError

FORMATS = ("safetensors", "onnx")
ONNX_TOLERANCE = 1e-4
"""Largest absolute difference between onnxruntime's and PyTorch's outputs an export may have."""


class ExportError(AelabError):
    """A model that cannot be exported, or whose export does not match PyTorch."""


class _Verb(nn.Module):
    """``model.encode`` or ``model.decode`` as a module of its own: what the exporter traces."""

    def __init__(self, model, verb: str) -> None:
        super().__init__()
        self.model, self.verb = model, verb

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self.model, self.verb)(x)


@dataclass
class ExportResult:
    """What :func:`export_model` wrote and how far ONNX is from PyTorch."""

    folder: Path
    files: list[Path] = field(default_factory=list)
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    """``{"encoder": ..., "decoder": ...}``: largest |onnxruntime - PyTorch| on the check images (ONNX only)."""


def _onnx_modules():
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError as exc:
        raise ExportError(
            f"ONNX export needs onnx, onnxscript and onnxruntime ({exc.name} is missing): "
            "pip install 'aelab[onnx]', or export with --format safetensors"
        ) from None
    return onnx, onnxruntime


def _export_onnx(
    module: nn.Module,
    example: torch.Tensor,
    path: Path,
    input_name: str,
    output_name: str,
    what: str,
    metadata: dict[str, str],
) -> None:
    onnx, _ = _onnx_modules()
    batch = torch.export.Dim("batch", min=1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                input_names=[input_name],
                output_names=[output_name],
                dynamic_shapes={"x": {0: batch}},
                verbose=False,
            )
            assert program is not None  # dynamo=True returns the program
            program.save(str(path))
        proto = onnx.load(str(path))
        onnx.helper.set_model_props(proto, metadata)
        onnx.save(proto, str(path))
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # the exporter raises many types; the first line names the unsupported operation
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise ExportError(
            f"ONNX export of the {what} failed ({type(exc).__name__}: {first[:300]}); "
            "--format safetensors exports every model"
        ) from None


def export_model(
    model: Any, folder: Path | str, fmt: str = "safetensors", check_images: torch.Tensor | None = None
) -> ExportResult:
    """Export ``model`` into ``folder``: always the model folder (``config.json``, ``model.safetensors``); with
    ``fmt="onnx"`` also ``encoder.onnx`` and ``decoder.onnx``, run with onnxruntime on ``check_images`` and
    compared to PyTorch. Files are written into a temporary folder beside ``folder`` and moved in at the end,
    so a failed export leaves nothing behind.

    Args:
        model: a trained :class:`~aelab.models.AutoEncoder` (as :func:`aelab.load` gives it).
        folder: output folder (created).
        fmt: ``safetensors`` or ``onnx``.
        check_images: float32 ``(N, C, H, W)`` in [0, 1] for the ONNX check (default: 8 uniform random images).

    Returns:
        :class:`ExportResult` with the files and, for ONNX, the largest absolute differences.

    Raises:
        ExportError: unknown format, ONNX packages missing, a layer the ONNX exporter cannot export, or ONNX
            outputs further than :data:`ONNX_TOLERANCE` from PyTorch's.
    """
    if fmt not in FORMATS:
        raise ExportError(f"--format: got {fmt!r}; allowed: {', '.join(FORMATS)}")
    if fmt == "onnx":
        from aelab.apply import refuse_unlabelled

        refuse_unlabelled(model, "ONNX export")
        _onnx_modules()
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    result = ExportResult(folder)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        model.save(tmp)
        if fmt == "onnx":
            result.max_abs_diff = _onnx_files(model, tmp, check_images)
        folder.mkdir(parents=True, exist_ok=True)
        for f in sorted(tmp.iterdir()):
            os.replace(f, folder / f.name)
            result.files.append(folder / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def _onnx_files(model, folder: Path, check_images: torch.Tensor | None) -> dict[str, float]:
    """Write ``encoder.onnx`` and ``decoder.onnx`` into ``folder`` and compare them with PyTorch on the check
    images; the largest absolute difference of each.

    Raises:
        ExportError: the export fails, or differs from PyTorch by more than :data:`ONNX_TOLERANCE`.
    """
    generator = torch.Generator().manual_seed(0)
    x = check_images if check_images is not None else torch.rand(8, *model.input_shape, generator=generator)
    x = x.float().cpu()
    with torch.no_grad():
        code = model.encode(x)
        out = model.decode(code)
    meta = onnx_metadata(model)
    _export_onnx(_Verb(model, "encode"), x[:2], folder / "encoder.onnx", "images", "code", "encoder", meta)
    _export_onnx(_Verb(model, "decode"), code[:2], folder / "decoder.onnx", "code", "reconstruction", "decoder", meta)
    diffs = {
        "encoder": _ort_diff(folder / "encoder.onnx", x, code),
        "decoder": _ort_diff(folder / "decoder.onnx", code, out),
    }
    worst = max(diffs.values())
    if not worst <= ONNX_TOLERANCE:
        raise ExportError(
            f"ONNX outputs differ from PyTorch by up to {worst:.2e} (> {ONNX_TOLERANCE:g}) on "
            f"{len(x)} images; the export was not written"
        )
    return diffs


def onnx_metadata(model) -> dict[str, str]:
    """What the ONNX files carry besides the graph (``metadata_props``, strings): the model's name, input and code
    shapes, and the preprocessing that makes an input from an image file (JSON, see
    :func:`aelab.data.preprocessing`; for vector data the per-feature standardization instead)."""
    import json

    meta = {
        "aelab.name": model.name,
        "aelab.input_shape": json.dumps(list(model.input_shape)),
        "aelab.code_shape": json.dumps(list(model.code_shape)),
        "aelab.inputs": "encoder: images float32 (batch, C, H, W) in [0, 1]; decoder: code float32 (batch, *code)",
    }
    if model.preprocessing is not None:
        meta["aelab.preprocessing"] = json.dumps(model.preprocessing)
    if model.standardization is not None:
        mean, std = model.standardization
        meta["aelab.standardization"] = json.dumps({"mean": mean.tolist(), "std": std.tolist()})
    return meta


def _ort_diff(path: Path, inputs: torch.Tensor, expected: torch.Tensor) -> float:
    """Largest |onnxruntime(inputs) - expected| of the ONNX model at ``path``."""
    _, ort = _onnx_modules()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})[0]
    return float((torch.from_numpy(got) - expected).abs().max())
