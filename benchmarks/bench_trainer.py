"""aelab's trainer vs the tutorial-style loop, same data, model, batch size and epochs, in one run.

Tutorial loop (the Covalent tutorial's): torchvision FashionMNIST with ``ToTensor``, ``DataLoader`` (batch
64, shuffled), ``loss.item()`` every step. aelab: ``aelab.train`` on the same 60,000 training images held
in memory (no validation split, no checkpoints). Each (loop, model) pair runs in its own process so peak
memory is its own. Prints images/s, the ratio, test MSE and peak memory.

The timings of a small shared machine drift by 10-20% from minute to minute, so with ``--repeats N`` every
pair runs N times, the pairs taking turns (tutorial, aelab, tutorial, aelab, ...), and the fastest run of
each pair counts; the slowest is printed too.

    python benchmarks/bench_trainer.py --epochs 2 --repeats 3   # CPU (or GPU if there is one)
    python benchmarks/bench_trainer.py --epochs 50 --device cuda

``--seed N`` seeds both loops (initial weights and batch order; default 0): the spread of test MSE between seeds
says how much of a gap between the two loops one seed can show.

``--whole-process`` times what a user waits for instead, from process start to exit: the tutorial's script
(imports, loaders, each model trained in turn and tested) against ``aelab compare --epochs N --no-analysis`` as
a user runs it (default: 57,000 training images and a validation pass per epoch, checkpoints, test evaluation with
PSNR/SSIM, PCA and mean-image baselines, figures and report) and with ``--val-fraction 0`` (all 60,000 images,
as the tutorial). Each in a fresh runs folder; the baselines are cached in a data cache of this benchmark's own
after the first round (as on a user's machine after the first compare).

    python benchmarks/bench_trainer.py --whole-process --epochs 3 --repeats 3

``--pythae FOLDER`` adds pythae 0.1.2's ``TrainingPipeline`` as a third script (its own process, the same models
with stock layers, 57,000 training and 3,000 evaluation images, Adam 1e-3, batch 64). pythae is not a dependency
of aelab; install it beside this environment's torch without touching it:

    pip install --no-deps --target /tmp/pythae pythae==0.1.2 tqdm
    python benchmarks/bench_trainer.py --whole-process --epochs 3 --repeats 3 --pythae /tmp/pythae

``--bf16`` adds ``aelab compare --precision bf16`` (bf16 autocast; slower than fp32 on the AVX512-BF16 CPU without
AMX of BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def stage_files() -> None:
    """Put the IDX files where torchvision's FashionMNIST looks (aelab's data cache), outside any timing."""
    from aelab.config import DataConfig
    from aelab.data import load_dataset

    load_dataset(DataConfig(name="fashion-mnist"))


def tutorial_loop(model_name: str, epochs: int, device: str, stage: bool = True, seed: int = 0) -> dict:
    import torch
    from torchvision import datasets, transforms

    from aelab.io import cache_dir
    from aelab.models import build_model
    from aelab.models.layers import stock_layers

    if stage:
        stage_files()
    root = str(cache_dir())
    train_set = datasets.FashionMNIST(root, train=True, download=False, transform=transforms.ToTensor())
    test_set = datasets.FashionMNIST(root, train=False, download=False, transform=transforms.ToTensor())
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=64, shuffle=True)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=1000, shuffle=False)
    torch.manual_seed(seed)
    # the tutorial writes stock nn.Conv2d / nn.ConvTranspose2d, not aelab's faster subclasses
    model = stock_layers(build_model(model_name)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.MSELoss()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        running = 0.0
        for data, _ in train_loader:
            data = data.to(device)
            recon = model(data).reconstruction
            loss = loss_fn(recon, data)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += loss.item()
    _sync(device)
    seconds = time.perf_counter() - t0
    model.eval()
    test_loss = 0.0
    with torch.no_grad():
        for data, _ in test_loader:
            data = data.to(device)
            test_loss += loss_fn(model(data).reconstruction, data).item()
    return {"seconds": seconds, "images": len(train_set) * epochs, "test_mse": test_loss / len(test_loader)}


def pythae_script(model_name: str, epochs: int) -> dict:
    """pythae 0.1.2's ``TrainingPipeline`` as its examples use it: torchvision's tensors of the training split
    (57,000 to train, the last 3,000 to evaluate each epoch, as aelab's validation split), the same model as the
    tutorial (stock layers) wrapped as pythae's encoder and decoder, ``AE`` (summed-pixel MSE), Adam 1e-3,
    batch 64, models saved in a temporary folder. Returns training seconds (its pipeline call) and test MSE."""
    import tempfile

    import torch
    from pythae.models import AE, AEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    from torchvision import datasets

    from aelab.io import cache_dir
    from aelab.models import build_model
    from aelab.models.layers import stock_layers

    root = str(cache_dir())
    train = datasets.FashionMNIST(root, train=True, download=False).data.reshape(-1, 1, 28, 28) / 255.0
    test = datasets.FashionMNIST(root, train=False, download=False).data.reshape(-1, 1, 28, 28) / 255.0
    torch.manual_seed(0)
    net = stock_layers(build_model(model_name))

    class Encoder(BaseEncoder):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> ModelOutput:
            return ModelOutput(embedding=self.net.encode(x))

    class Decoder(BaseDecoder):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, z: torch.Tensor) -> ModelOutput:
            return ModelOutput(reconstruction=self.net.decode(z))

    model = AE(AEConfig(input_dim=(1, 28, 28), latent_dim=net.code_size), encoder=Encoder(), decoder=Decoder())
    with tempfile.TemporaryDirectory() as out:
        config = BaseTrainerConfig(
            output_dir=out,
            num_epochs=epochs,
            learning_rate=1e-3,
            per_device_train_batch_size=64,
            per_device_eval_batch_size=64,
            no_cuda=True,
        )
        t0 = time.perf_counter()
        TrainingPipeline(training_config=config, model=model)(train_data=train[:57000], eval_data=train[57000:])
        seconds = time.perf_counter() - t0
    net.eval()
    with torch.no_grad():
        mse = sum(((net(b).reconstruction - b) ** 2).sum().item() for b in test.split(1000)) / test.numel()
    return {"seconds": seconds, "images": 57000 * epochs, "test_mse": mse}


def aelab_loop(model_name: str, epochs: int, device: str, seed: int = 0) -> dict:
    import torch

    from aelab.config import DataConfig, TrainingConfig
    from aelab.data import load_dataset
    from aelab.evaluation import evaluate
    from aelab.models import build_model
    from aelab.training import train

    ds = load_dataset(DataConfig(name="fashion-mnist", val_fraction=0.0))
    torch.manual_seed(seed)
    model = build_model(model_name, ds.shape)
    # the first torch.optim optimizer imports torch._dynamo (~1 s); the tutorial loop makes its optimizer before
    # its clock starts, so the same one-time import is paid here before the clock too
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    _sync(device)
    t0 = time.perf_counter()
    cfg = TrainingConfig(epochs=epochs, batch_size=64, device=device, log_interval=10**6)
    train(model, ds, cfg, seed=seed, progress=False)
    _sync(device)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "images": len(ds.train) * epochs, "test_mse": evaluate(model, ds.test)["mse"]}


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def child(loop: str, model_name: str, epochs: int, device: str, seed: int = 0) -> None:
    import torch

    if loop == "tutorial-script":  # the whole script: every model in turn, files staged by the parent
        runs = {m: tutorial_loop(m, epochs, device, stage=False) for m in model_name.split(",")}
        print("RESULT " + json.dumps(runs))
        return
    if loop == "pythae-script":
        print("RESULT " + json.dumps({m: pythae_script(m, epochs) for m in model_name.split(",")}))
        return
    out = (tutorial_loop if loop == "tutorial" else aelab_loop)(model_name, epochs, device, seed=seed)
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
    print("RESULT " + json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--models", default="linear-3,conv-64")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=1, help="runs per (loop, model) pair; the fastest counts")
    parser.add_argument("--whole-process", action="store_true", help="time whole processes: script vs aelab compare")
    parser.add_argument(
        "--pythae",
        metavar="FOLDER",
        help="with --whole-process: also time pythae 0.1.2 installed in FOLDER "
        "(pip install --target FOLDER pythae==0.1.2 tqdm --no-deps)",
    )
    parser.add_argument(
        "--bf16", action="store_true", help="with --whole-process: also time aelab compare --precision bf16"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of both loops (initial weights and batch order; default 0)"
    )
    parser.add_argument("--child", nargs=2, metavar=("LOOP", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.whole_process:
        whole_process(args.epochs, args.models, args.repeats, args.pythae, args.bf16)
        return
    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if args.child:
        child(args.child[0], args.child[1], args.epochs, device, args.seed)
        return
    import platform

    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"device {device}{' (' + torch.cuda.get_device_name() + ')' if device == 'cuda' else ''}, "
        f"torch {torch.__version__}; {args.epochs} epochs, batch 64, Fashion-MNIST 60,000 train images, seed {args.seed}"
    )
    results, rounds = {}, []
    for _ in range(max(1, args.repeats)):
        rounds.append({})
        for model_name in args.models.split(","):
            for loop in ("tutorial", "aelab"):
                proc = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--epochs",
                        str(args.epochs),
                        "--device",
                        device,
                        "--seed",
                        str(args.seed),
                        "--child",
                        loop,
                        model_name,
                    ],
                    capture_output=True,
                    text=True,
                )
                line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
                if proc.returncode != 0 or not line:
                    sys.exit(f"{loop} {model_name} failed:\n{proc.stderr[-2000:]}")
                run = json.loads(line[0][7:])
                key = (loop, model_name)
                rounds[-1][key] = run["seconds"]
                if key not in results or run["seconds"] < results[key]["seconds"]:
                    results[key] = run
    header = (
        f"{'model':<10} {'loop':<9} {'images/s':>10} {'seconds':>9} {'slowest':>9} {'test MSE':>9} "
        f"{'peak RSS MiB':>13} {'peak GPU MiB':>13}"
    )
    print(header)
    print("-" * len(header))
    for (loop, model_name), r in results.items():
        gpu = f"{r['peak_gpu_mib']:.0f}" if r["peak_gpu_mib"] is not None else "-"
        print(
            f"{model_name:<10} {loop:<9} {r['images'] / r['seconds']:>10,.0f} {r['seconds']:>9.1f} "
            f"{max(rd[(loop, model_name)] for rd in rounds):>9.1f} {r['test_mse']:>9.5f} {r['peak_rss_mib']:>13.0f} {gpu:>13}"
        )
    total = {loop: sum(r["seconds"] for (l, _), r in results.items() if l == loop) for loop in ("tutorial", "aelab")}
    for model_name in args.models.split(","):
        t, a = results[("tutorial", model_name)], results[("aelab", model_name)]
        print(f"speed-up {model_name}: {t['seconds'] / a['seconds']:.2f}x")
    print(
        f"speed-up, all models together (total time): {total['tutorial'] / total['aelab']:.2f}x"
        + (f" (fastest of {args.repeats} runs per pair)" if args.repeats > 1 else "")
    )
    if len(rounds) > 1:
        each = [
            sum(v for (l, _), v in r.items() if l == "tutorial") / sum(v for (l, _), v in r.items() if l == "aelab")
            for r in rounds
        ]
        print("speed-up together in each round: " + ", ".join(f"{x:.2f}x" for x in each))


def whole_process(epochs: int, models: str, repeats: int, pythae: str | None = None, bf16: bool = False) -> None:
    """The tutorial's script (and pythae's, when ``pythae`` names a folder that holds pythae 0.1.2) vs ``aelab
    compare --no-analysis`` (and with ``--precision bf16`` when ``bf16``), whole processes, taking turns; fastest
    counts."""
    import os
    import platform
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "AELAB_DATA": cache}
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                "import bench_trainer; bench_trainer.stage_files()",
            ],
            env=env,
            check=True,
        )
        print(
            f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores; {epochs} epochs, "
            f"models {models}, batch 64; whole processes, fastest of {repeats} (taking turns)"
        )
        script = [__file__, "--epochs", str(epochs), "--device", "cpu", "--child", "tutorial-script", models]
        compare = ["-m", "aelab", "compare", "--epochs", str(epochs), "--no-analysis", "--no-progress"]
        contenders: dict[str, list[str]] = {
            "tutorial script": script,
            "aelab compare --no-analysis": [*compare, "--models", models],
            "aelab compare --no-analysis --val-fraction 0": [*compare, "--models", models, "--val-fraction", "0"],
        }
        if bf16:
            contenders["aelab compare --no-analysis --precision bf16"] = [
                *compare,
                "--models",
                models,
                "--precision",
                "bf16",
            ]
        if pythae:  # pythae in a folder of its own (pip install --target), beside this environment's torch
            contenders["pythae 0.1.2 script"] = [*script[:-2], "pythae-script", models]
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythae, env.get("PYTHONPATH")]))
        best: dict[str, tuple[float, dict]] = {}
        every: dict[str, list[float]] = {k: [] for k in contenders}
        for _ in range(max(1, repeats)):
            for name, argv in contenders.items():
                with tempfile.TemporaryDirectory() as runs:
                    extra = ["--runs-dir", runs] if name.startswith("aelab") else []
                    t0 = time.perf_counter()
                    proc = subprocess.run([sys.executable, *argv, *extra], capture_output=True, text=True, env=env)
                    seconds = time.perf_counter() - t0
                    if proc.returncode != 0:
                        sys.exit(f"{name} failed:\n{proc.stderr[-2000:]}")
                    if name.startswith("aelab"):
                        [metrics] = list(Path(runs).glob("*/metrics.json"))
                        rows = json.loads(metrics.read_text())["runs"]
                        mse = {r["model"]: r["test_mse"] for r in rows if r["model"] in models.split(",")}
                        train = sum(r["train_seconds"] for r in rows)
                    else:
                        line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
                        out = json.loads(line[0][7:])
                        mse = {m: r["test_mse"] for m, r in out.items()}
                        train = sum(r["seconds"] for r in out.values())
                every[name].append(seconds)
                if name not in best or seconds < best[name][0]:
                    best[name] = (seconds, {"mse": mse, "train": train})
        base = best["tutorial script"][0]
        for name, (seconds, info) in best.items():
            mses = ", ".join(f"{m} {v:.5f}" for m, v in info["mse"].items())
            print(
                f"{name:<46} {seconds:6.1f} s (all: {', '.join(f'{s:.1f}' for s in every[name])}), training "
                f"{info['train']:5.1f} s, outside {seconds - info['train']:4.1f} s; test MSE {mses}; "
                f"speed-up {base / seconds:.2f}x"
            )


if __name__ == "__main__":
    main()
