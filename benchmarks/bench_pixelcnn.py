"""The PixelCNN prior's speed, measured in one run: training images/s of the gated PixelCNN on 7x7 grids of K = 256
(the vqvae-conv code; a batch of 128, forward + backward + Adam step, the frozen VQ-VAE's encoder included when
``--run`` names a prior run), and the time per image to range-code and to decode index grids with it (one pass
to encode; h * w = 49 passes to decode).

    python benchmarks/bench_pixelcnn.py [--run RUNS/pixelcnn-prior/<run>] [--images 1000]

Without ``--run`` a fresh PixelCNN of the example's size (C = 64, 6 layers) codes random grids: the speed is the
same, the rate is not meaningful (it is printed only with a trained prior).
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from aelab.evaluation.entropy import decode_autoregressive, encode_autoregressive
from aelab.models.pixelcnn import GatedPixelCNN


def _train_speed(net: GatedPixelCNN, grids: torch.Tensor, steps: int = 20, batch: int = 128) -> float:
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    net.train()
    for i in range(steps + 3):
        if i == 3:
            t0 = time.perf_counter()
        g = grids[(i * batch) % (len(grids) - batch) :][:batch]
        loss = net.nll(g).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="a finished PixelCNN prior run folder (its test grids are coded)")
    ap.add_argument("--images", type=int, default=1000)
    args = ap.parse_args()
    torch.manual_seed(0)
    if args.run:
        from aelab.experiments.finished import open_runs

        (run,) = open_runs(args.run)
        model, test = run.model, run.dataset.test.head(args.images)
        with torch.no_grad():
            grids = torch.cat([model.indices(x) for _, x in test.batches(500, model.device)])
        net = model.prior_net
    else:
        net = GatedPixelCNN(256, 64, 6)
        grids = torch.randint(0, 256, (args.images, 7, 7))
    net.eval()

    def conditionals(g: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.softmax(net(g).double().flatten(2).transpose(1, 2), 2)

    t0 = time.perf_counter()
    stream = encode_autoregressive(grids, conditionals)
    t_enc = time.perf_counter() - t0
    t0 = time.perf_counter()
    back = decode_autoregressive(stream, len(grids), (7, 7), conditionals)
    t_dec = time.perf_counter() - t0
    assert torch.equal(back, grids)
    speed = _train_speed(GatedPixelCNN(256, net.embedding.embedding_dim, len(net.layers)), grids.repeat(4, 1, 1))
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print(f"PixelCNN C={net.embedding.embedding_dim}, {len(net.layers)} layers, K={net.levels}, 7x7 grids")
    print(f"training: {speed:,.0f} grids/s (batch 128, forward + backward + Adam)")
    print(f"encode: {t_enc / len(grids) * 1e3:.3f} ms per image ({len(grids)} grids in one stream, 1 pass)")
    print(f"decode: {t_dec / len(grids) * 1e3:.3f} ms per image (49 passes of {len(grids)} grids), bit-identical")
    if args.run:
        print(f"rate: {len(stream) * 8 / len(grids):.1f} bits per image from the stream ({len(stream):,} bytes)")


if __name__ == "__main__":
    main()
