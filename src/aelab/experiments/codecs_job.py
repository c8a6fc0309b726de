"""``aelab codecs``: every finished run of a run or experiment folder beside JPEG, WebP and PNG, and PCA with the
same quantizer and entropy model: one table and one rate-distortion figure (bits per image from real streams and
files vs PSNR and SSIM), written beside the runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from aelab.experiments.finished import LoadedRun, open_runs


@dataclass
class CodecsResult:
    """What ``aelab codecs`` measured and wrote."""

    rows: list[dict]
    """One per model and per PCA size: :func:`aelab.evaluation.rate_distortion.table_row`."""
    points: list[dict]
    """The codec sweep (JPEG, WebP, PNG) on the first runs' test images."""
    figure: Path
    data: Path


def _compression_rows(run: LoadedRun) -> list[dict]:
    """The run's compression rows: its stored analysis when it is as complete as this version writes it (the SSIM
    of its coded row and codec rows; a transform-coded row for a code that is not an index grid), else computed
    now."""
    from aelab.evaluation.compression import TRANSFORM_STORAGE
    from aelab.evaluation.rate_distortion import best_coded

    path = run.folder.analysis("compression", ".json")
    if path.is_file():
        rows = json.loads(path.read_text())
        coded = best_coded(rows)
        complete = run.model.code_kind == "indices" or any(r["storage"] == TRANSFORM_STORAGE for r in rows)
        if coded is not None and coded.get("ssim") is not None and any(r.get("ssim") for r in rows if "codec" in r):
            if complete:
                return rows
    return run.analyse("compression").rows


def codecs(path: Path | str, data_dir: Path | str | None = None, log=print) -> CodecsResult:
    """Measure every finished image run of ``path`` (a run or experiment folder) and write ``codecs.png`` and
    ``codecs.json`` into the experiment folder (a run folder's ``analysis/`` for one run).

    Raises:
        AelabError: see :func:`aelab.experiments.finished.open_runs`; no run that works on images without labels.
    """
    from aelab.errors import AelabError
    from aelab.evaluation.compression import ENTROPY_FIT_IMAGES
    from aelab.evaluation.rate_distortion import best_coded, codec_points, pca_coded, table_row
    from aelab.figures import save_figure
    from aelab.figures.charts import codecs_figure
    from aelab.io import atomic_write_text

    runs = [r for r in open_runs(path, data_dir=data_dir) if not r.model.lacks("unlabelled")]
    runs = [r for r in runs if r.data().is_vectors is False]
    if not runs:
        raise AelabError(f"{str(path)!r} has no finished run on images without labels; allowed: image autoencoders")
    rows: list[dict] = []
    points: list[dict] = []
    sizes: set[int] = set()
    for run in runs:
        log(f"{run.label}: its code, entropy coded")
        found = _compression_rows(run)
        coded = best_coded(found)
        points = points or codec_points(found)
        if coded is not None:
            rows.append(table_row(run.label, coded, points))
        if run.model.code_kind != "indices":
            sizes.add(run.model.code_size)
    dataset = runs[0].data()
    for d in sorted(sizes):
        if d <= min(len(dataset.train), dataset.train.pixels):
            log(f"PCA ({d} components): quantized and entropy coded the same way")
            held = dataset.val if len(dataset.val) else dataset.train.head(ENTROPY_FIT_IMAGES)
            coded = pca_coded(dataset.train, held, dataset.test, d, runs[0].config.seed)
            rows.append(table_row(f"PCA ({d})", coded, points))
    folder = Path(path)
    out = runs[0].folder.analysis_dir if (folder / "run.yaml").is_file() else folder
    out.mkdir(parents=True, exist_ok=True)
    figure, data = out / "codecs.png", out / "codecs.json"
    save_figure(codecs_figure(rows, points, dataset.test.pixels), figure)
    atomic_write_text(data, json.dumps({"models": rows, "codecs": points}, indent=2))
    return CodecsResult(rows, points, figure, data)
