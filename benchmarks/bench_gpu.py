"""The main job's models on one GPU, ready to run: images/s and seconds per epoch of aelab's trainer (the uint8
dataset resident on the GPU, bf16 autocast, channels-last, optionally torch.compile with max-autotune and CUDA
graphs) beside the tutorial's loop (torchvision + DataLoader) on the same GPU, and the projection of the main job's
50 + 50 epochs (linear-3 and conv-64). One run takes a few minutes (well under 8 with the defaults).

    python benchmarks/bench_gpu.py                       # linear-3, conv-64, res-64, vqvae-conv; 3 epochs each
    python benchmarks/bench_gpu.py --compile max-autotune --epochs 5
    python benchmarks/bench_gpu.py --dry-run             # on the CPU, tiny data: checks that the script runs

Seconds per epoch leave out the first epoch (warm-up: cuDNN autotuning, compilation); the projection multiplies
them by 50.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
TUTORIAL_MODELS = ("linear-3", "conv-64")


def aelab_epochs(name: str, epochs: int, device: str, compile_mode: str | None, limit: int | None) -> dict:
    """Train ``name`` with aelab for ``epochs`` epochs; its seconds per epoch and images/s after the first."""
    import torch

    from aelab.config import PRESETS, RECIPES, DataConfig, TrainingConfig
    from aelab.data import load_dataset
    from aelab.models import build_model
    from aelab.training import train

    ds = load_dataset(DataConfig(name="fashion-mnist", val_fraction=0.0, train_limit=limit, test_limit=limit))
    torch.manual_seed(0)
    model = build_model(name, ds.shape)
    recipe = RECIPES[PRESETS[name].recipe]
    cfg = TrainingConfig(
        epochs=epochs,
        batch_size=recipe.get("batch_size", 64),
        device=device,
        log_interval=10**6,
        precision="bf16" if device == "cuda" else "fp32",
        compile=compile_mode is not None,
        compile_mode=compile_mode,
    )
    seconds = train(model, ds, cfg, progress=False).history.epoch_seconds
    steady = seconds[1:] or seconds
    per_epoch = statistics.median(steady)
    return {
        "first": seconds[0],
        "per_epoch": per_epoch,
        "images_per_second": len(ds.train) / per_epoch,
        "batch": cfg.batch_size,
    }


def tutorial_epochs(name: str, epochs: int, device: str) -> dict:
    """The tutorial's loop on the same device (bench_trainer.py's), seconds per epoch."""
    from bench_trainer import tutorial_loop

    out = tutorial_loop(name, epochs, device)
    return {"per_epoch": out["seconds"] / epochs, "images_per_second": out["images"] / out["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--models", default="linear-3,conv-64,res-64,vqvae-conv")
    parser.add_argument(
        "--compile",
        default=None,
        choices=["default", "reduce-overhead", "max-autotune"],
        help="torch.compile mode of aelab's step (max-autotune: tuned kernels and CUDA graphs)",
    )
    parser.add_argument("--dry-run", action="store_true", help="CPU, 512 images, 2 epochs: check the script runs")
    args = parser.parse_args()
    import torch

    device = "cpu" if args.dry_run else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA GPU here: run with --dry-run to check the script on the CPU (GPU figures: not measured)")
    epochs, limit = (2, 512) if args.dry_run else (max(2, args.epochs), None)
    name = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or platform.machine()
    print(
        f"device {device} ({name}), torch {torch.__version__}, {epochs} epochs, compile {args.compile or 'off'}"
        f"{', dry run on 512 images' if args.dry_run else ''}"
    )
    print(f"{'model':<11} {'loop':<9} {'batch':>5} {'first epoch s':>14} {'s / epoch':>10} {'images/s':>10}")
    t0, per_epoch = time.perf_counter(), {}
    for model in args.models.split(","):
        a = aelab_epochs(model, epochs, device, args.compile, limit)
        per_epoch[("aelab", model)] = a["per_epoch"]
        print(
            f"{model:<11} {'aelab':<9} {a['batch']:>5} {a['first']:>14.2f} {a['per_epoch']:>10.3f} "
            f"{a['images_per_second']:>10,.0f}"
        )
        if model in TUTORIAL_MODELS and not args.dry_run:
            t = tutorial_epochs(model, epochs, device)
            per_epoch[("tutorial", model)] = t["per_epoch"]
            print(
                f"{model:<11} {'tutorial':<9} {64:>5} {'-':>14} {t['per_epoch']:>10.3f} {t['images_per_second']:>10,.0f}"
            )
    for loop in ("aelab", "tutorial"):
        if all((loop, m) in per_epoch for m in TUTORIAL_MODELS):
            total = 50 * sum(per_epoch[(loop, m)] for m in TUTORIAL_MODELS)
            print(
                f"projection of the main job (linear-3 + conv-64, 50 epochs each), {loop}: {total:,.0f} s of training"
            )
    print(f"whole benchmark: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
