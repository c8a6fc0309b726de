"""Command line: a thin typer layer over the Python API.

``compare``, ``train`` and ``run`` are the same thing, an experiment of runs (:func:`aelab.run_experiment`);
their flags are generated from the pydantic schema (:mod:`aelab.cli.schema`), and any field can be set with
``--set training.lr=3e-4``. The analysis commands are generated from the analysis registry. Bad input is one
``error:`` line on stderr and exit code 2. Heavy libraries (torch, matplotlib, scikit-learn) are imported
only by the command that needs them, so ``aelab --help`` is fast.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from aelab.cli.schema import command, field_flag, option_flags, run_flags
from aelab.config import COMPARE_PRESETS, FRONTIER_CODE_SIZES
from aelab.errors import AelabError, ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="aelab: autoencoders on images. Train, compare and look inside them.")
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)


def _user_errors(fn):
    """Turn AelabError into one 'error: ...' line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except AelabError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print("interrupted: every finished epoch is checkpointed; run the same command again to "
                              "continue", highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None

    return wrapper


def _log(message: str) -> None:
    console.print(message, highlight=False)


P = inspect.Parameter
O = typer.Option


def _param(name: str, default, annotation, help: str, *decls: str, panel: str = "Experiment") -> P:
    return P(name, P.KEYWORD_ONLY, default=O(default, *decls, help=help, rich_help_panel=panel), annotation=annotation)


CONFIG = _param("config", None, Optional[Path], "Experiment YAML file (the one dialect of compare, train and run); "
                "flags given here override it.", "--config")
SETS = _param("set_", None, Optional[list[str]], "Set any config field, dotted: --set training.lr=3e-4 (repeat it).",
              "--set")
NAME = _param("name", None, Optional[str], "Experiment folder name (default: the command and a hash of its runs, "
              "so the same command finds its runs again).", "--name")
RESUME = _param("resume", False, bool, "Continue the experiment --name (re-running the same command does this "
                "too): finished runs are skipped, cut runs resume from their last checkpoint.", "--resume")


def _experiment(config: Optional[Path], name: Optional[str], sets: Optional[list[str]], given: dict):
    """The experiment and overrides from --config, --name, --set and the schema flags."""
    from aelab.config import ExperimentConfig, parse_config, read_yaml_mapping

    data = read_yaml_mapping(config) if config is not None else {}
    if name is not None:
        data["name"] = name
    experiment = parse_config(ExperimentConfig, data, source=str(config) if config else "options")
    return (experiment, *_split(given, sets))


def _split(given: dict, sets: Optional[list[str]]) -> tuple[dict, dict]:
    """(overrides of run fields: the schema flags and --set, dotted; execution options) from the used flags."""
    from aelab.config import RunOptions, parse_assignment

    options = {k: v for k, v in given.items() if k in RunOptions.model_fields}
    overrides = {k: v for k, v in given.items() if k not in options}
    for text in sets or []:
        key, value = parse_assignment(text)
        overrides[key] = value
    return overrides, options


def _options(options: dict):
    from aelab.config import RunOptions, parse_config

    return parse_config(RunOptions, options, source="options").model_dump()


def _models_list(text: str, flag: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise ConfigError(f"{flag}: give at least one preset name, e.g. linear-3,conv-64")
    return names


def _models(names: list[str], flag: str):
    from aelab.config import ExperimentConfig, parse_config

    return parse_config(ExperimentConfig, {"models": names}, source=flag).models


def _check_resume(resume: bool, name: Optional[str], runs_dir: Path) -> None:
    if not resume:
        return
    if not name:
        raise ConfigError("--resume needs --name: the experiment to continue (or run the same command again)")
    from aelab.experiments.experiment import load_experiment

    load_experiment(name, runs_dir)  # an error naming the experiments there if it does not exist


def _print_result(result) -> None:
    from aelab.figures.report import columns, format_row, generative_columns

    rows = result.rows
    cols = columns(rows, generative=False)
    test = sorted({str(r["test_images"]) for r in rows})
    table = Table(title=f"{result.name}: test set ({', '.join(test) or '-'} images)")
    for _, label, _ in cols:
        table.add_column(label, justify="left" if label == "model" else "right")
    for row in rows:
        table.add_row(*format_row(row, cols))
    for row in result.baselines:
        table.add_row(*format_row(row, cols), style="dim" if row.get("baseline") else "cyan")
    console.print(table)
    gen = generative_columns(rows)
    if gen:  # a second table: likelihood bounds, codebook use and sample quality
        units = "nats per image; " if any(c[0] == "test_nelbo" for c in gen) else ""
        table = Table(title=f"{result.name}: generative measures ({units}*not Inception FID)")
        for _, label, _ in [("model", "model", "{}"), *gen]:
            table.add_column(label, justify="left" if label == "model" else "right")
        for row in rows:
            table.add_row(*format_row(row, [("model", "model", "{}"), *gen]))
        console.print(table)
    for r in result.records:
        if r["status"] == "failed":
            console.print(f"[red]failed[/] {r['name']} ({r['id']}): {r['error']}", highlight=False)
    console.print(f"report: {result.folder.report}", highlight=False)


def _execute(experiment, overrides: dict, options: dict, kind: str, resume: bool):
    from aelab.experiments.experiment import compare, run_experiment

    opts = _options(options)
    _check_resume(resume, experiment.name, opts["runs_dir"])
    if kind == "compare":
        return compare(experiment, overrides, log=_log, **opts)
    return run_experiment(experiment, overrides, log=_log, kind=kind, **opts)


def _compare(config, set_, name, resume, models, given):
    """Train several autoencoders on the same data and compare them on the test set (default: the Covalent
    tutorial's linear-3 vs conv-64 on Fashion-MNIST, 50 epochs, batch 64, Adam 1e-3, MSE)."""
    experiment, overrides, options = _experiment(config, name, set_, given)
    if models is not None:
        experiment = experiment.model_copy(update={"models": _models(_models_list(models, "--models"), "--models")})
    _print_result(_execute(experiment, overrides, options, "compare", resume))


def _train(config, set_, name, resume, model, given):
    """Train one autoencoder and evaluate it: an experiment of one run."""
    experiment, overrides, options = _experiment(config, name, set_, given)
    if model is not None:
        experiment = experiment.model_copy(update={"models": _models([model], "--model")})
    from aelab.experiments.spec import resolve

    count = len(resolve(experiment, overrides))
    if count != 1:
        raise ConfigError(f"train runs one model, got {count} runs; use 'aelab compare' or 'aelab run' for several")
    _print_result(_execute(experiment, overrides, options, "train", resume))


def _run(experiment_file, set_, given):
    """Run an experiment file: every run not done yet; finished runs are skipped, cut runs resume."""
    from aelab.experiments.experiment import run_experiment

    overrides, options = _split(given, set_)
    _print_result(run_experiment(experiment_file, overrides, log=_log, **_options(options)))


def _class_list(text: str) -> list[int] | None:
    """``all`` -> None (every class), ``3`` -> [3], ``0..9`` -> [0, ..., 9], ``0,3,5`` -> [0, 3, 5].

    Raises:
        ConfigError: anything else.
    """
    text = text.strip()
    if text == "all":
        return None
    try:
        if ".." in text:
            a, b = (int(v) for v in text.split(".."))
            if a > b:
                raise ValueError
            return list(range(a, b + 1))
        return sorted({int(v) for v in text.split(",") if v.strip()}) or None
    except ValueError:
        raise ConfigError(f"--normal-class: got {text!r}; allowed: all, a class index (3), a range (0..9) or a list "
                          "(0,3,5)") from None


def _anomaly(config, set_, name, resume, models, normal_class, given):
    """One-class anomaly detection benchmark: for each normal class in turn, train on that class only, score
    every test image by its reconstruction error, and report ROC-AUC and PR-AUC of the class vs the rest
    (default: conv-64, every class of the dataset; the mean ROC-AUC is in the summary)."""
    from aelab.experiments.experiment import anomaly

    classes = _class_list(normal_class)
    experiment, overrides, options = _experiment(config, name, set_, given)
    if models is not None:
        experiment = experiment.model_copy(update={"models": _models(_models_list(models, "--models"), "--models")})
    opts = _options(options)
    _check_resume(resume, experiment.name, opts["runs_dir"])
    result = anomaly(experiment, classes, overrides, log=_log, **opts)
    _print_result(result)
    if result.mean_roc_auc is not None:
        console.print(f"mean ROC-AUC over {len(result.rows)} runs: {result.mean_roc_auc:.4f}", highlight=False)


def _frontier(config, set_, name, resume, code_sizes, tutorial, given):
    """The rate-distortion curve: train aelab's res-<size> presets (their own recipe) and the tutorial presets at
    the same code sizes (the tutorials' recipe), with PCA at every size; draws test MSE and PSNR against code
    size, one line per family, into rate_distortion.png and the report."""
    from aelab.experiments.experiment import frontier

    try:
        sizes = [int(v) for v in code_sizes.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--code-sizes: got {code_sizes!r}; allowed: comma-separated numbers from "
                          f"{','.join(map(str, FRONTIER_CODE_SIZES))}") from None
    experiment, overrides, options = _experiment(config, name, set_, given)
    opts = _options(options)
    _check_resume(resume, experiment.name, opts["runs_dir"])
    result = frontier(experiment, sizes, tutorial, overrides, log=_log, **opts)
    _print_result(result)
    if result.folder.rate_distortion.is_file():
        console.print(f"rate-distortion figure: {result.folder.rate_distortion}", highlight=False)


MODELS = _param("models", None, Optional[str], f"Comma-separated presets (default: {','.join(COMPARE_PRESETS)}).",
                "--models")
MODEL = _param("model", None, Optional[str], "Preset to train (see 'aelab models'; default: linear-3).", "--model")
FILE = P("experiment_file", P.KEYWORD_ONLY, default=typer.Argument(..., help="Experiment YAML file"),
         annotation=Path)

_FLAGS = run_flags() + option_flags()
app.command("compare")(_user_errors(command(_compare, [CONFIG, SETS, NAME, RESUME, MODELS], _FLAGS)))
app.command("train")(_user_errors(command(_train, [CONFIG, SETS, NAME, RESUME, MODEL], _FLAGS)))
app.command("run")(_user_errors(command(_run, [FILE, SETS], _FLAGS)))
NORMAL = _param("normal_class", "all", str, "Normal classes, each in turn: all, an index (3), a range (0..9) or a list "
                "(0,3,5).", "--normal-class", panel="Data")
ANOMALY_MODELS = _param("models", None, Optional[str], "Comma-separated presets (default: conv-64).", "--models")
app.command("anomaly")(_user_errors(command(_anomaly, [CONFIG, SETS, NAME, RESUME, ANOMALY_MODELS, NORMAL],
                                            [f for f in _FLAGS if f.key != "data.normal_classes"])))
CODE_SIZES = _param("code_sizes", ",".join(map(str, FRONTIER_CODE_SIZES)), str,
                    "Code sizes: aelab's res-<size> preset and PCA at each, and the tutorial presets of these sizes.",
                    "--code-sizes", panel="Models")
TUTORIAL = _param("tutorial", True, bool, "Also train the tutorial presets whose code has one of the sizes.",
                  "--tutorial/--no-tutorial", panel="Models")
app.command("frontier")(_user_errors(command(_frontier, [CONFIG, SETS, NAME, RESUME, CODE_SIZES, TUTORIAL], _FLAGS)))


def _kind(model) -> str:
    """What a model is, for 'aelab models': autoencoder, VAE (likelihood), conditional VAE, VQ-VAE (K, D, grid)."""
    from aelab.models.quantizer import VQAutoEncoder
    from aelab.models.variational import VariationalAutoEncoder

    if isinstance(model, VQAutoEncoder):
        d, h, w = model.code_shape
        return (f"VQ-VAE: K={model.quantizer.size}, D={d}, {h}x{w} grid = {model.bits_per_image:g} bits "
                f"({model.bits_per_image / 8:g} bytes)")
    if isinstance(model, VariationalAutoEncoder):
        v = model.variational
        return f"{'conditional ' if v.conditional else ''}VAE ({v.likelihood}, beta {v.beta:g})"
    return "autoencoder"


@app.command("models")
@_user_errors
def list_models() -> None:
    """List the presets: parameters, input shape, code shape, compression ratio and source."""
    from aelab.models import PRESETS, build_model

    table = Table(title="aelab presets")
    for col in ("preset", "kind", "parameters", "input", "code", "compression", "recipe", "source"):
        table.add_column(col, justify="right" if col in ("parameters", "compression") else "left")
    for name, preset in PRESETS.items():
        m = build_model(name)
        table.add_row(name, _kind(m), f"{m.num_parameters():,}", "x".join(map(str, m.input_shape)),
                      "x".join(map(str, m.code_shape)), f"{m.compression_ratio:.1f}x", preset.recipe, preset.source)
    console.print(table)


# ------------------------------------------------------------------------------------------- analyses
TARGET = P("path", P.KEYWORD_ONLY, annotation=Path,
           default=typer.Argument(..., help="A run folder, or an experiment folder (then --model picks the run)"))
WHICH = _param("model", None, Optional[str], "Which run of an experiment folder, by its label (default: the first).",
               "--model", panel="Target")


def _analysis_command(entry):
    from aelab.config import parse_config

    def run_one(path, model, given):
        from aelab.experiments.analyses import analyse_run, open_runs

        parse_config(entry.params, given, source=entry.name)  # bad parameters before loading anything
        run = open_runs(path, model)[0]
        outcome = analyse_run(run, entry.name, given)
        if outcome.summary:
            console.print(outcome.summary, highlight=False)
        if outcome.rows and entry.columns:
            from aelab.figures.report import format_row

            cols = [c for c in entry.columns if any(c[0] in r for r in outcome.rows)]
            table = Table(title=f"{run.label}: {entry.title}")
            for _, label, _ in cols:
                table.add_column(label, justify="right")
            for row in outcome.rows:
                table.add_row(*format_row(row, cols))
            console.print(table)
        written = [p for p in (run.folder.analysis(entry.name), run.folder.analysis(entry.name, ".json"))
                   if p.is_file()]
        console.print("wrote " + ", ".join(map(str, written)), highlight=False)

    run_one.__doc__ = entry.text
    flags = [field_flag(field.alias or name, name, field, "Analysis") for name, field in entry.params.model_fields.items()]
    return command(run_one, [TARGET, WHICH], flags)


def _register_analyses() -> None:
    from aelab.figures.analyses import ANALYSES

    for entry in ANALYSES:
        app.command(entry.name, help=entry.text)(_user_errors(_analysis_command(entry)))


_register_analyses()


@app.command()
@_user_errors
def report(path: Path = typer.Argument(..., help="An experiment folder (or a run folder: its experiment's)"),
           analyses: bool = O(True, "--analyses/--no-analyses", help="(Re)run every run's analyses first")) -> None:
    """Write the experiment's self-contained HTML report again (images embedded), re-running the analyses."""
    from aelab.experiments.analyses import open_runs, run_analyses
    from aelab.experiments.experiment import run_experiment
    from aelab.experiments.folders import ExperimentFolder, RunFolder

    folder = ExperimentFolder(path.parent) if RunFolder(path).config.is_file() else ExperimentFolder(path)
    if not folder.config.is_file():
        raise AelabError(f"{str(path)!r} is not an aelab experiment or run folder (no experiment.yaml)")
    if analyses:
        for run in open_runs(folder.path):
            run_analyses(run, log=_log)
    result = run_experiment(folder.config, runs_dir=folder.path.parent, analyses=False, log=lambda m: None)
    console.print(f"wrote {result.folder.report}", highlight=False)


# ------------------------------------------------------------------------------------- applying a model
RUN_ARG = typer.Argument(..., help="A run folder, or an experiment folder (then --model picks the run)")
WHICH_OPT = O(None, "--model", help="Which run of an experiment folder, by its label (default: the first).")
IMAGES_ARG = typer.Argument(..., help="Image files (PNG/JPEG), folders of them, or split:train|val|test of the "
                                      "run's dataset")


def _one_run(path: Path, model: Optional[str]):
    from aelab.experiments.analyses import open_runs

    return open_runs(path, model, with_data=False)[0]


def _check_new_output(path: Path, what: str) -> None:
    if path.exists() and not path.is_dir():
        raise AelabError(f"{what} {str(path)!r} exists and is not a folder")


@app.command("export")
@_user_errors
def export_cmd(path: Path = RUN_ARG, model: Optional[str] = WHICH_OPT,
               fmt: str = O("safetensors", "--format", help="safetensors (the model folder: config.json + "
                            "model.safetensors) or onnx (also encoder.onnx and decoder.onnx, checked with "
                            "onnxruntime; needs pip install 'aelab[onnx]')"),
               out: Optional[Path] = O(None, "-o", "--out", help="Output folder (default: <run>/export)"),
               images: int = O(64, "--check-images", min=1, help="Test images the ONNX check runs on")) -> None:
    """Export a trained model: config.json + model.safetensors (loads with aelab.load) and, with --format onnx,
    encoder.onnx and decoder.onnx with a dynamic batch axis, compared with PyTorch by onnxruntime."""
    from aelab.apply.export import ONNX_TOLERANCE, export_model
    from aelab.errors import DataError

    run = _one_run(path, model)
    target = out or run.folder.path / "export"
    _check_new_output(target, "--out")
    check, where = None, "random images"
    if fmt == "onnx":
        try:
            check, where = run.data().test.floats()[:images], f"{min(images, len(run.data().test))} test images"
        except DataError:
            pass  # the run's data is not on this machine: random images still check the graph
    result = export_model(run.model, target, fmt, check)
    for f in result.files:
        console.print(f"wrote {f} ({f.stat().st_size:,} bytes)", highlight=False)
    if result.max_abs_diff:
        worst = max(result.max_abs_diff.values())
        console.print(f"onnxruntime vs PyTorch on {where}: largest absolute difference encoder "
                      f"{result.max_abs_diff['encoder']:.2e}, decoder {result.max_abs_diff['decoder']:.2e} "
                      f"({'within' if worst <= ONNX_TOLERANCE else 'OVER'} {ONNX_TOLERANCE:g})", highlight=False)


@app.command("encode")
@_user_errors
def encode_cmd(path: Path = RUN_ARG, images: list[str] = IMAGES_ARG, model: Optional[str] = WHICH_OPT,
               out: Path = O(..., "-o", "--out", help="Code file to write (.npz)"),
               bits: int = O(8, "--bits", help="Bits per code value: 8 or 16 (quantized per unit) or 32 (float32)"),
               resize: bool = O(False, "--resize", help="Convert and resize images of another shape to the model's"),
               limit: Optional[int] = O(None, "--limit", min=1, help="Encode only the first N images")) -> None:
    """Encode images into a code file (codes quantized per unit, scales stored beside them); prints bytes per
    image, the ratio to the raw images and the PSNR of the round trip."""
    from aelab.apply.codes import encode_images, round_trip_quality, save_codes
    from aelab.data.files import read_images

    if out.suffix != ".npz":
        raise ConfigError(f"-o: got {str(out)!r}; a code file ends in .npz")
    run = _one_run(path, model)
    named = read_images(images, run.model.input_shape, resize, run.data, limit, run.model.standardization)
    codes = encode_images(run.model, named.images, named.names, bits)
    save_codes(codes, out)
    raw = named.images[0].numel() * named.images.element_size()
    quality = round_trip_quality(run.model, named.images, codes)
    what = "rows" if run.model.vectors else "images"
    console.print(f"encoded {len(named.names):,} {what} with {run.label} into {out} ({out.stat().st_size:,} bytes): "
                  f"{codes.bytes_per_image:g} bytes per {what[:-1]} at {bits} bits (+{2 * 4 * run.model.code_size:,} "
                  f"bytes of scales per file) vs {raw:,} raw: {raw / codes.bytes_per_image:.1f}x; round trip: "
                  f"{quality}", highlight=False)


@app.command("decode")
@_user_errors
def decode_cmd(path: Path = RUN_ARG, codes_file: Path = typer.Argument(..., help="Code file from 'aelab encode'"),
               model: Optional[str] = WHICH_OPT,
               out: Path = O(..., "-o", "--out", help="Folder for the decoded PNGs")) -> None:
    """Decode a code file back into PNG images, or for vector data decoded.npy of raw (de-standardized) rows
    (checks that the run's model made the codes)."""
    from aelab.apply.codes import decode_codes, load_codes, write_pngs

    codes = load_codes(codes_file)
    _check_new_output(out, "-o")
    run = _one_run(path, model)
    decoded = decode_codes(run.model, codes)  # refuses codes of another model
    if run.model.vectors:
        from aelab.apply.codes import write_rows

        console.print(f"wrote {len(decoded):,} rows to {write_rows(decoded, run.model, out)}", highlight=False)
        return
    written = write_pngs(decoded, codes.names, out)
    console.print(f"wrote {len(written):,} images to {out}", highlight=False)


@app.command("score")
@_user_errors
def score_cmd(path: Path = RUN_ARG, images: list[str] = IMAGES_ARG, model: Optional[str] = WHICH_OPT,
              out: Path = O(..., "-o", "--out", help="CSV file to write"),
              percentile: float = O(99.0, "--threshold-percentile",
                                    help="Flag images above this percentile (0..100) of the validation split's scores"),
              score: str = O("mse", "--score", help="Score the flag uses: mse, or ssim (1 - SSIM; adds a column)"),
              resize: bool = O(False, "--resize", help="Convert and resize images of another shape to the model's"),
              limit: Optional[int] = O(None, "--limit", min=1, help="Score only the first N images")) -> None:
    """Anomaly scores: per-image reconstruction error, a threshold from the run's validation split, and a flag
    per image, written as CSV."""
    from aelab.apply.scores import score_images, write_scores
    from aelab.data.files import read_images

    run = _one_run(path, model)
    named = read_images(images, run.model.input_shape, resize, run.data, limit, run.model.standardization)
    table = score_images(run.model, named.images, named.names, run.data().val.images, percentile, score, named.labels)
    write_scores(table, out)
    n = int(table.flagged.sum())
    console.print(f"threshold {table.threshold:.6g} ({score}, {percentile:g}th percentile of {len(run.data().val):,} "
                  f"validation images); flagged {n:,} of {len(table.names):,} images ({n / len(table.names):.1%}); "
                  f"wrote {out}", highlight=False)


# ----------------------------------------------------------------------------------------------- runs
def _runs_table(records: list[dict], title: str) -> None:
    table = Table(title=title)
    for col in ("id", "experiment", "name", "status", "test MSE", "PSNR (dB)", "seconds", "attempts", "error"):
        table.add_column(col, justify="right" if col in ("test MSE", "PSNR (dB)", "seconds", "attempts") else "left")
    for r in records:
        m = r["metrics"] or {}
        table.add_row(r["id"], ", ".join(r["experiments"]), r["name"], r["status"],
                      f"{m['test_mse']:.5f}" if m else "-", f"{m['test_psnr']:.2f}" if m else "-",
                      f"{r['seconds']:.1f}" if r["seconds"] else "-", str(r["attempts"]), (r["error"] or "")[:80])
    console.print(table)


@app.command("runs")
@_user_errors
def runs_cmd(args: Optional[list[str]] = typer.Argument(None, help="[EXPERIMENT] to list, or: show RUN_ID"),
             runs_dir: Path = O(Path("runs"), "--runs-dir", help="Runs folder")) -> None:
    """List every run in the runs folder (of one experiment), or 'show RUN_ID' for one run's config, metrics
    and files."""
    import yaml

    from aelab.experiments.folders import store_path
    from aelab.experiments.store import RunStore

    args = args or []
    if not store_path(runs_dir).is_file():
        raise AelabError(f"no runs under {str(runs_dir)!r} (no {store_path(runs_dir).name}); train something with "
                         "'aelab compare', 'train' or 'run'")
    with RunStore(store_path(runs_dir)) as store:
        if args and args[0] == "show":
            if len(args) != 2:
                raise ConfigError("usage: aelab runs show RUN_ID")
            rec = store.get(args[1])
            if rec is None:
                raise AelabError(f"no run with id {args[1]!r} under {str(runs_dir)!r}")
            console.print(f"[bold]{rec['id']}[/] {rec['name']} ({', '.join(rec['experiments'])}): {rec['status']}"
                          f"{' - ' + rec['error'] if rec['error'] else ''}")
            console.print(f"folder: {runs_dir / rec['folder']}", highlight=False)
            console.print(yaml.safe_dump(rec["config"], sort_keys=False), highlight=False)
            if rec["metrics"]:
                console.print_json(json.dumps(rec["metrics"]))
            return
        if len(args) > 1:
            raise ConfigError("usage: aelab runs [EXPERIMENT] | aelab runs show RUN_ID")
        if args and args[0] not in store.experiments():
            raise AelabError(f"no experiment {args[0]!r} under {str(runs_dir)!r}; there: "
                             f"{', '.join(store.experiments()) or 'none'}")
        records = store.records(args[0] if args else None)
    _runs_table(records, f"{len(records)} runs" + (f" of {args[0]}" if args else f" under {runs_dir}"))


def main() -> None:
    """Console-script entry point."""
    app(prog_name="aelab")
