"""Commands that look at models and finished runs: ``models`` (the presets), one command per analysis of the
registry (``interpolate``, ``latent-map``, ...), and ``report`` (an experiment's HTML report, again)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from aelab.cli.common import DATA_DIR, RUN_PATH, WHICH, add, argument, console, log, option
from aelab.cli.schema import field_flag

SHIPPED_TABLE = Path(__file__).with_name("presets.json")
"""The presets' table as built at release (``{"key": ..., "rows": [...]}``), so a first ``aelab models`` answers
without building any model; a test checks it against the built models."""


def shipped_key() -> str:
    """The key of the shipped table: aelab's version and the preset definitions."""
    import hashlib

    import aelab
    from aelab.config import PRESETS

    return hashlib.sha256(f"{aelab.__version__}|{PRESETS!r}".encode()).hexdigest()[:16]


def built_preset_rows() -> list[list[str]]:
    """One row per preset, from building every model: name, kind, parameters, input, code, compression ratio,
    recipe, source."""
    from aelab.config import PRESETS
    from aelab.models import build_model

    rows = []
    for name, preset in PRESETS.items():
        m = build_model(name)
        rows.append(
            [
                name,
                m.describe(),
                f"{m.num_parameters():,}",
                "x".join(map(str, m.input_shape)),
                "x".join(map(str, m.code_shape)),
                f"{m.compression_ratio:.1f}x",
                " ".join([preset.recipe, *(f"{k}={v}" for k, v in preset.training.items())]),
                preset.source,
            ]
        )
    return rows


def write_shipped_table() -> None:
    """Build every preset and write :data:`SHIPPED_TABLE` (after a change to the presets or their builders:
    ``python -c "from aelab.cli.inspect import write_shipped_table; write_shipped_table()"``)."""
    import json

    from aelab.io import atomic_write_text

    atomic_write_text(SHIPPED_TABLE, json.dumps({"key": shipped_key(), "rows": built_preset_rows()}, indent=1) + "\n")


def _preset_rows() -> list[list[str]]:
    """The shipped table when its key matches this install's presets; else the table built once and cached in
    aelab's cache per version of the preset table and of the model code (a changed builder: built again)."""
    import hashlib
    import json

    import aelab
    from aelab.io import atomic_write_text, cache_dir

    presets_key = shipped_key()
    if SHIPPED_TABLE.is_file():
        shipped = json.loads(SHIPPED_TABLE.read_text())
        if shipped.get("key") == presets_key:
            return shipped["rows"]
    code = sorted(
        (p.name, p.stat().st_mtime_ns, p.stat().st_size)
        for part in ("models", "config")
        for p in (Path(aelab.__file__).parent / part).glob("*.py")
    )
    key = hashlib.sha256(f"{presets_key}|{code}".encode()).hexdigest()[:16]
    path = cache_dir() / "presets" / f"{key}.json"
    if path.is_file():
        return json.loads(path.read_text())
    rows = built_preset_rows()
    atomic_write_text(path, json.dumps(rows))
    return rows


HEADINGS = ("preset", "kind", "parameters", "input", "code", "compression", "recipe", "source")


def list_models(name: str | None = None) -> None:
    """List the presets: family, parameters, input shape, code shape, compression ratio, recipe and source. With a
    preset's name: that preset, its description, and the same model written out as a config to vary (YAML for
    --config, and as flags)."""
    if name is not None:
        show_preset(name)
        return
    table = Table(title="aelab presets")
    for col in HEADINGS:
        table.add_column(col, justify="right" if col in ("parameters", "compression") else "left")
    for row in _preset_rows():
        table.add_row(*row)
    console.print(table)


def show_preset(name: str) -> None:
    """Print preset ``name``'s row, description and written-out config (:meth:`aelab.config.Preset.written_out`).

    Raises:
        ConfigError: not a preset name (the allowed names listed).
    """
    import yaml

    from aelab.config import PRESETS
    from aelab.errors import ConfigError

    if name not in PRESETS:
        raise ConfigError(f"model: got {name!r}; allowed: {', '.join(PRESETS)}")
    preset, row = PRESETS[name], next(r for r in _preset_rows() if r[0] == name)
    config = preset.written_out()
    flow = {"default_flow_style": True, "sort_keys": False, "width": 10**6}
    flags = ["--set model.preset=null"] + [
        f"--set 'model.{key}={yaml.safe_dump(value, **flow).strip()}'" for key, value in config["model"].items()
    ]
    flags += [f"--set training.{key}={value}" for key, value in config["training"].items()]
    lines = [f"{h}: {v}" for h, v in zip(HEADINGS, row)] + ["", inspect.cleandoc(preset.description), ""]
    lines += [
        f"{name} written out (the same model and training fields under another run id; it takes its data's image "
        f"shape, so train it on data of {row[3]}). Edit it, save it as a file, and run aelab train --config FILE:",
        "",
        yaml.safe_dump(config, default_flow_style=None, sort_keys=False).rstrip(),
        "",
        "The same as flags:",
        "",
        "aelab train " + " ".join(flags),
    ]
    console.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)


def _analysis_command(entry):
    from aelab.config import parse_config

    def run_one(path, model, data_dir, given):
        from aelab.experiments.finished import open_runs

        parse_config(entry.params, given, source=entry.name)  # bad parameters before loading anything
        run = open_runs(path, model, with_data=False, data_dir=data_dir)[0]
        outcome = run.analyse(entry.name, given)
        if outcome.summary:
            console.print(outcome.summary)
        if outcome.rows and entry.columns:
            cols = [c for c in entry.columns if any(c.key in r for r in outcome.rows)]
            table = Table(title=f"{run.label}: {entry.title}")
            for c in cols:
                table.add_column(c.heading, justify="right")
            for row in outcome.rows:
                table.add_row(*(c.format(row) for c in cols))
            console.print(table)
        out = run.folder.analysis_dir
        written = [p for p in (out / f"{entry.name}.png", out / f"{entry.name}.json") if p.is_file()]
        console.print("wrote " + ", ".join(map(str, written)))

    run_one.__doc__ = entry.text
    flags = [
        field_flag(field.alias or name, name, field, "Analysis", None if field.alias else entry.params)
        for name, field in entry.params.model_fields.items()
    ]
    return run_one, flags


def report(path: Path, analyses: bool, data_dir) -> None:
    """Write the experiment's self-contained HTML report again (images embedded), re-running the analyses."""
    from aelab.experiments.jobs import report as write

    result = write(path, analyses=analyses, data_dir=data_dir, log=log)
    console.print(f"wrote {result.folder.report}")


def codecs(path: Path, data_dir) -> None:
    """Every finished run of a run or experiment folder beside JPEG, WebP and PNG, and PCA with the same quantizer
    and entropy model: bits per image from real streams and files vs PSNR and SSIM (codecs.png, codecs.json)."""
    from aelab.evaluation.image_codecs import header_bytes
    from aelab.experiments.codecs_job import codecs as measure

    result = measure(path, data_dir=data_dir, log=log)
    table = Table(title="Entropy-coded codes vs image codecs (test images)")
    for heading in ("model", "code", "bits/image", "PSNR (dB)", "SSIM", "JPEG bytes*", "WebP bytes*", "share**"):
        table.add_column(heading, justify="left" if heading in ("model", "code") else "right")

    def num(value, fmt: str) -> str:
        return "-" if value is None else fmt.format(value)

    for r in result.rows:
        table.add_row(
            r["model"],
            r["storage"].partition(" components), ")[2] if r["model"].startswith("PCA") else r["storage"],
            num(r["bits_per_image"], "{:,.1f}"),
            num(r["psnr"], "{:.2f}"),
            num(r["ssim"], "{:.4f}"),
            num(r["jpeg_bytes_at_psnr"], "{:,.1f}"),
            num(r["webp_bytes_at_psnr"], "{:,.1f}"),
            num(r["share_of_best_codec"], "{:.3f}"),
        )
    console.print(table)
    console.print(
        f"* bytes per image of the codec's files at the model's PSNR (interpolated in its quality sweep; '-': out "
        f"of its reach), headers included (a 1x1 file: JPEG {header_bytes('JPEG')} bytes, WebP "
        f"{header_bytes('WebP')}); lowest qualities: "
        + ", ".join(
            f"{p['codec']} q{p['quality']} {p['psnr']:.2f} dB at {p['bytes_per_image']:.1f} bytes"
            for p in result.points
            if p["quality"] is not None
            and p["quality"] == min(q["quality"] for q in result.points if q["codec"] == p["codec"])
        )
        + ". ** the code's bytes over the better codec's (when both reach its PSNR).",
        soft_wrap=True,
    )
    console.print(f"wrote {result.figure}, {result.data}")


def register(app: typer.Typer) -> None:
    """Add ``models``, the analysis commands and ``report`` to ``app``."""
    from aelab.analyses import ANALYSES

    add(
        app,
        "models",
        list_models,
        [argument("name", Optional[str], "A preset: show it and its config written out", default=None)],
    )
    for entry in ANALYSES:
        fn, flags = _analysis_command(entry)
        add(app, entry.name, fn, [RUN_PATH, WHICH, DATA_DIR], flags, help=entry.text)
    add(app, "codecs", codecs, [argument("path", Path, "A run or experiment folder"), DATA_DIR])
    add(
        app,
        "report",
        report,
        [
            argument("path", Path, "An experiment folder (or a run folder: its experiment's)"),
            option("analyses", True, bool, "(Re)run every run's analyses first", "--analyses/--no-analyses"),
            DATA_DIR,
        ],
    )
