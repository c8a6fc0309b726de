"""One self-contained HTML report per experiment (images embedded as base64, no network needed).

The report renders what it is handed: the comparison table (runs, PCA and mean-image baselines), the loss
curves of all runs, the reconstruction figures, and for each run its own figures and the analyses of the
registry (:data:`aelab.figures.analyses.ANALYSES`) that exist on disk.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path

from aelab.io import atomic_write_text

METRIC_COLUMNS = [
    ("model", "model", "{}"), ("parameters", "parameters", "{:,}"), ("code_size", "code size", "{}"),
    ("compression_ratio", "compression", "{:.1f}x"), ("test_mse", "test MSE", "{:.5f}"),
    ("test_psnr", "PSNR (dB)", "{:.2f}"), ("test_ssim", "SSIM", "{:.4f}"),
    ("code_l0", "L0", "{:.1f}"), ("dead_units", "dead", "{}"),
    ("train_seconds", "train time (s)", "{:.1f}"), ("images_per_second", "images/s", "{:,.0f}"),
]
DENOISING_COLUMNS = [("noisy_psnr", "noisy PSNR", "{:.2f}"), ("denoised_psnr", "denoised PSNR", "{:.2f}")]
ANOMALY_COLUMNS = [("normal", "normal class", "{}"), ("roc_auc", "ROC-AUC", "{:.4f}"), ("pr_auc", "PR-AUC", "{:.4f}")]
VARIATIONAL_COLUMNS = [("test_nelbo", "-ELBO (nats)", "{:.2f}"), ("test_iwae_nll", "-IWAE bound (nats)", "{:.2f}"),
                       ("test_kl", "KL (nats)", "{:.2f}"), ("active_units", "active units", "{}")]
CODEBOOK_COLUMNS = [("bits_per_image", "bits/image", "{:g}"), ("perplexity", "codebook perplexity", "{:.1f}"),
                    ("dead_codes", "dead codes", "{}")]
SAMPLE_COLUMNS = [("frechet_distance", "Frechet distance*", "{:.2f}"),
                  ("sample_class_accuracy", "samples of their class", "{:.3f}")]

COMPRESSION_COLUMNS = [("model", "model", "{}"), ("storage", "code stored as", "{}"),
                       ("code_bytes", "bytes per image", "{:g}"), ("compression_ratio", "ratio", "{:.1f}x"),
                       ("psnr", "PSNR (dB)", "{:.2f}")]


def generative_columns(rows: list[dict]) -> list[tuple[str, str, str]]:
    """The VAE, VQ-VAE and sample-quality columns that some of these rows have."""
    return [c for group in (VARIATIONAL_COLUMNS, CODEBOOK_COLUMNS, SAMPLE_COLUMNS) for c in group
            if any(r.get(c[0]) is not None for r in rows)]


def columns(rows: list[dict], generative: bool = True) -> list[tuple[str, str, str]]:
    """The table columns for these rows (denoising, anomaly and, with ``generative``, the generative columns
    only when a row has them)."""
    extra = DENOISING_COLUMNS if any("noisy_psnr" in r for r in rows) else []
    extra += ANOMALY_COLUMNS if any("roc_auc" in r for r in rows) else []
    extra += generative_columns(rows) if generative else []
    return METRIC_COLUMNS[:7] + extra + METRIC_COLUMNS[7:]


def format_row(row: dict, cols: list[tuple[str, str, str]] | None = None) -> list[str]:
    """A row as the strings shown in tables ('-' where the row has no value)."""
    out = []
    for key, _, fmt in cols or METRIC_COLUMNS:
        value = row.get(key)
        out.append("-" if value is None else fmt.format(value))
    return out


@dataclass
class RunSection:
    """One run's part of the report: its figures ``(heading, png)`` and analyses ``(entry, png, json)``
    (only files that exist are shown)."""

    label: str
    run_id: str
    folder: str
    figures: list
    analyses: list


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def _table(rows: list[dict], cols: list[tuple[str, str, str]], html_id: str = "") -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in cols)
    body = "".join(f"<tr{' class=baseline' if r.get('baseline') or 'PCA' in str(r.get('model')) else ''}>"
                   + "".join(f"<td>{html.escape(v)}</td>" for v in format_row(r, cols)) + "</tr>" for r in rows)
    ident = f" id='{html_id}'" if html_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = ("<style>body{font-family:sans-serif;max-width:1150px;margin:2em auto;padding:0 1em}"
         "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}"
         "td:first-child{text-align:left}tr.baseline{color:#666}img{max-width:100%}"
         "pre{background:#f4f4f4;padding:1em;overflow:auto}h3{margin-top:1.5em}.failed{color:#a00}</style>")
LOADED = ("<script>window.addEventListener('load',function(){var i=Array.prototype.slice.call(document.images);"
          "document.body.setAttribute('data-images-loaded',i.filter(function(x){return x.complete&&x.naturalWidth>0})"
          ".length+'/'+i.length);});</script>")


def write_report(path: Path, title: str, summary: str, rows: list[dict], baselines: list[dict], failed: list[dict],
                 loss_curves: list[Path], reconstructions: list[Path], sections: list[RunSection],
                 config_text: str, rate_distortion: Path | None = None,
                 compression: list[dict] | None = None) -> Path:
    """Write the report to ``path`` atomically and return it. ``loss_curves`` holds the loss figure (or
    nothing), ``reconstructions`` the reconstruction figures, in order; ``rate_distortion`` the figure of
    error against code size, when the runs have several code sizes; ``compression`` one row per run of its
    stored code (bytes per image and PSNR)."""
    cols = columns(rows)
    parts = ["<!doctype html><html><head><meta charset='utf-8'>", f"<title>{html.escape(title)}</title>", STYLE,
             LOADED, "</head><body>", f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(summary)}</p>",
             "<h2>Comparison on the test set</h2>", _table(rows + baselines, cols, "metrics"),
             "<p>PCA rows: scikit-learn PCA fitted on the training images with as many components as the code has "
             "values. Mean image: predicting the mean training image for every test image. PSNR is computed per "
             "image and averaged over the test set.</p>"]
    if any("test_nelbo" in r or "frechet_distance" in r for r in rows):
        parts.append("<p>VAEs: -ELBO and KL in nats per image on the whole test set (the reconstruction columns use "
                     "the posterior mean); the -IWAE bound (k importance samples) is on the first test images, and "
                     "at most the -ELBO of those same images (in metrics.json). A latent unit is active when the "
                     "variance of its posterior mean over the test set exceeds 0.01. *Frechet distance: between "
                     "generated and test images in the features of a small CNN that aelab trains on this dataset; "
                     "it is not the Inception FID and is comparable only between aelab runs on the same data.</p>")
    if compression:
        parts += ["<h2>Compression: bytes per image and quality</h2>", "<p>Each run's code as it would be stored: "
                  "deterministic codes quantized to 8 bits per value (per-unit affine), a VQ-VAE's grid of codebook "
                  "indices at log2(K) bits each; PSNR of the images decoded from that code.</p>",
                  _table(compression, COMPRESSION_COLUMNS)]
    if rate_distortion is not None:
        parts += ["<h2>Rate-distortion</h2>", "<p>Test MSE and PSNR against code size: one line per family of "
                  "models (PCA at the same code sizes; the tutorials' presets; aelab's res-* presets; your own "
                  "models). Lower MSE at the same code size is better.</p>", _img(rate_distortion)]
    if failed:
        parts.append("<h2>Failed runs</h2><ul>" + "".join(
            f"<li class=failed>{html.escape(f['name'])} ({f['id']}): {html.escape(f['error'] or '')}</li>"
            for f in failed) + "</ul>")
    if loss_curves:
        parts += ["<h2>Loss curves</h2>"] + [_img(p) for p in loss_curves]
    if reconstructions:
        parts += ["<h2>Reconstructions over epochs</h2>", "<p>Top row: test images; one row per run.</p>"]
        parts += [_img(p) for p in reconstructions]
    for s in sections:
        found = [(h, p) for h, p in s.figures if p.is_file()]
        analyses = [(a, png, js) for a, png, js in s.analyses if png.is_file()]
        if not found and not analyses:
            continue
        parts.append(f"<h2>Inside {html.escape(s.label)}</h2><p>run {s.run_id}, folder {html.escape(s.folder)}</p>")
        for heading, png in found:
            parts += [f"<h3>{html.escape(heading)}</h3>", _img(png)]
        for entry, png, js in analyses:
            parts += [f"<h3>{html.escape(entry.title)}</h3>", f"<p>{html.escape(entry.text)}</p>", _img(png)]
            data = json.loads(js.read_text()) if js.is_file() else None
            if entry.columns and isinstance(data, list) and data:
                parts.append(_table(data, [c for c in entry.columns if any(c[0] in r for r in data)]))
            elif entry.columns and isinstance(data, dict) and data.get("per_class"):
                parts.append(_table(data["per_class"], entry.columns))
    parts += ["<h2>Configuration</h2>", f"<pre>{html.escape(config_text)}</pre>", "</body></html>"]
    return atomic_write_text(path, "\n".join(parts))
