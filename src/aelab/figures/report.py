"""One self-contained HTML report per experiment (images embedded as base64, no network needed).

The report renders what it is handed (a :class:`Report`): the comparison table (runs, PCA and mean-image
baselines; its columns from :mod:`aelab.models.measures`), the loss curves of all runs, the reconstruction
figures, and for each run its own figures, the analyses (:data:`aelab.analyses.ANALYSES`) that exist on disk, and
those that did not run, with why. :func:`tables_html` is the same comparison as an HTML fragment (what a
notebook shows for a result).
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from aelab.io import atomic_write_text
from aelab.models.measures import Measure, is_baseline
from aelab.models.table import columns

COMPRESSION_COLUMNS = (
    Measure("model", "model"),
    Measure("storage", "code stored as"),
    Measure("code_bytes", "bytes per image", "{:g}"),
    Measure("compression_ratio", "ratio", "{:.1f}x"),
    Measure("psnr", "PSNR (dB)", "{:.2f}"),
)
STYLE = (
    "<style>body{font-family:sans-serif;max-width:1150px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}"
    "td:first-child{text-align:left}tr.baseline{color:#666}img{max-width:100%}"
    "pre{background:#f4f4f4;padding:1em;overflow:auto}h3{margin-top:1.5em}.failed{color:#a00}"
    ".skipped{color:#666}</style>"
)
LOADED = (
    "<script>window.addEventListener('load',function(){var i=Array.prototype.slice.call(document.images);"
    "document.body.setAttribute('data-images-loaded',i.filter(function(x){return x.complete&&x.naturalWidth>0})"
    ".length+'/'+i.length);});</script>"
)
TABLE_NOTE = (
    "<p>PCA rows: scikit-learn PCA fitted on the training images with as many components as the code has "
    "values. Mean image: predicting the mean training image for every test image. PSNR is computed per "
    "image and averaged over the test set.</p>"
)
GENERATIVE_NOTE = (
    "<p>VAEs: -ELBO and KL in nats per image on the whole test set (the reconstruction columns use "
    "the posterior mean); the -IWAE bound (k importance samples) is on the first test images, and "
    "at most the -ELBO of those same images (in metrics.json). A latent unit is active when the "
    "variance of its posterior mean over the test set exceeds 0.01. *Frechet distance: between "
    "generated and test images in the features of a small CNN that aelab trains on this dataset; "
    "it is not the Inception FID and is comparable only between aelab runs on the same data.</p>"
)


@dataclass
class RunSection:
    """One run's part of the report: its figures ``(heading, png)`` and analyses ``(entry, png, json)``
    (only files that exist are shown), and the analyses that did not run, with why."""

    label: str
    run_id: str
    folder: str
    figures: list
    analyses: list
    failed: list[str] = field(default_factory=list)
    """One line per analysis that failed (``name: error``)."""
    skipped: list[str] = field(default_factory=list)
    """One line per analysis that does not apply to the run (``name: why``)."""


@dataclass
class Report:
    """Everything one report shows."""

    title: str
    summary: str
    rows: list[dict]
    baselines: list[dict]
    failed: list[dict] = field(default_factory=list)
    """``{"id", "name", "error"}`` of each failed run."""
    loss_curves: list[Path] = field(default_factory=list)
    reconstructions: list[Path] = field(default_factory=list)
    sections: list[RunSection] = field(default_factory=list)
    config_text: str = ""
    rate_distortion: Optional[Path] = None
    compression: list[dict] = field(default_factory=list)
    """One row per run of its stored code (bytes per image and PSNR)."""
    one_class: tuple[list[dict], list] = ([], [])
    """The one-class benchmark's rows and columns (:func:`aelab.evaluation.one_class_table.one_class_table`)."""


def image_html(path: Path) -> str:
    """A PNG file as an ``<img>`` with the image embedded (base64)."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def figure_html(figure) -> str:
    """A matplotlib figure as an ``<img>`` with the PNG embedded."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def rows_html(rows: list[dict], cols) -> str:
    """Rows as an HTML table with the given columns (:class:`~aelab.models.measures.Measure`)."""
    return _table(rows, cols)


def _table(rows: list[dict], cols, html_id: str = "") -> str:
    head = "".join(f"<th>{html.escape(m.heading)}</th>" for m in cols)
    body = "".join(
        f"<tr{' class=baseline' if is_baseline(r) else ''}>"
        + "".join(f"<td>{html.escape(m.format(r))}</td>" for m in cols)
        + "</tr>"
        for r in rows
    )
    ident = f" id='{html_id}'" if html_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _items(lines: list[str], css: str) -> str:
    return "<ul>" + "".join(f"<li class={css}>{html.escape(line)}</li>" for line in lines) + "</ul>"


def tables_html(rows: list[dict], baselines: list[dict]) -> str:
    """The comparison table (runs and baselines) as an HTML fragment, with its notes."""
    parts = [_table(rows + baselines, columns(rows + baselines), "metrics"), TABLE_NOTE]
    if any("test_nelbo" in r or "frechet_distance" in r for r in rows):
        parts.append(GENERATIVE_NOTE)
    return "\n".join(parts)


def _experiment_parts(r: Report) -> list[str]:
    parts = ["<h2>Comparison on the test set</h2>", tables_html(r.rows, r.baselines)]
    if r.compression:
        parts += [
            "<h2>Compression: bytes per image and quality</h2>",
            "<p>Each run's code as it would be stored: "
            "deterministic codes as float32 and float16, quantized to 8 bits per value (per-unit affine), those "
            "levels entropy coded (a factorized model, a real range-coded stream), and transform coded (a "
            "decoder-weighted KLT with one step, chosen on validation images to match the 8-bit PSNR, entropy "
            "coded); a VQ-VAE's grid of codebook indices at log2(K) bits each and entropy coded; beside them "
            "JPEG, WebP and PNG files of the test images. PSNR of the images decoded from each.</p>",
            _table(r.compression, COMPRESSION_COLUMNS),
        ]
    if r.one_class[0]:
        parts += [
            "<h2>One-class anomaly detection beside published results</h2>",
            "<p>ROC-AUC x 100 of each normal class against the other nine (all test images), per score the runs "
            "report; the default score is the runs' ROC-AUC column. Published rows as quoted in aelab's issue 21 "
            "(not checked against the papers here); protocols differ between papers: see each source.</p>",
            _table(*r.one_class),
        ]
    if r.rate_distortion is not None:
        parts += [
            "<h2>Rate-distortion</h2>",
            "<p>Test MSE and PSNR against code size: one line per family of "
            "models (PCA at the same code sizes; the tutorials' presets; aelab's res-* presets; your own "
            "models). Lower MSE at the same code size is better.</p>",
            image_html(r.rate_distortion),
        ]
    if r.failed:
        parts += [
            "<h2>Failed runs</h2>",
            _items([f"{f['name']} ({f['id']}): {f['error'] or ''}" for f in r.failed], "failed"),
        ]
    if r.loss_curves:
        parts += ["<h2>Loss curves</h2>"] + [image_html(p) for p in r.loss_curves]
    if r.reconstructions:
        parts += ["<h2>Reconstructions over epochs</h2>", "<p>Top row: test images; one row per run.</p>"]
        parts += [image_html(p) for p in r.reconstructions]
    return parts


def section_parts(s: RunSection) -> list[str]:
    """One run's section: its figures, its analyses with their tables, and the analyses that did not run."""
    found = [(h, p) for h, p in s.figures if p.is_file()]
    analyses = [(a, png, js) for a, png, js in s.analyses if png.is_file()]
    if not found and not analyses and not s.failed and not s.skipped:
        return []
    parts = [f"<h2>Inside {html.escape(s.label)}</h2><p>run {s.run_id}, folder {html.escape(s.folder)}</p>"]
    if s.failed:
        parts += ["<p>Analyses that failed:</p>", _items(s.failed, "failed")]
    if s.skipped:
        parts += ["<p class=skipped>Analyses that do not apply to this run:</p>", _items(s.skipped, "skipped")]
    for heading, png in found:
        parts += [f"<h3>{html.escape(heading)}</h3>", image_html(png)]
    for entry, png, js in analyses:
        parts += [f"<h3>{html.escape(entry.title)}</h3>", f"<p>{html.escape(entry.text)}</p>", image_html(png)]
        data = json.loads(js.read_text()) if js.is_file() else None
        if entry.columns and isinstance(data, list) and data:
            parts.append(_table(data, [c for c in entry.columns if any(c.key in r for r in data)]))
        elif entry.columns and isinstance(data, dict) and data.get("per_class"):
            parts.append(_table(data["per_class"], entry.columns))
    return parts


def write_report(path: Path, report: Report) -> Path:
    """Write ``report`` to ``path`` atomically and return the path."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(report.title)}</title>",
        STYLE,
        LOADED,
        "</head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
        f"<p>{html.escape(report.summary)}</p>",
        *_experiment_parts(report),
    ]
    for s in report.sections:
        parts += section_parts(s)
    parts += ["<h2>Configuration</h2>", f"<pre>{html.escape(report.config_text)}</pre>", "</body></html>"]
    return atomic_write_text(path, "\n".join(parts))
