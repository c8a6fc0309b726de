"""Training speed of aelab's res-* and generative presets beside the tutorial's conv-64, in one run: images/s of
``aelab.train`` (the in-memory trainer with its fast paths: channels-last, one parameter buffer, no per-step
host sync), each preset with its own recipe, on the Fashion-MNIST training images, and the time 50 epochs of
conv-64 (the frontier's budget) and the recipe's epochs of each preset would take at that speed.

    python benchmarks/bench_presets.py [--epochs 2] [--repeats 2] [--device auto] [--presets conv-64,vae-2,...]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--presets", default="", help="comma-separated presets (default: conv-64, res-*, generative)")
    args = parser.parse_args()

    import torch

    from aelab.config import FRONTIER_CODE_SIZES, RECIPES, DataConfig, TrainingConfig
    from aelab.data import load_dataset
    from aelab.models import PRESETS, build_model
    from aelab.training import train

    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
        f"{torch.get_num_threads()} torch threads; torch {torch.__version__}; python {sys.version.split()[0]}"
    )
    dataset = load_dataset(DataConfig(name="fashion-mnist"))
    names = (
        ["conv-64"] + [f"res-{d}" for d in FRONTIER_CODE_SIZES] + ["vae-2", "vae-conv-16", "cvae-conv-16", "vqvae-conv"]
    )
    if args.presets:
        names = ["conv-64"] + [n for n in args.presets.split(",") if n and n != "conv-64"]
    best: dict[str, float] = {}
    for _ in range(args.repeats):  # take turns, keep the fastest of each (a shared machine drifts)
        for name in names:
            recipe = {**RECIPES[PRESETS[name].recipe], "epochs": args.epochs, "device": args.device}
            torch.manual_seed(0)
            result = train(build_model(name), dataset, TrainingConfig(**recipe), progress=False)
            best[name] = max(best.get(name, 0.0), result.images_per_second)
    n = len(dataset.train)
    budget = 50 * n / best["conv-64"]
    print(f"{'preset':<12} {'params':>9} {'batch':>5} {'images/s':>9} {'epochs':>6} {'time for them':>13}")
    for name in names:
        recipe = {**TrainingConfig().model_dump(), **RECIPES[PRESETS[name].recipe]}
        seconds = recipe["epochs"] * n / best[name]
        print(
            f"{name:<12} {build_model(name).num_parameters():>9,} {recipe['batch_size']:>5} {best[name]:>9,.0f} "
            f"{recipe['epochs']:>6} {seconds:>11.0f} s ({seconds / budget:.2f}x conv-64's 50 epochs)"
        )


if __name__ == "__main__":
    main()
