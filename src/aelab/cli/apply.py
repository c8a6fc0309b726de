"""Commands that apply a trained model: ``export`` (safetensors, ONNX), ``encode`` / ``decode`` (code files) and
``score`` (anomaly scores of images)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from aelab.cli.common import DATA_DIR, RUN_PATH, WHICH, add, argument, console, option
from aelab.errors import AelabError, ConfigError

IMAGES = argument(
    "images", list[str], "Image files (PNG/JPEG), folders of them, or split:train|val|test of the run's dataset"
)
RESIZE = option("resize", False, bool, "Convert and resize images of another shape to the model's", "--resize")
LIMIT = option("limit", None, Optional[int], "Use only the first N images", "--limit", min=1)


def _one_run(path: Path, model: Optional[str], data_dir=None):
    from aelab.experiments.finished import open_runs

    return open_runs(path, model, with_data=False, data_dir=data_dir)[0]


def _new_folder(path: Path, what: str) -> None:
    if path.exists() and not path.is_dir():
        raise AelabError(f"{what} {str(path)!r} exists and is not a folder")


def _read(run, images: list[str], resize: bool, limit):
    from aelab.data.files import read_images

    background = (run.model.preprocessing or {}).get("background")
    return read_images(images, run.model.input_shape, resize, run.data, limit, run.model.standardization, background)


def export(path, model, data_dir, fmt: str, out, images: int) -> None:
    """Export a trained model: config.json + model.safetensors (loads with aelab.load) and, with --format onnx,
    encoder.onnx and decoder.onnx with a dynamic batch axis and the preprocessing as metadata, compared with
    PyTorch by onnxruntime."""
    from aelab.apply.export import ONNX_TOLERANCE, export_model
    from aelab.errors import DataError

    run = _one_run(path, model, data_dir)
    target = out or run.folder.path / "export"
    _new_folder(target, "--out")
    check, where = None, "random images"
    if fmt == "onnx":
        try:
            check, where = run.data().test.floats()[:images], f"{min(images, len(run.data().test))} test images"
        except DataError:
            pass  # the run's data is not on this machine: random images still check the graph
    result = export_model(run.model, target, fmt, check)
    for f in result.files:
        console.print(f"wrote {f} ({f.stat().st_size:,} bytes)")
    if result.max_abs_diff:
        worst = max(result.max_abs_diff.values())
        console.print(
            f"onnxruntime vs PyTorch on {where}: largest absolute difference encoder "
            f"{result.max_abs_diff['encoder']:.2e}, decoder {result.max_abs_diff['decoder']:.2e} "
            f"({'within' if worst <= ONNX_TOLERANCE else 'OVER'} {ONNX_TOLERANCE:g})"
        )


def encode(
    path, images, model, data_dir, out: Path, bits: int, entropy: bool, refine: int, resize: bool, limit
) -> None:
    """Encode images into a code file (codes quantized per unit, scales stored beside them; with --entropy the
    8-bit levels range coded with a factorized model); prints bytes per image, the ratio to the raw images and
    the quality of the round trip."""
    from aelab.apply.codes import encode_images, round_trip_quality, save_codes

    if out.suffix != ".npz":
        raise ConfigError(f"-o: got {str(out)!r}; a code file ends in .npz")
    run = _one_run(path, model, data_dir)
    named = _read(run, images, resize, limit)
    codes = encode_images(run.model, named.images, named.names, bits, entropy=entropy, refine=refine)
    save_codes(codes, out)
    raw = named.images[0].numel() * named.images.element_size()
    what = "images" if run.model.data_range is not None else "rows"
    console.print(
        f"encoded {len(named.names):,} {what} with {run.label} into {out} ({out.stat().st_size:,} bytes): "
        f"{codes.bytes_per_image:g} bytes per {what[:-1]} at {codes.bits} bits{' entropy coded' if entropy else ''}"
        f"{f', codes refined for {refine} steps' if refine else ''} "
        f"(+{out.stat().st_size - codes.bytes_per_image * len(named.names):,.0f} bytes per file: scales"
        f"{', the coder table' if entropy and codes.stream is None else ''}, names, container) vs {raw:,} raw: "
        f"{raw / codes.bytes_per_image:.1f}x; round trip: "
        f"{round_trip_quality(run.model, named.images, codes)}",
        soft_wrap=True,
    )


def decode(path, codes_file: Path, model, out: Path) -> None:
    """Decode a code file back into PNG images, or for vector data decoded.npy of raw (de-standardized) rows
    (checks that the run's model made the codes)."""
    from aelab.apply.codes import decode_codes, load_codes, write_pngs, write_rows

    codes = load_codes(codes_file)
    _new_folder(out, "-o")
    run = _one_run(path, model)
    decoded = decode_codes(run.model, codes)  # refuses codes of another model
    if run.model.data_range is None:
        console.print(f"wrote {len(decoded):,} rows to {write_rows(decoded, run.model, out)}")
        return
    written = write_pngs(decoded, codes.names, out)
    console.print(f"wrote {len(written):,} images to {out}")


def score(path, images, model, data_dir, out: Path, percentile: float, kind, resize: bool, limit) -> None:
    """Anomaly scores: per-image reconstruction error, a threshold from the run's validation split, and a flag
    per image, written as CSV."""
    from aelab.apply.scores import score_images, write_scores
    from aelab.evaluation.anomaly import DEFAULT_SCORE, FITTED_KINDS
    from aelab.evaluation.rapp import NAP_FIT_IMAGES

    run = _one_run(path, model, data_dir)
    if kind is None:
        kind = DEFAULT_SCORE if run.config.data.normal_classes is not None else "mse"
    named = _read(run, images, resize, limit)
    data = run.data()
    train = None
    if kind in FITTED_KINDS:  # after the images were read: bad input stays one error line
        console.print(f"{kind}: fitting NAP on up to {NAP_FIT_IMAGES:,} of the run's training images (an SVD)")
        train = data.train.head(NAP_FIT_IMAGES).images
    table = score_images(run.model, named.images, named.names, data.val.images, percentile, kind, named.labels, train)
    write_scores(table, out)
    n = int(table.flagged.sum())
    console.print(
        f"threshold {table.threshold:.6g} ({kind}, {percentile:g}th percentile of {len(data.val):,} "
        f"validation images); flagged {n:,} of {len(table.names):,} images ({n / len(table.names):.1%}); "
        f"wrote {out}"
    )


FORMAT = option(
    "fmt",
    "safetensors",
    str,
    "safetensors (the model folder: config.json + model.safetensors) or onnx "
    "(also encoder.onnx and decoder.onnx, checked with onnxruntime; needs pip install 'aelab[onnx]')",
    "--format",
)
EXPORT_TO = option("out", None, Optional[Path], "Output folder (default: <run>/export)", "-o", "--out")
CHECK_IMAGES = option("images", 64, int, "Test images the ONNX check runs on", "--check-images", min=1)
CODE_FILE = option("out", ..., Path, "Code file to write (.npz)", "-o", "--out")
BITS = option(
    "bits",
    8,
    int,
    "Bits per code value: 8 or 16 (quantized per unit) or 32 (float32); a VQ-VAE's index grid is stored exactly",
    "--bits",
)
ENTROPY = option(
    "entropy",
    False,
    bool,
    "Store the 8-bit levels as a range-coded stream (a factorized model of the file's levels, its table in the file)",
    "--entropy",
)
REFINE = option(
    "refine",
    0,
    int,
    "Search each image's code for this many Adam steps with the decoder fixed before quantizing (as 'aelab "
    "refine' does; a better reconstruction from a file of the same size); 0 = the encoder's code",
    "--refine",
)
CODES = argument("codes_file", Path, "Code file from 'aelab encode'")
PNG_FOLDER = option("out", ..., Path, "Folder for the decoded PNGs", "-o", "--out")
CSV_FILE = option("out", ..., Path, "CSV file to write", "-o", "--out")
PERCENTILE = option(
    "percentile",
    99.0,
    float,
    "Flag images above this percentile (0..100) of the validation split's scores",
    "--threshold-percentile",
)
SCORE = option(
    "kind",
    None,
    Optional[str],
    "Score the flag uses: mse, ssim (1 - SSIM), sap or nap (RaPP: hidden activations along the encoder; nap is "
    "normalized on the run's training images) or nap_sap (their product); any but mse adds a column. Default: "
    "nap_sap for a run trained on normal classes only (what 'aelab anomaly' measures), else mse",
    "--score",
)


def register(app: typer.Typer) -> None:
    """Add ``export``, ``encode``, ``decode`` and ``score`` to ``app``."""
    add(app, "export", export, [RUN_PATH, WHICH, DATA_DIR, FORMAT, EXPORT_TO, CHECK_IMAGES])
    add(app, "encode", encode, [RUN_PATH, IMAGES, WHICH, DATA_DIR, CODE_FILE, BITS, ENTROPY, REFINE, RESIZE, LIMIT])
    add(app, "decode", decode, [RUN_PATH, CODES, WHICH, PNG_FOLDER])
    add(app, "score", score, [RUN_PATH, IMAGES, WHICH, DATA_DIR, CSV_FILE, PERCENTILE, SCORE, RESIZE, LIMIT])
