"""One self-contained HTML report (images embedded as base64, no network needed)."""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

from aelab.errors import AelabError


def safe_name(label: str) -> str:
    """A label as a file-name part (the same rule as the run folder's model sub-folders)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in label)

METRIC_COLUMNS = [
    ("model", "model", "{}"), ("parameters", "parameters", "{:,}"), ("code_size", "code size", "{}"),
    ("compression_ratio", "compression", "{:.1f}x"), ("test_mse", "test MSE", "{:.5f}"),
    ("test_psnr", "PSNR (dB)", "{:.2f}"), ("test_ssim", "SSIM", "{:.4f}"),
    ("code_l0", "L0", "{:.1f}"), ("dead_units", "dead", "{}"),
    ("train_seconds", "train time (s)", "{:.1f}"), ("images_per_second", "images/s", "{:,.0f}"),
]
DENOISING_COLUMNS = [("noisy_psnr", "noisy PSNR", "{:.2f}"), ("denoised_psnr", "denoised PSNR", "{:.2f}")]


def columns(rows: list[dict]) -> list[tuple[str, str, str]]:
    """The table columns for these rows (denoising columns only when a row has them)."""
    extra = DENOISING_COLUMNS if any("noisy_psnr" in r for r in rows) else []
    return METRIC_COLUMNS[:7] + extra + METRIC_COLUMNS[7:]


def format_row(row: dict, cols: list[tuple[str, str, str]] | None = None) -> list[str]:
    """A metrics row as the strings shown in tables."""
    out = []
    for key, _, fmt in cols or METRIC_COLUMNS:
        value = row.get(key)
        out.append("-" if value is None else fmt.format(value))
    return out


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


ANALYSES = [("interpolation", "Latent interpolation", "Top: data-space blend (1-a)x + ax'. Bottom: decoded latent "
              "blend g((1-a)f(x) + af(x')); its endpoints are the reconstructions of the two images."),
             ("latent_map", "Latent map", "Test codes in 2-D, coloured by class."),
             ("code_heatmap", "Code heatmap", "Codes of 512 test images (samples x units); dead units in red."),
             ("feature_dictionary", "Feature dictionary", "What each code unit decodes to: g(a e_j) - g(0)."),
             ("failures", "Where it fails", "Per-class test MSE and the worst-reconstructed test images."),
             ("compression", "Compression", "Code bytes per image (float32 / float16 / 8-bit) vs raw bytes, and PSNR."),
             ("probes", "Features with few labels", "Frozen-encoder probes vs classifiers trained from scratch.")]


def _table(rows: list[dict], cols: list[tuple[str, str, str]], html_id: str = "") -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in format_row(r, cols)) + "</tr>"
                   for r in rows)
    ident = f" id='{html_id}'" if html_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def write_report(run_dir: Path) -> Path:
    """Write ``run_dir/report.html`` from what the run folder holds: ``config.yaml``, ``metrics.json``,
    the figures, and ``analysis/`` (figures and tables). Images are embedded; no network is needed.

    Raises:
        AelabError: ``run_dir`` has no ``metrics.json`` (not a finished run).
    """
    run_dir = Path(run_dir)
    metrics = _json(run_dir / "metrics.json")
    if metrics is None:
        raise AelabError(f"{str(run_dir)!r} has no metrics.json: not a finished aelab run folder")
    rows = metrics["models"]
    pca = _json(run_dir / "analysis" / "pca.json") or []
    cols = columns(rows)
    table = _table(rows + pca, cols, "metrics")
    baseline = metrics.get("baseline_mean_image_mse")
    if baseline is not None:
        cells = ["mean image (baseline)"] + ["-"] * 3 + [f"{baseline:.5f}"] + ["-"] * (len(cols) - 5)
        table = table.replace("</tbody>", "<tr class=baseline>" + "".join(f"<td>{c}</td>" for c in cells)
                              + "</tr></tbody>")
    title = f"aelab report: {run_dir.name}"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>", f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1150px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}"
        "td:first-child{text-align:left}tr.baseline{color:#666}img{max-width:100%}"
        "pre{background:#f4f4f4;padding:1em;overflow:auto}h3{margin-top:1.5em}</style>",
        "<script>window.addEventListener('load',function(){var i=Array.prototype.slice.call(document.images);"
        "document.body.setAttribute('data-images-loaded',i.filter(function(x){return x.complete&&x.naturalWidth>0})"
        ".length+'/'+i.length);});</script></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(metrics.get('summary', metrics.get('dataset', '')))}</p>",
        "<h2>Comparison on the test set</h2>", table,
        "<p>PCA rows: scikit-learn PCA fitted on the training images with as many components as the code has "
        "values. Mean image: predicting the mean training image for every test image.</p>",
    ]
    if (run_dir / "loss_curves.png").is_file():
        parts += ["<h2>Loss curves</h2>", _img(run_dir / "loss_curves.png")]
    for pattern, heading in [("layerwise_*.png", "Greedy layer-wise pretraining"), ("denoising_*.png", "Denoising")]:
        figures = sorted(run_dir.glob(pattern))
        if figures:
            parts += [f"<h2>{heading}</h2>"] + [_img(p) for p in figures]
    grids = sorted(run_dir.glob("reconstructions_epoch_*.png"))
    if grids:
        parts.append("<h2>Reconstructions over epochs</h2>")
        parts += [_img(p) for p in grids]
    analysis = run_dir / "analysis"
    for row in rows:
        found = [(kind, heading, text, analysis / f"{kind}_{safe_name(row['model'])}.png") for kind, heading, text in ANALYSES]
        found = [f for f in found if f[3].is_file()]
        if not found:
            continue
        parts.append(f"<h2>Inside {html.escape(row['model'])}</h2>")
        for kind, heading, text, png in found:
            parts += [f"<h3>{heading}</h3>", f"<p>{html.escape(text)}</p>", _img(png)]
            data = _json(png.with_suffix(".json"))
            if kind == "compression" and data:
                parts.append(_table(data, COMPRESSION_COLUMNS))
            if kind == "probes" and data:
                parts.append(_table(data, [c for c in PROBE_COLUMNS if any(c[0] in r for r in data)]))
    config_text = (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").is_file() else ""
    parts += ["<h2>Configuration</h2>", f"<pre>{html.escape(config_text)}</pre>", "</body></html>"]
    path = run_dir / "report.html"
    tmp = run_dir / ".report.html.tmp"
    tmp.write_text("\n".join(parts))
    os.replace(tmp, path)
    return path


COMPRESSION_COLUMNS = [("storage", "code stored as", "{}"), ("code_bytes", "bytes per code", "{}"),
                       ("image_bytes", "raw image bytes", "{}"), ("compression_ratio", "ratio", "{:.1f}x"),
                       ("psnr", "PSNR (dB)", "{:.2f}")]
PROBE_COLUMNS = [("labels_per_class", "labels per class", "{}"), ("labelled", "labelled images", "{:,}"),
                 ("logistic", "linear probe", "{:.3f}"), ("knn", "kNN", "{:.3f}"), ("mlp", "MLP (scratch)", "{:.3f}"),
                 ("cnn", "CNN (scratch)", "{:.3f}"), ("helps", "codes help?", "{}")]
