"""Where a trained autoencoder's amortization gap comes from: the encoder against its own fixed decoder, on the
Fashion-MNIST training and validation images of the run's seed (issue 21's frontier; BENCHMARKS.md).

* ``gap``: the reconstruction MSE of the first 1,000 (``--images``) training and validation images with the encoder's codes
  and after 100 steps of ``aelab refine``'s code search (the decoder fixed). A gap as large on the training
  images as on validation is the encoder's function or training, not overfitting.
* ``finetune``: train the encoder alone for ``--epochs`` more (AdamW, cosine decay from ``--lr``, batch 128,
  gradient clipping at 1, the decoder fixed in eval mode), printing the validation MSE after each epoch.
* ``fresh``: train a new encoder of the res spec ``--channels/--blocks/--hidden`` from scratch against the
  fixed decoder (the same optimizer, with half an epoch of warm-up); a larger encoder reaching a lower error
  than one of the run's own shape says that the encoder's capacity limits the code.

    python benchmarks/screen_encoder.py RUN_DIR gap
    python benchmarks/screen_encoder.py RUN_DIR finetune --epochs 3 --lr 5e-4
    python benchmarks/screen_encoder.py RUN_DIR fresh --epochs 6 --lr 2e-3 --channels 32,64 --blocks 2 --hidden 512

RUN_DIR is a finished run's folder (it holds ``model/``). The test split is printed at the end and chooses
nothing.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("mode", choices=["gap", "finetune", "fresh"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--channels", type=ints, default=[16, 32])
    parser.add_argument("--blocks", type=int, default=0)
    parser.add_argument("--hidden", type=ints, default=[256])
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (it chose the validation images)")
    parser.add_argument("--train-images", type=int, default=None, help="train on the first N training images only")
    parser.add_argument("--images", type=int, default=1000, help="gap: images of each split searched")
    args = parser.parse_args()

    import torch

    from aelab.config import DataConfig
    from aelab.config.specs import ResSpec
    from aelab.data import load_dataset
    from aelab.errors import AelabError
    from aelab.evaluation.refinement import search_codes
    from aelab.models import load
    from aelab.models.resnet import build_res

    torch.manual_seed(args.seed)
    try:
        model = load(args.run / "model")
    except AelabError as exc:
        print(f"error: RUN: {exc}", file=sys.stderr)
        sys.exit(2)
    data = load_dataset(DataConfig(), seed=args.seed)
    if args.mode == "gap":
        for name, split in (("training", data.train), ("validation", data.val)):
            _, _, per_step = search_codes(model, split[: args.images], 100)
            before, after = float(per_step[0].mean()), float(per_step[100].mean())
            print(f"{name}: {before:.6f} with the encoder's codes, {after:.6f} refined ({after / before - 1:+.1%})")
        return
    encoder = model.encoder
    if args.mode == "fresh":
        spec = ResSpec(channels=args.channels, blocks=args.blocks, hidden=args.hidden, code_size=model.code_shape[0])
        encoder = build_res(spec, model.input_shape)[0].to(memory_format=torch.channels_last)
    for p in model.decoder.parameters():
        p.requires_grad_(False)
    model.eval()

    def mse(images: torch.Tensor) -> float:
        encoder.eval()
        total = 0.0
        with torch.no_grad():
            for i in range(0, len(images), 1000):
                x = images[i : i + 1000].float() / 255
                total += float((model.clamp(model.decode(encoder(x)).float()) - x).pow(2).sum())
        return total / images.numel()

    params = list(encoder.parameters())
    val = mse(data.val[:])
    print(f"encoder: {sum(p.numel() for p in params):,} parameters; validation MSE before: {val:.6f}")
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    images, batch = data.train[: args.train_images], 128
    per_epoch = len(images) // batch
    steps, warm = args.epochs * per_epoch, (per_epoch // 2 if args.mode == "fresh" else 0)

    def rate(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / (steps - warm)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    generator, start = torch.Generator().manual_seed(args.seed), time.perf_counter()
    for epoch in range(args.epochs):
        encoder.train() if args.mode == "fresh" else encoder.eval()
        order, total = torch.randperm(len(images), generator=generator), torch.zeros(())
        for i in range(per_epoch):
            x = images[order[i * batch : (i + 1) * batch]].float() / 255
            loss = (model.decode(encoder(x)) - x).pow(2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            total += loss.detach()  # summed on the device: no host sync per step
        seconds, val = time.perf_counter() - start, mse(data.val[:])
        print(f"epoch {epoch + 1}: training {float(total) / per_epoch:.6f}, validation {val:.6f} ({seconds:.0f} s)")
    print(f"after: validation {val:.6f}, test {mse(data.test[:]):.6f}")


if __name__ == "__main__":
    main()
