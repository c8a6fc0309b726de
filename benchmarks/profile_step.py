"""Where a training step of a preset spends its time on this machine: torch.profiler's table of operators (self
CPU time) over a number of steps of aelab's trainer step (forward, loss, backward, optimizer), the step time, and
how close the step comes to the machine's arithmetic peak: the floating-point operations of one step (counted by
``torch.utils.flop_counter.FlopCounterMode``, forward and backward) per second, beside a 1024x1024 fp32 matrix
product on the same threads (a roofline: a step cannot run faster than its FLOPs at that rate).

    python benchmarks/profile_step.py --model conv-64 --steps 200 [--batch 64] [--rows 15] [--data random]

The batches are Fashion-MNIST training images (``--data fashion-mnist``, the default). ``--data random`` feeds
uniform random pixels instead, for models of other shapes; beware that such inputs drive a conv model's
activations and gradients into subnormal floats, which are slow on x86 CPUs: conv-64's step took 4.8 ms on
random pixels and 3.3 ms on real images on the machine of BENCHMARKS.md (3.3 ms on random pixels with
``torch.set_flush_denormal(True)``).
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="conv-64")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rows", type=int, default=15)
    parser.add_argument("--data", default="fashion-mnist", choices=["fashion-mnist", "random"])
    args = parser.parse_args()
    import torch
    from torch.profiler import ProfilerActivity, profile

    from aelab.config import DataConfig, TrainingConfig
    from aelab.data import ImageDataset, ImageSplit, load_dataset
    from aelab.models import build_model
    from aelab.training.trainer import _loop, _state, _step

    torch.manual_seed(0)
    model = build_model(args.model)
    n = args.batch * args.steps
    if args.data == "random":
        images = torch.randint(0, 256, (n, *model.input_shape), dtype=torch.uint8)
    elif tuple(model.input_shape) != (1, 28, 28):
        parser.error(f"--data fashion-mnist: {args.model} takes {tuple(model.input_shape)} images; use --data random")
    else:
        images = load_dataset(DataConfig(name="fashion-mnist"), seed=0).train.images[:n].clone()
        n = len(images)
    split = ImageSplit(images, torch.zeros(n, dtype=torch.long))
    ds = ImageDataset(
        "random", split, ImageSplit(images[:1], split.labels[:1]), ImageSplit(images[:8], split.labels[:8])
    )
    cfg = TrainingConfig(epochs=1, batch_size=args.batch)
    loop = _loop(model, ds, cfg, torch.device("cpu"), 0)
    state = _state(loop, 0)
    x = images[: args.batch].float().div(255).contiguous(memory_format=loop.memory_format)
    y = loop.train_y[: args.batch]

    def step():
        out = loop.step(x, y)
        _step(
            loop, state, model.reconstruction_loss(out, x, loop.loss) + (out.penalty if out.penalty is not None else 0)
        )

    for _ in range(20):  # warm-up (oneDNN primitive creation)
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    per_step = (time.perf_counter() - t0) / args.steps
    print(
        f"{args.model}: {per_step * 1e3:.2f} ms per step of {args.batch} images = {args.batch / per_step:,.0f} images/s "
        f"({torch.get_num_threads()} threads)"
    )
    flops = step_flops(step)
    rate, peak = flops / per_step / 1e9, sgemm_rate(1024)
    print(
        f"{flops / args.batch / 1e6:.4f} MFLOP per image per step (forward and backward, FlopCounterMode): "
        f"{rate:.1f} GFLOP/s = {100 * rate / peak:.0f}% of a 1024x1024 fp32 matrix product on the same threads "
        f"({peak:.1f} GFLOP/s)"
    )
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(min(args.steps, 100)):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


def step_flops(step) -> int:
    """Floating-point operations of one call of ``step`` (matrix products and convolutions, forward and backward,
    as torch's FlopCounterMode counts them: 2 per multiply-add; element-wise operations are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def sgemm_rate(n: int, repeats: int = 5) -> float:
    """GFLOP/s of an ``n x n`` fp32 matrix product on torch's threads, fastest of ``repeats`` rounds of 5."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(5):
            a @ b
        best = min(best, (time.perf_counter() - t0) / 5)
    return 2 * n**3 / best / 1e9


if __name__ == "__main__":
    main()
