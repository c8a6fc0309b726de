"""An image set larger than memory, measured in one run: peak resident memory and images/s of training on a
6.1 GB uint8 set (500,000 x 3 x 64 x 64, memory-mapped), beside the in-memory and the mapped path on a set
that fits (the first 100,000 of the same images). Each training is its own ``aelab train`` process, one epoch,
the same small MLP; peak RSS is the process's ``ru_maxrss``.

    python benchmarks/bench_bigdata.py [--images 500000] [--fits 100000] [--workdir /tmp/aelab-bigdata]
    python benchmarks/bench_bigdata.py --decode 20000   # instead: a folder of PNGs decoded into the cache

The images are made once in ``--workdir`` (blurred blobs on a gradient, seeded, so they compress like photos
rather than noise) and kept for the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZE = 64
CONFIG = """\
model:
  spec: {type: mlp, hidden: [64], code_size: 16}
training: {epochs: 1, batch_size: 256}
"""
MEASURE = """\
import resource, subprocess, sys, time
t0 = time.perf_counter()
code = subprocess.run(sys.argv[1:]).returncode
print(f"__bench__ {code} {time.perf_counter() - t0:.3f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
"""


def structured(n: int, seed: int) -> np.ndarray:
    """uint8 ``(n, 3, 64, 64)``: a colour gradient plus three soft blobs per image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    base = rng.uniform(0, 120, (n, 3, 1, 1)).astype(np.float32)
    tilt = rng.uniform(-60, 60, (n, 3, 2, 1, 1)).astype(np.float32)
    img = base + tilt[:, :, 0] * yy + tilt[:, :, 1] * xx
    for _ in range(3):
        cy, cx = rng.uniform(0.1, 0.9, (2, n, 1, 1, 1)).astype(np.float32)
        r = rng.uniform(0.05, 0.2, (n, 1, 1, 1)).astype(np.float32)
        colour = rng.uniform(-100, 135, (n, 3, 1, 1)).astype(np.float32)
        img += colour * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2))
    return img.clip(0, 255).astype(np.uint8)


def make_set(path: Path, n: int, chunk: int = 10_000) -> None:
    if path.is_file() and np.load(path, mmap_mode="r").shape == (n, 3, SIZE, SIZE):
        return
    print(f"making {n:,} images of 3x{SIZE}x{SIZE} in {path} ...", flush=True)
    tmp = path.with_suffix(".partial.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, 3, SIZE, SIZE))
    for start in range(0, n, chunk):
        out[start : start + chunk] = structured(min(chunk, n - start), seed=start)
        out.flush()
    del out
    os.replace(tmp, path)


def head(big: Path, path: Path, n: int) -> None:
    if path.is_file() and np.load(path, mmap_mode="r").shape[0] == n:
        return
    np.save(path, np.load(big, mmap_mode="r")[:n])


def train(data: Path, config: Path, cache: str, extra: list[str]) -> dict:
    """One ``aelab train`` process: exit code, whole seconds, peak RSS (GB) and the run's metrics."""
    with tempfile.TemporaryDirectory() as runs:
        cmd = [sys.executable, "-c", MEASURE, sys.executable, "-m", "aelab", "train", "--config", str(config)]
        cmd += ["--dataset", "array", "--data-dir", str(data), "--runs-dir", runs, "--no-analysis", "--no-progress"]
        out = subprocess.run(
            cmd + extra, capture_output=True, text=True, env={**os.environ, "AELAB_DATA": cache}, check=False
        )
        line = [s for s in out.stdout.splitlines() if s.startswith("__bench__")]
        code, seconds, rss_kb = line[-1].split()[1:] if line else ("?", "0", "0")
        if code != "0":
            raise SystemExit(f"aelab train failed ({code}):\n{out.stderr[-3000:]}")
        rows = [json.loads(p.read_text()) for p in Path(runs).rglob("metrics.json")]
        [row] = [r for r in rows if isinstance(r, dict) and "images_per_second" in r]
        return {"seconds": float(seconds), "rss_gb": int(rss_kb) / 1024**2, **row}


def decode(n: int, workdir: Path, cache: str) -> None:
    """Write ``n`` PNGs, then time the first read of the folder (decoding into the cache) and the second."""
    from PIL import Image

    folder = workdir / f"pngs-{n}"
    if not folder.is_dir():
        print(f"writing {n:,} PNGs ...", flush=True)
        folder.mkdir(parents=True)
        for start in range(0, n, 10_000):
            for i, img in enumerate(structured(min(10_000, n - start), seed=start)):
                Image.fromarray(img.transpose(1, 2, 0)).save(folder / f"{start + i:07d}.png", compress_level=1)
    env = {**os.environ, "AELAB_DATA": cache}
    code = "from aelab.data import load_dataset; from aelab.config import DataConfig; import sys; "
    code += "load_dataset(DataConfig(name='folder', data_dir=sys.argv[1]))"
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code, str(folder)], env=env, check=True)
        times.append(time.perf_counter() - t0)
    print(
        f"folder of {n:,} PNGs (3x64x64): first load {times[0]:.1f} s ({n / times[0]:,.0f} images/s decoded into "
        f"the cache, {os.cpu_count()} cores), second load {times[1]:.1f} s (the cache read)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500_000)
    parser.add_argument("--fits", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "aelab-bigdata")
    parser.add_argument("--decode", type=int, default=0, help="only time decoding a folder of this many PNGs")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1024**3:.0f} GiB; python {sys.version.split()[0]}"
    )
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.decode:
        with tempfile.TemporaryDirectory() as cache:
            decode(args.decode, args.workdir, cache)
        return
    big, small = args.workdir / f"images-{args.images}.npy", args.workdir / f"images-{args.fits}.npy"
    make_set(big, args.images)
    head(big, small, args.fits)
    config = args.workdir / "bench.yaml"
    config.write_text(CONFIG)
    with tempfile.TemporaryDirectory() as cache:
        runs = [
            ("fits, in memory", small, []),
            ("fits, memory-mapped", small, ["--set", "data.memory_map_above_gb=0"]),
            (f"{big.stat().st_size / 1e9:.1f} GB, memory-mapped", big, []),
        ]
        results = [(label, train(path, config, cache, extra)) for label, path, extra in runs]
    base = results[0][1]["images_per_second"]
    print(f"{'set':<28} {'images/s':>10} {'vs in memory':>13} {'peak RSS':>10} {'whole s':>8} {'test MSE':>9}")
    for label, r in results:
        print(
            f"{label:<28} {r['images_per_second']:>10,.0f} {r['images_per_second'] / base:>12.2f}x "
            f"{r['rss_gb']:>8.2f} GB {r['seconds']:>8.1f} {r['test_mse']:>9.5f}"
        )
    print(
        "whole s: the process, with its evaluation and baselines; the set that fits computes its PCA and mean-image "
        "baselines in its first run and reads them from the data cache in its second"
    )


if __name__ == "__main__":
    main()
