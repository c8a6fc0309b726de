"""Code refinement: for each image, the code that the trained decoder reconstructs best, searched by gradient
descent from the encoder's code (the decoder fixed). The encoder is one amortized guess for every image;
the difference between its reconstruction error and the refined one is the amortization gap (Cremer, Li &
Duvenaud, "Inference Suboptimality in Variational Autoencoders", ICML 2018), and searching the code per image is
what learned image codecs do on the encoder side (Campos et al., "Content Adaptive Optimization for Neural Image
Compression", CVPR Workshops 2019). The code keeps its size: the same number of values, each a different value.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aelab.data.dataset import ImageSplit
from aelab.errors import ConfigError
from aelab.evaluation.batches import batches, encode_all
from aelab.models.autoencoder import AutoEncoder

RECORDED_STEPS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
"""Steps at which the reconstruction error is recorded (with the last step of a search)."""


@dataclass
class Refinement:
    """What :func:`refinement` measures on ``images`` test images.

    Attributes:
        steps: the recorded steps, ascending; 0 is the encoder's own code.
        mse: mean squared error per pixel (images in [0, 1]) over the images after each recorded step.
        psnr: mean PSNR per image in dB (data range 1) after each recorded step.
        images: how many images were refined.
        shift: mean absolute change of a code value, in units of that value's standard deviation over the
            images' encoder codes.
        originals, encoded, refined: float ``(S, C, H, W)`` in [0, 1]: the first ``S`` images, their
            reconstruction from the encoder's code and from the refined code.
    """

    steps: list[int]
    mse: list[float]
    psnr: list[float]
    images: int
    shift: float
    originals: torch.Tensor
    encoded: torch.Tensor
    refined: torch.Tensor


def refine_codes(
    model: AutoEncoder, x: torch.Tensor, scale: torch.Tensor, steps: int, lr: float
) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Search the codes of a batch: Adam on ``z = encode(x) + scale * u`` from ``u = 0``, minimizing each
    image's mean squared error of ``decode(z)``; the model's weights are not changed (eval mode).

    Args:
        x: float32 ``(N, C, H, W)`` in [0, 1] on the model's device.
        scale: float32 ``(1, *code_shape)``: the step unit of each code value (its standard deviation).
        steps: optimizer steps (0 = the encoder's code).
        lr: Adam's learning rate, in units of ``scale``.

    Returns:
        The refined codes ``(N, *code_shape)`` and, for each step of :data:`RECORDED_STEPS` up to ``steps`` and
        for ``steps`` itself, the per-image MSE float64 ``(N,)`` after it.
    """
    model.eval()
    with torch.no_grad():
        z0 = model.encode(x).float()
    u = torch.zeros_like(z0, requires_grad=True)
    optimizer = torch.optim.Adam([u], lr=lr)
    recorded: dict[int, torch.Tensor] = {}
    for step in range(steps + 1):
        with torch.enable_grad():
            out = model.decode(z0 + scale * u).float()
            error = (out - x).pow(2).flatten(1).mean(1)
            if step in RECORDED_STEPS or step == steps:
                recorded[step] = (model.clamp(out.detach()) - x).pow(2).flatten(1).mean(1).double().cpu()
            if step == steps:
                break
            (u.grad,) = torch.autograd.grad(error.sum(), u)  # each image's error moves only its own code
        optimizer.step()
    return (z0 + scale * u).detach(), recorded


def step_unit(codes: torch.Tensor) -> torch.Tensor:
    """The step unit of each code value: its standard deviation over ``codes`` ``(N, D)`` (at least 1e-6), ``(D,)``."""
    return codes.std(0).clamp_min(1e-6)


DEFAULT_LR = 0.05
"""Adam's learning rate of a search, in code standard deviations per step: chosen on the first 1,000 validation
images of res-v2-3 and res-v2-64 among 0.01, 0.02, 0.05 and 0.1 (the looking-inside guide)."""


def search_codes(
    model: AutoEncoder, images: torch.Tensor, steps: int, lr: float = DEFAULT_LR, batch_size: int = 500
) -> tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]]:
    """Search the code of every image (:func:`refine_codes`, batch by batch). The step unit of each code value
    is its standard deviation over these images' encoder codes, so ``lr`` means the same for codes of any scale;
    each image's search is its own (the result does not depend on ``batch_size`` beyond float rounding).

    Args:
        images: uint8 ``(N, C, H, W)``, N >= 2.

    Returns:
        The encoder's codes and the refined codes, float32 ``(N, D)`` on the CPU, and the per-image MSE float64
        ``(N,)`` after each recorded step.

    Raises:
        ConfigError: a model whose code a search cannot move (``model.lacks('continuous_code')``), or fewer than
            2 images.
    """
    reason = model.lacks("continuous_code")
    if reason is not None:
        raise ConfigError(f"model {model.name!r}: code refinement needs a code of real values; {reason}")
    if len(images) < 2:
        raise ConfigError(f"images: code refinement needs at least 2 images; got {len(images)}")
    codes = encode_all(model, images)
    scale = step_unit(codes).view(1, *model.code_shape).to(model.device)
    refined: list[torch.Tensor] = []
    errors: dict[int, list[torch.Tensor]] = {}
    for _, x, _ in batches(model, images, None, batch_size):
        z, recorded = refine_codes(model, x, scale, steps, lr)
        refined.append(z.flatten(1).cpu())
        for step, e in recorded.items():
            errors.setdefault(step, []).append(e)
    return codes, torch.cat(refined), {step: torch.cat(e) for step, e in sorted(errors.items())}


def refinement(
    model: AutoEncoder, split: ImageSplit, images: int, steps: int, lr: float, show: int = 8, batch_size: int = 500
) -> Refinement:
    """Refine the codes of the first ``images`` images of ``split`` (:func:`search_codes`) and measure the
    reconstruction error along the way.

    Raises:
        ConfigError: as :func:`search_codes`.
    """
    part = split[: min(images, len(split))]
    codes, refined, per_step = search_codes(model, part, steps, lr, batch_size)
    scale = step_unit(codes)
    psnr = {step: (10 * torch.log10(1.0 / e.clamp_min(1e-12))).mean() for step, e in per_step.items()}
    with torch.no_grad():
        x = next(batches(model, part[:show], None, show))[1]
        shape = (-1, *model.code_shape)
        encoded = model.reconstruct(x).cpu()
        decoded = model.clamp(model.decode(refined[:show].view(shape).to(model.device)).float()).cpu()
    return Refinement(
        steps=list(per_step),
        mse=[float(e.mean()) for e in per_step.values()],
        psnr=[float(p) for p in psnr.values()],
        images=len(part),
        shift=float(((refined - codes) / scale).abs().mean()),
        originals=x.cpu().float(),
        encoded=encoded.float(),
        refined=decoded,
    )
