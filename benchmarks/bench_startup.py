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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env = dict(os.environ)
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores; python {sys.version.split()[0]}"
    )
    help_s = min(timed(["--help"], env) for _ in range(args.repeats))
    models_s = min(timed(["models"], env) for _ in range(args.repeats))
    print(f"aelab --help   {help_s:6.2f} s (fastest of {args.repeats})")
    print(f"aelab models   {models_s:6.2f} s (fastest of {args.repeats})")
    for executor, extra in (("inline", []), ("local", ["--workers", "2"])):
        with tempfile.TemporaryDirectory() as tmp:
            t = timed(
                [
                    "compare",
                    "--epochs",
                    str(args.epochs),
                    "--no-analysis",
                    "--no-progress",
                    "--runs-dir",
                    tmp,
                    "--executor",
                    executor,
                    *extra,
                ],
                env,
            )
            [metrics] = list(Path(tmp).glob("*/metrics.json"))
            rows = json.loads(metrics.read_text())["runs"]
            train = sum(r["train_seconds"] for r in rows)
            print(
                f"compare --epochs {args.epochs} --executor {executor:<6} {' '.join(extra):<12} total {t:6.1f} s, "
                f"training {train:6.1f} s (sum over models), outside training {t - train:5.1f} s"
            )


if __name__ == "__main__":
    main()
