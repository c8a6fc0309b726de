"""Command line: a thin typer layer over the Python API.

Every command builds the same pydantic config the API takes (YAML file via --config, flags on top), so
a bad value gives the same one-line error everywhere, and exit code 2.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
import yaml
from rich.console import Console
from rich.table import Table

from aelab.config import CompareConfig, parse_config, read_yaml_mapping
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
            err_console.print("interrupted: every finished epoch is checkpointed in the run folder; continue with "
                              "the same command plus --name RUN_FOLDER --resume", highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None

    return wrapper


def _set(data: dict, dotted: str, value: Any) -> None:
    if value is None:
        return
    *parents, key = dotted.split(".")
    for p in parents:
        data = data.setdefault(p, {})
    data[key] = value


def _build_config(config_file, models, dataset, data_dir, train_limit, test_limit, val_fraction, resize, grayscale,
                  epochs, batch_size, optimizer, lr, weight_decay, loss, device, precision, compile_, log_interval,
                  seed, name, sparsity=None, tied=False, layerwise=None, denoise=None, code_activation=None,
                  default_models: str | None = None) -> CompareConfig:
    data = read_yaml_mapping(config_file) if config_file is not None else {}
    if models is None and "models" not in data and "model" not in data:
        models = default_models
    if models is not None:
        names = [m.strip() for m in models.split(",") if m.strip()]
        if not names:
            raise ConfigError("--models: give at least one preset name, e.g. linear-3,conv-64")
        data["models"] = [{"preset": n} for n in names]
    for key, value in [("data.name", dataset), ("data.data_dir", str(data_dir) if data_dir else None),
                       ("data.train_limit", train_limit), ("data.test_limit", test_limit),
                       ("data.val_fraction", val_fraction), ("data.resize", list(resize) if resize else None),
                       ("data.grayscale", grayscale or None),
                       ("training.epochs", epochs), ("training.batch_size", batch_size),
                       ("training.optimizer", optimizer), ("training.lr", lr),
                       ("training.weight_decay", weight_decay), ("training.loss", loss), ("training.device", device),
                       ("training.precision", precision), ("training.compile", compile_ or None),
                       ("training.log_interval", log_interval), ("training.layerwise_epochs", layerwise),
                       ("training.corruption", denoise), ("seed", seed), ("name", name)]:
        _set(data, key, value)
    if "model" in data and "models" not in data:  # a one-model (train) config file
        data["models"] = [data.pop("model")]
    if (sparsity or tied or code_activation) and "models" not in data:
        data["models"] = [{"preset": "linear-3"}, {"preset": "conv-64"}]
    for model in data.get("models", []) if isinstance(data.get("models"), list) else []:
        if isinstance(model, dict):
            _set(model, "sparsity", sparsity)
            _set(model, "tied", tied or None)
            _set(model, "code_activation", code_activation)
    return parse_config(CompareConfig, data, source=str(config_file) if config_file else "options")


def _print_table(result) -> None:
    from aelab.figures.report import columns, format_row

    cols = columns(result.rows)
    table = Table(title=f"{result.dataset.name}: test set ({len(result.dataset.test)} images)")
    for _, label, _ in cols:
        table.add_column(label, justify="left" if label == "model" else "right")
    for row in result.rows:
        table.add_row(*format_row(row, cols))
    for row in result.pca_rows:
        table.add_row(*format_row(row, cols), style="cyan")
    table.add_row("mean image (baseline)", "-", "-", "-", f"{result.baseline_mse:.5f}", *["-"] * (len(cols) - 5),
                  style="dim")
    console.print(table)
    console.print(f"wrote {result.run_dir}/ : metrics.json, loss_curves.png, reconstructions_epoch_*.png, "
                  "analysis/, report.html", highlight=False)


# Options shared by compare and train.
O = typer.Option
DatasetOpt = O(None, "--dataset", help="fashion-mnist (default), mnist, cifar10, digits, folder")
DataDirOpt = O(None, "--data-dir", help="Folder with the dataset files (or your images for 'folder')")
TrainLimitOpt = O(None, "--train-limit", help="Use only the first N training images")
TestLimitOpt = O(None, "--test-limit", help="Use only the first N test images")
ValOpt = O(None, "--val-fraction", help="Share of training images held out for validation (default 0.05)")
ResizeOpt = O(None, "--resize", help="HEIGHT WIDTH for folder images")
GrayOpt = O(False, "--grayscale", help="Convert folder images to one channel")
EpochsOpt = O(None, "--epochs", help="Epochs (default 50)")
BatchOpt = O(None, "--batch-size", help="Batch size (default 64)")
OptimOpt = O(None, "--optimizer", help="adam (default) or sgd (Nesterov momentum)")
LrOpt = O(None, "--lr", help="Learning rate (default 1e-3)")
WdOpt = O(None, "--weight-decay", help="Weight decay (default 0)")
LossOpt = O(None, "--loss", help="mse (per pixel, default), mse_sum (per image), bce")
DeviceOpt = O(None, "--device", help="auto (default), cpu, cuda")
PrecOpt = O(None, "--precision", help="fp32 (default) or bf16 (CUDA autocast)")
CompileOpt = O(False, "--compile", help="torch.compile the model (GPU)")
LogOpt = O(None, "--log-interval", help="Snapshot reconstructions every N epochs (default 10)")
SeedOpt = O(None, "--seed", help="Seed for splits, init and batch order (default 0)")
NameOpt = O(None, "--name", help="Run folder name (default compare-DATE-TIME)")
RunsOpt = O(Path("runs"), "--runs-dir", help="Parent folder of run folders")
ResumeOpt = O(False, "--resume", help="Continue the run --name from its last checkpoints")
ConfigOpt = O(None, "--config", help="YAML config file; options given here override it")
QuietOpt = O(False, "--no-progress", help="No progress bars")
NoAnalysisOpt = O(False, "--no-analysis", help="Skip the analyses (interpolation, latent map, probes...) in the report")
SparsityOpt = O(None, "--sparsity", help="Code sparsity: topk:K, lifetime:K or lifetime:FRACTION, l1:WEIGHT, "
                "kl:RHO:WEIGHT")
TiedOpt = O(False, "--tied", help="Tie decoder weights to the encoder's (symmetric fully-connected models)")
LayerwiseOpt = O(None, "--layerwise", help="Greedy layer-wise pretraining: N epochs per stage, then --epochs of "
                 "fine-tuning")
CodeActOpt = O(None, "--code-activation", help="Override the models' code activation, e.g. sigmoid (for kl)")
DenoiseOpt = O(None, "--denoise", help="Denoising: gaussian:STD, masking:FRACTION or salt_pepper:FRACTION")


@app.command()
@_user_errors
def compare(
    models: Optional[str] = O(None, "--models", help="Comma-separated presets (default linear-3,conv-64)"),
    dataset: Optional[str] = DatasetOpt, data_dir: Optional[Path] = DataDirOpt,
    train_limit: Optional[int] = TrainLimitOpt, test_limit: Optional[int] = TestLimitOpt,
    val_fraction: Optional[float] = ValOpt, resize: Optional[tuple[int, int]] = ResizeOpt, grayscale: bool = GrayOpt,
    epochs: Optional[int] = EpochsOpt, batch_size: Optional[int] = BatchOpt, optimizer: Optional[str] = OptimOpt,
    lr: Optional[float] = LrOpt, weight_decay: Optional[float] = WdOpt, loss: Optional[str] = LossOpt,
    device: Optional[str] = DeviceOpt, precision: Optional[str] = PrecOpt, compile_: bool = CompileOpt,
    log_interval: Optional[int] = LogOpt, seed: Optional[int] = SeedOpt, name: Optional[str] = NameOpt,
    runs_dir: Path = RunsOpt, resume: bool = ResumeOpt, config: Optional[Path] = ConfigOpt,
    no_progress: bool = QuietOpt, no_analysis: bool = NoAnalysisOpt, sparsity: Optional[str] = SparsityOpt, tied: bool = TiedOpt,
    layerwise: Optional[int] = LayerwiseOpt, denoise: Optional[str] = DenoiseOpt,
    code_activation: Optional[str] = CodeActOpt,
) -> None:
    """Train several autoencoders on the same data and compare them on the test set (default: the
    tutorial's linear-3 vs conv-64 on Fashion-MNIST, 50 epochs, batch 64, Adam 1e-3, MSE)."""
    from aelab.experiments import compare as run_compare

    cfg = _build_config(config, models, dataset, data_dir, train_limit, test_limit, val_fraction, resize, grayscale,
                        epochs, batch_size, optimizer, lr, weight_decay, loss, device, precision, compile_,
                        log_interval, seed, name, sparsity, tied, layerwise, denoise,
                        code_activation)
    result = run_compare(cfg, runs_root=runs_dir, resume=resume, progress=not no_progress,
                         log=lambda m: console.print(m, highlight=False), analyses=not no_analysis)
    _print_table(result)


@app.command()
@_user_errors
def train(
    model: Optional[str] = O(None, "--model", help="Preset to train (default linear-3); see 'aelab models'"),
    dataset: Optional[str] = DatasetOpt, data_dir: Optional[Path] = DataDirOpt,
    train_limit: Optional[int] = TrainLimitOpt, test_limit: Optional[int] = TestLimitOpt,
    val_fraction: Optional[float] = ValOpt, resize: Optional[tuple[int, int]] = ResizeOpt, grayscale: bool = GrayOpt,
    epochs: Optional[int] = EpochsOpt, batch_size: Optional[int] = BatchOpt, optimizer: Optional[str] = OptimOpt,
    lr: Optional[float] = LrOpt, weight_decay: Optional[float] = WdOpt, loss: Optional[str] = LossOpt,
    device: Optional[str] = DeviceOpt, precision: Optional[str] = PrecOpt, compile_: bool = CompileOpt,
    log_interval: Optional[int] = LogOpt, seed: Optional[int] = SeedOpt, name: Optional[str] = NameOpt,
    runs_dir: Path = RunsOpt, resume: bool = ResumeOpt, config: Optional[Path] = ConfigOpt,
    no_progress: bool = QuietOpt, no_analysis: bool = NoAnalysisOpt, sparsity: Optional[str] = SparsityOpt, tied: bool = TiedOpt,
    layerwise: Optional[int] = LayerwiseOpt, denoise: Optional[str] = DenoiseOpt,
    code_activation: Optional[str] = CodeActOpt,
) -> None:
    """Train one autoencoder and evaluate it (the same run folder as compare, with one model)."""
    from aelab.experiments import compare as run_compare

    cfg = _build_config(config, model, dataset, data_dir, train_limit, test_limit, val_fraction, resize, grayscale,
                        epochs, batch_size, optimizer, lr, weight_decay, loss, device, precision, compile_,
                        log_interval, seed, name, sparsity, tied, layerwise, denoise,
                        code_activation, default_models="linear-3")
    if len(cfg.models) != 1:
        raise ConfigError(f"train takes one model, got {len(cfg.models)}; use 'aelab compare' for several")
    result = run_compare(cfg, runs_root=runs_dir, resume=resume, progress=not no_progress,
                         log=lambda m: console.print(m, highlight=False), analyses=not no_analysis)
    _print_table(result)


@app.command("models")
@_user_errors
def list_models() -> None:
    """List the presets: parameters, input shape, code shape, compression ratio and source."""
    from aelab.models import PRESETS, build_model

    table = Table(title="aelab presets")
    for col in ("preset", "parameters", "input", "code", "compression", "source"):
        table.add_column(col, justify="right" if col in ("parameters", "compression") else "left")
    for name, preset in PRESETS.items():
        m = build_model(name)
        table.add_row(name, f"{m.num_parameters():,}", "x".join(map(str, m.input_shape)),
                      "x".join(map(str, m.code_shape)), f"{m.compression_ratio:.1f}x", preset.source)
    console.print(table)


# ------------------------------------------------------------------------------------------- analyses
RunDirArg = typer.Argument(..., help="A run folder written by 'aelab compare' or 'aelab train'")
ModelSel = O(None, "--model", help="Which model of the run (default: the first)")


def _open(run_dir: Path):
    from aelab.experiments.inspect import open_run

    return open_run(run_dir)


def _done(path: Path) -> None:
    console.print(f"wrote {path}", highlight=False)


@app.command()
@_user_errors
def interpolate(run_dir: Path = RunDirArg, model: Optional[str] = ModelSel,
                from_: Optional[str] = O(None, "--from", help="Class (index or name) of the first image"),
                to: Optional[str] = O(None, "--to", help="Class (index or name) of the second image"),
                index_from: Optional[int] = O(None, "--index-from", help="Test-image index of the first image"),
                index_to: Optional[int] = O(None, "--index-to", help="Test-image index of the second image"),
                steps: int = O(10, "--steps"), seed: int = O(0, "--seed")) -> None:
    """Interpolate between two test images in data space and in latent space."""
    from aelab.experiments.inspect import run_interpolation

    _, path = run_interpolation(_open(run_dir), model, from_, to, index_from, index_to, steps, seed)
    _done(path)


@app.command("latent-map")
@_user_errors
def latent_map(run_dir: Path = RunDirArg, model: Optional[str] = ModelSel,
               method: str = O("auto", "--method", help="auto (the code if 2-D, else PCA), pca, tsne"),
               n: int = O(5000, "--n", help="Test images to map"), seed: int = O(0, "--seed")) -> None:
    """2-D map of the test codes coloured by class."""
    from aelab.experiments.inspect import run_latent_map

    _done(run_latent_map(_open(run_dir), model, method, n, seed)[1])


@app.command()
@_user_errors
def heatmap(run_dir: Path = RunDirArg, model: Optional[str] = ModelSel, n: int = O(512, "--n")) -> None:
    """Codes of a batch of test images as an image, with unit activity and dead units."""
    from aelab.experiments.inspect import run_code_heatmap

    h, path = run_code_heatmap(_open(run_dir), model, n)
    console.print(f"{int(h.dead.sum())} of {h.codes.shape[1]} code units are dead on these {len(h.codes)} images")
    _done(path)


@app.command()
@_user_errors
def dictionary(run_dir: Path = RunDirArg, model: Optional[str] = ModelSel,
               amplitude: float = O(1.0, "--amplitude", help="Value of the one-hot code")) -> None:
    """What each code unit decodes to (the decoder's feature dictionary)."""
    from aelab.experiments.inspect import run_feature_dictionary

    _done(run_feature_dictionary(_open(run_dir), model, amplitude)[1])


@app.command()
@_user_errors
def failures(run_dir: Path = RunDirArg, model: Optional[str] = ModelSel,
             k: int = O(8, "--k", help="Worst images to show")) -> None:
    """Per-class test MSE and the worst-reconstructed test images."""
    from aelab.experiments.inspect import run_failures

    f, path = run_failures(_open(run_dir), model, k)
    table = Table(title="test MSE per class")
    table.add_column("class")
    table.add_column("images", justify="right")
    table.add_column("MSE", justify="right")
    for name, count, mse in f.per_class:
        table.add_row(name, str(count), f"{mse:.5f}")
    console.print(table)
    _done(path)


@app.command()
@_user_errors
def compression(run_dir: Path = RunDirArg, model: Optional[str] = ModelSel) -> None:
    """Code bytes (float32, float16, 8-bit) vs raw image bytes, and PSNR at each."""
    from aelab.experiments.inspect import run_compression

    rows, path = run_compression(_open(run_dir), model)
    table = Table(title="compression")
    for col in ("code stored as", "bytes per code", "raw image bytes", "ratio", "PSNR (dB)"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["storage"], str(r["code_bytes"]), str(r["image_bytes"]), f"{r['compression_ratio']:.1f}x",
                      f"{r['psnr']:.2f}")
    console.print(table)
    _done(path)


@app.command()
@_user_errors
def pca(run_dir: Path = RunDirArg) -> None:
    """PCA baseline at each model's code size, beside the autoencoders."""
    from aelab.experiments.inspect import run_pca

    run = _open(run_dir)
    rows = run_pca(run)
    metrics = json.loads((run.run_dir / "metrics.json").read_text())["models"]
    table = Table(title="test set: autoencoders and PCA at the same code size")
    for col in ("model", "code size", "test MSE", "PSNR (dB)"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in metrics + rows:
        table.add_row(r["model"], str(r["code_size"]), f"{r['test_mse']:.5f}", f"{r['test_psnr']:.2f}")
    console.print(table)


def _labels_list(text: str) -> list:
    out = []
    for part in text.split(","):
        part = part.strip()
        if part == "all":
            out.append(None)
        elif part.isdigit() and int(part) > 0:
            out.append(int(part))
        else:
            raise ConfigError(f"--labels: got {part!r}; allowed: positive integers or 'all', e.g. 10,100,all")
    return out


@app.command()
@_user_errors
def probe(run_dir: Path = RunDirArg, model: Optional[str] = ModelSel,
          labels: str = O("10,100,all", "--labels", help="Labelled images per class, e.g. 10,100,all"),
          seed: int = O(0, "--seed")) -> None:
    """Frozen-encoder linear probe and kNN vs an MLP and a CNN trained from scratch, with few labels."""
    from aelab.experiments.inspect import run_probes

    ns = _labels_list(labels)
    rows, path = run_probes(_open(run_dir), model, ns, seed)
    table = Table(title="test accuracy with few labels")
    for col in ("labels/class", "linear probe", "kNN", "MLP (scratch)", "CNN (scratch)", "codes help?"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r["labels_per_class"]), f"{r['logistic']:.3f}", f"{r['knn']:.3f}", f"{r['mlp']:.3f}",
                      "-" if r["cnn"] is None else f"{r['cnn']:.3f}", "yes" if r["helps"] else "no")
    console.print(table)
    console.print(f"parameters: MLP {rows[0]['mlp_parameters']:,}, CNN "
                  f"{rows[0]['cnn_parameters'] or 0:,}", highlight=False)
    _done(path)


@app.command()
@_user_errors
def report(run_dir: Path = typer.Argument(..., help="A run folder, or a folder of run folders"),
           analyses: bool = O(True, "--analyses/--no-analyses", help="(Re)run every analysis first")) -> None:
    """Write one self-contained HTML report (images embedded) for a run folder or a folder of runs."""
    from aelab.experiments.inspect import open_run, run_all
    from aelab.figures.report import write_report

    runs = [run_dir] if (run_dir / "config.yaml").is_file() else sorted(
        p for p in run_dir.glob("*") if (p / "config.yaml").is_file())
    if not runs:
        raise AelabError(f"{str(run_dir)!r} holds no aelab run folder (no config.yaml in it or its sub-folders)")
    for path in runs:
        if analyses:
            run_all(open_run(path), log=lambda m: console.print(m, highlight=False))
        _done(write_report(path))


# ---------------------------------------------------------------------------------------- experiments
@app.command("run")
@_user_errors
def run_cmd(experiment: Path = typer.Argument(..., help="Experiment YAML file"),
            executor: str = O("local", "--executor", help="local (processes on this machine) or ray"),
            workers: Optional[int] = O(None, "--workers", help="Runs in parallel (default: one per core)"),
            address: Optional[str] = O(None, "--address", help="Ray cluster address (default: a local Ray)"),
            retry_failed: bool = O(False, "--retry-failed", help="Run failed runs again"),
            tensorboard: bool = O(False, "--tensorboard", help="Write TensorBoard logs into each run folder"),
            runs_dir: Path = RunsOpt) -> None:
    """Run an experiment file: every run not done yet, in parallel; finished runs are skipped."""
    from aelab.experiments.runner import run_experiment

    if workers is not None and workers < 1:
        raise ConfigError(f"--workers: got {workers}; allowed: 1 or more")
    records = run_experiment(experiment, runs_dir, executor, workers, address, retry_failed, tensorboard,
                             log=lambda m: console.print(m, highlight=False))
    _runs_table(records)


def _runs_table(records: list[dict]) -> None:
    table = Table(title=f"{len(records)} runs")
    for col in ("id", "experiment", "name", "status", "test MSE", "PSNR (dB)", "seconds", "attempts", "error"):
        table.add_column(col, justify="right" if col in ("test MSE", "PSNR (dB)", "seconds", "attempts") else "left")
    for r in records:
        m = r["metrics"] or {}
        table.add_row(r["id"], r["experiment"], r["name"], r["status"],
                      f"{m['test_mse']:.5f}" if m else "-", f"{m['test_psnr']:.2f}" if m else "-",
                      f"{r['seconds']:.1f}" if r["seconds"] else "-", str(r["attempts"]), (r["error"] or "")[:80])
    console.print(table)


@app.command("runs")
@_user_errors
def runs_cmd(args: Optional[list[str]] = typer.Argument(None, help="[EXPERIMENT] to list, or: show RUN_ID"),
             runs_dir: Path = RunsOpt) -> None:
    """List the runs of all experiments (or of one), or 'show RUN_ID' for one run's config, metrics and files."""
    from aelab.experiments.runner import STORE_NAME
    from aelab.experiments.store import RunStore

    args = args or []
    stores = sorted(runs_dir.glob(f"*/{STORE_NAME}"))
    if args and args[0] == "show":
        if len(args) != 2:
            raise ConfigError("usage: aelab runs show RUN_ID")
        for path in stores:
            store = RunStore(path)
            rec = store.get(args[1])
            store.close()
            if rec is not None:
                console.print(f"[bold]{rec['id']}[/] {rec['name']} ({rec['experiment']}): {rec['status']}"
                              f"{' - ' + rec['error'] if rec['error'] else ''}")
                console.print(yaml.safe_dump(rec["config"], sort_keys=False), highlight=False)
                if rec["metrics"]:
                    console.print_json(json.dumps(rec["metrics"]))
                folder = path.parent / rec["id"]
                if folder.is_dir():
                    console.print("files: " + ", ".join(sorted(str(p.relative_to(folder))
                                                               for p in folder.rglob("*") if p.is_file())),
                                  highlight=False)
                return
        raise AelabError(f"no run with id {args[1]!r} under {str(runs_dir)!r}")
    if len(args) > 1:
        raise ConfigError("usage: aelab runs [EXPERIMENT] | aelab runs show RUN_ID")
    if args:
        stores = [p for p in stores if p.parent.name == args[0]]
        if not stores:
            raise AelabError(f"no experiment {args[0]!r} under {str(runs_dir)!r}")
    records = []
    for path in stores:
        store = RunStore(path)
        records += store.records()
        store.close()
    _runs_table(records)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="aelab")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
