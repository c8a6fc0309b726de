"""8 short runs one after another vs the local executor (and, on a GPU, 16 runs sharing the device), in one run.

Each run: the Full Code Guide's fc-64 autoencoder (or a variant from a small grid of code sizes and sparsity)
on 10,000 Fashion-MNIST images for 2 epochs. "sequential" is ``aelab run --workers 1`` (one process, all
cores for each run); "local" is ``aelab run --workers N`` (N processes, cores divided among them). Both start
from an empty runs folder, so both pay for their process starts.

    python benchmarks/bench_experiments.py                # CPU: 8 runs, workers 1 vs 2
    python benchmarks/bench_experiments.py --runs 16 --workers 8 --device cuda
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import yaml


def experiment(n_runs: int, device: str) -> dict:
    sizes = [16, 32, 64, 128]
    sparsity = [None, "topk:8", "lifetime:0.05", "l1:0.001"]
    grid = [(c, s) for s in sparsity for c in sizes][:n_runs]
    return {
        "name": "bench",
        "data": {"name": "fashion-mnist", "train_limit": 10000, "test_limit": 2000},
        "training": {"epochs": 2, "device": device},
        "runs": [
            {
                "model": {
                    "spec": {
                        "type": "mlp",
                        "hidden": [],
                        "code_size": c,
                        "activation": "leaky_relu",
                        "code_activation": "leaky_relu",
                    },
                    "sparsity": s,
                }
            }
            for c, s in grid
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    from aelab.experiments.jobs import run_experiment

    exp = experiment(args.runs, args.device)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, device {args.device}; {args.runs} runs")
    times = {}
    for label, executor, workers in (
        ("inline (this process)", "inline", None),
        (f"local executor ({args.workers} workers)", "local", args.workers),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "exp.yaml"
            path.write_text(yaml.safe_dump(exp))
            t0 = time.perf_counter()
            records = run_experiment(
                path,
                runs_dir=Path(tmp) / "runs",
                executor=executor,
                workers=workers,
                analyses=False,
                log=lambda m: None,
            ).records
            times[label] = time.perf_counter() - t0
            assert all(r["status"] == "done" for r in records), [r["error"] for r in records]
        print(f"{label:<28} {times[label]:7.1f} s  ({args.runs / times[label]:.2f} runs/s)")
    seq, par = times.values()
    print(f"speed-up of the local executor: {seq / par:.2f}x")


if __name__ == "__main__":
    main()
