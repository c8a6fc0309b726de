"""The trainer's speed in two versions of aelab, in one run: each preset trained by ``aelab.train`` (the child of
``bench_trainer.py``) with one version's source on ``PYTHONPATH`` and then the other's, taking turns, so that the
drift of a shared machine hits both alike. The fastest run of each (version, preset) counts.

    git worktree add /tmp/aelab-before <commit>
    python benchmarks/bench_versions.py --before /tmp/aelab-before/src --epochs 1 --repeats 3 \\
        --presets linear-3,conv-64,res-16,vae-conv-16,vqvae-conv
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def one(src: str, preset: str, epochs: int) -> dict:
    env = {**os.environ, "PYTHONPATH": src}
    argv = [sys.executable, str(HERE / "bench_trainer.py"), "--epochs", str(epochs), "--device", "cpu"]
    proc = subprocess.run([*argv, "--child", "aelab", preset], capture_output=True, text=True, env=env)
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        sys.exit(f"{preset} with {src} failed:\n{proc.stderr[-2000:]}")
    return json.loads(line[0][7:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the other version's src folder")
    parser.add_argument("--after", default=str(HERE.parent / "src"), help="this version's src folder")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--presets", default="linear-3,conv-64")
    args = parser.parse_args()
    versions = {"before": args.before, "after": args.after}
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores; {args.epochs} epoch(s) "
        f"of aelab.train, batch 64, Fashion-MNIST; fastest of {args.repeats}, versions taking turns"
    )
    runs: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.repeats):
        for preset in args.presets.split(","):
            for name, src in versions.items():
                runs.setdefault((name, preset), []).append(one(src, preset, args.epochs))
    print(
        f"{'preset':<12} {'before img/s':>13} {'after img/s':>12} {'after/before':>13} {'MSE before':>11} {'MSE after':>10}"
    )
    for preset in args.presets.split(","):
        b = min(runs[("before", preset)], key=lambda r: r["seconds"])
        a = min(runs[("after", preset)], key=lambda r: r["seconds"])
        print(
            f"{preset:<12} {b['images'] / b['seconds']:>13,.0f} {a['images'] / a['seconds']:>12,.0f} "
            f"{b['seconds'] / a['seconds']:>12.2f}x {b['test_mse']:>11.5f} {a['test_mse']:>10.5f}"
        )


if __name__ == "__main__":
    main()
