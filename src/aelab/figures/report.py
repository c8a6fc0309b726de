"""One self-contained HTML report (images embedded as base64, no network needed)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

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


def write_report(run_dir: Path, title: str, config_yaml: str, rows: list[dict], baseline_mse: float | None,
                 notes: list[str] | None = None) -> Path:
    """Write ``run_dir/report.html`` from the run's table and the PNG figures in ``run_dir``."""
    run_dir = Path(run_dir)
    cols = columns(rows)
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in format_row(r, cols)) + "</tr>"
                   for r in rows)
    if baseline_mse is not None:
        cells = ["mean image (baseline)"] + ["-"] * 3 + [f"{baseline_mse:.5f}"] + ["-"] * (len(cols) - 5)
        body += "<tr class=baseline>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}"
        "td:first-child{text-align:left}tr.baseline{color:#666}img{max-width:100%}"
        "pre{background:#f4f4f4;padding:1em;overflow:auto}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Comparison on the test set</h2>",
        f"<table id='metrics'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>",
    ]
    parts += [f"<p>{html.escape(n)}</p>" for n in notes or []]
    if (run_dir / "loss_curves.png").is_file():
        parts += ["<h2>Loss curves</h2>", _img(run_dir / "loss_curves.png")]
    for pattern, heading in [("layerwise_*.png", "Greedy layer-wise pretraining"), ("denoising_*.png", "Denoising")]:
        figures = sorted(run_dir.glob(pattern))
        if figures:
            parts += [f"<h2>{heading}</h2>"] + [_img(p) for p in figures]
    grids = sorted(run_dir.glob("reconstructions_epoch_*.png"))
    if grids:
        parts.append("<h2>Reconstructions over epochs</h2>")
        parts += [f"<h3>{html.escape(p.stem.replace('_', ' '))}</h3>{_img(p)}" for p in grids]
    parts += ["<h2>Configuration</h2>", f"<pre>{html.escape(config_yaml)}</pre>", "</body></html>"]
    path = run_dir / "report.html"
    path.write_text("\n".join(parts))
    return path
