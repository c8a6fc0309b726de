"""One self-contained HTML report per experiment (images embedded as base64, no network needed).

The report renders what it is handed: the comparison table (runs, PCA and mean-image baselines; its columns
from :mod:`aelab.models.measures`), the loss curves of all runs, the reconstruction figures, and for each run its
own figures, the analyses (:data:`aelab.analyses.ANALYSES`) that exist on disk, and those that did not run, with
why.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

from aelab.io import atomic_write_text
from aelab.models.measures import Measure, is_baseline
from aelab.models.table import columns

COMPRESSION_COLUMNS = (Measure("model", "model"), Measure("storage", "code stored as"),
                       Measure("code_bytes", "bytes per image", "{:g}"), Measure("compression_ratio", "ratio", "{:.1f}x"),
                       Measure("psnr", "PSNR (dB)", "{:.2f}"))


@dataclass
class RunSection:
    """One run's part of the report: its figures ``(heading, png)`` and analyses ``(entry, png, json)``
    (only files that exist are shown), and the analyses that did not run, with why."""

    label: str
    run_id: str
    folder: str
    figures: list
    analyses: list
    not_run: list = field(default_factory=list)
    """One line per analysis that failed or does not apply (``name: why``)."""


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def _table(rows: list[dict], cols, html_id: str = "") -> str:
    head = "".join(f"<th>{html.escape(m.heading)}</th>" for m in cols)
    body = "".join(f"<tr{' class=baseline' if is_baseline(r) or str(r.get('model', '')).startswith('PCA') else ''}>"
                   + "".join(f"<td>{html.escape(m.format(r))}</td>" for m in cols) + "</tr>" for r in rows)
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
    cols = columns(rows + baselines)
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
        if not found and not analyses and not s.not_run:
            continue
        parts.append(f"<h2>Inside {html.escape(s.label)}</h2><p>run {s.run_id}, folder {html.escape(s.folder)}</p>")
        if s.not_run:
            parts.append("<p>Analyses not in this section:</p><ul>" + "".join(
                f"<li class=failed>{html.escape(line)}</li>" for line in s.not_run) + "</ul>")
        for heading, png in found:
            parts += [f"<h3>{html.escape(heading)}</h3>", _img(png)]
        for entry, png, js in analyses:
            parts += [f"<h3>{html.escape(entry.title)}</h3>", f"<p>{html.escape(entry.text)}</p>", _img(png)]
            data = json.loads(js.read_text()) if js.is_file() else None
            if entry.columns and isinstance(data, list) and data:
                parts.append(_table(data, [c for c in entry.columns if any(c.key in r for r in data)]))
            elif entry.columns and isinstance(data, dict) and data.get("per_class"):
                parts.append(_table(data["per_class"], entry.columns))
    parts += ["<h2>Configuration</h2>", f"<pre>{html.escape(config_text)}</pre>", "</body></html>"]
    return atomic_write_text(path, "\n".join(parts))
