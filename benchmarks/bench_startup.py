"""Fixed costs of the CLI, measured in one run: ``aelab --help``, ``aelab models``, and the time outside
training of ``aelab compare --epochs 2 --no-analysis`` (start-up, data, evaluation, baselines, figures,
report), run in-process (``--executor inline``) and with one process per model (``--executor local
--workers 2``).

    python benchmarks/bench_startup.py [--epochs 2] [--repeats 3]
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


def timed(args: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "aelab", *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"aelab {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    return time.perf_counter() - t0


def compare(epochs: int, env: dict, executor: str = "inline", extra: tuple[str, ...] = ()) -> tuple[float, float]:
    """Whole-process seconds of one compare in a fresh runs folder, and the models' training seconds in it."""
    with tempfile.TemporaryDirectory() as tmp:
        t = timed(
            ["compare", "--epochs", str(epochs), "--no-analysis", "--no-progress", "--runs-dir", tmp]
            + ["--executor", executor, *extra],
            env,
        )
        [metrics] = list(Path(tmp).glob("*/metrics.json"))
        rows = json.loads(metrics.read_text())["runs"]
        return t, sum(r["train_seconds"] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores; python {sys.version.split()[0]}"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "AELAB_DATA": cache}  # a fresh data cache: nothing computed before
        help_s = min(timed(["--help"], env) for _ in range(args.repeats))
        models_first = timed(["models"], env)
        models_s = min(timed(["models"], env) for _ in range(args.repeats))
        print(f"aelab --help   {help_s:6.2f} s (fastest of {args.repeats})")
        print(
            f"aelab models   {models_first:6.2f} s first call (empty cache: the shipped table), {models_s:.2f} s again "
            f"(fastest of {args.repeats})"
        )
        label = f"compare --epochs {args.epochs} --no-analysis"
        runs = [compare(args.epochs, env) for _ in range(args.repeats + 1)]
        (t, train), rest = runs[0], runs[1:]
        print(
            f"{label}, fresh data cache (baselines computed):  total {t:6.1f} s, training {train:6.1f} s, outside training {t - train:5.1f} s"
        )
        outside = [t - train for t, train in rest]
        t, train = rest[outside.index(min(outside))]
        print(
            f"{label}, baselines cached, fresh runs folder: total {t:6.1f} s, training {train:6.1f} s, outside training "
            f"{t - train:5.1f} s (fastest of {len(rest)}; all: {', '.join(f'{o:.1f}' for o in outside)} s)"
        )
        t, train = compare(args.epochs, env, "local", ("--workers", "2"))
        print(
            f"{label} --executor local --workers 2: total {t:6.1f} s, training {train:6.1f} s (sum), outside training {t - train:5.1f} s"
        )


if __name__ == "__main__":
    main()
