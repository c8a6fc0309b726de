"""The test pass of a saved model in the two memory layouts, in one run: ``aelab.evaluation.evaluate`` (MSE,
PSNR, SSIM and code statistics of the 10,000 Fashion-MNIST test images) of models written by ``save`` and read
back by ``aelab.load``, with the weights and the batches laid out contiguously (what ``load`` and ``batches``
gave before) and in the model's fastest layout (``aelab.models.layers.memory_format_of``: channels-last for a
convolutional model), what they give now. The two take turns; the fastest of each is kept, and the values are
checked to agree.

    python benchmarks/bench_evaluation.py [--models conv-64,res-64,linear-3] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="conv-64,res-64,linear-3")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch

    from aelab.config import DataConfig
    from aelab.data import load_dataset
    from aelab.evaluation import batches as batches_module
    from aelab.evaluation import evaluate
    from aelab.models import build_model, load
    from aelab.models.layers import memory_format_of

    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
        f"{torch.get_num_threads()} torch threads; torch {torch.__version__}; python {sys.version.split()[0]}"
    )
    test = load_dataset(DataConfig(name="fashion-mnist")).test
    print(f"{'model':<10} {'contiguous':>12} {'channels-last':>14} {'speed-up':>9}  largest difference of a value")
    for name in args.models.split(","):
        torch.manual_seed(0)
        with tempfile.TemporaryDirectory() as tmp:
            build_model(name).save(tmp)
            model = load(tmp)

        layouts = {"contiguous": lambda m: torch.contiguous_format, "channels-last": memory_format_of}
        best = {k: float("inf") for k in layouts}
        values = {}
        for _ in range(args.repeats):
            for layout, fmt in layouts.items():
                batches_module.memory_format_of = fmt  # the layout of the evaluation's batches
                model.to(memory_format=fmt(model))
                t0 = time.perf_counter()
                values[layout] = evaluate(model, test)
                best[layout] = min(best[layout], time.perf_counter() - t0)
        batches_module.memory_format_of = memory_format_of
        diff = max(abs(values["contiguous"][k] - values["channels-last"][k]) for k in ("mse", "psnr", "ssim"))
        print(
            f"{name:<10} {best['contiguous']:>10.3f} s {best['channels-last']:>12.3f} s "
            f"{best['contiguous'] / best['channels-last']:>8.2f}x  {diff:.1e}"
        )


if __name__ == "__main__":
    main()
