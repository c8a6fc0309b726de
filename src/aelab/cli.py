"""Command line: a thin typer layer over the Python API.

Every command builds the same pydantic config the API takes (YAML file via --config, flags on top), so
a bad value gives the same one-line error everywhere, and exit code 2.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Optional

import typer
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
    table.add_row("mean image (baseline)", "-", "-", "-", f"{result.baseline_mse:.5f}", *["-"] * (len(cols) - 5),
                  style="dim")
    console.print(table)
    console.print(f"wrote {result.run_dir}/ : metrics.json, loss_curves.png, reconstructions_epoch_*.png, "
                  "report.html", highlight=False)


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
    no_progress: bool = QuietOpt, sparsity: Optional[str] = SparsityOpt, tied: bool = TiedOpt,
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
                         log=lambda m: console.print(m, highlight=False))
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
    no_progress: bool = QuietOpt, sparsity: Optional[str] = SparsityOpt, tied: bool = TiedOpt,
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
                         log=lambda m: console.print(m, highlight=False))
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


def main() -> None:
    """Console-script entry point."""
    app(prog_name="aelab")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
