"""aelab's reference classifier of a dataset: the feature space of its sample-quality measures.

A small CNN trained on the dataset's training split (Adam 1e-3, batch 128, 3 epochs, seed 0)::

    x (N,C,H,W) -> Conv 3x3 32 -> ReLU -> MaxPool 2 -> Conv 3x3 64 -> ReLU -> MaxPool 2 -> flatten
      -> Linear 128 -> ReLU = features (N, 128) -> Linear -> class logits (N, classes)

Its 128 features are what :func:`aelab.evaluation.generation.frechet_distance` compares: a Frechet distance in
*this* network's feature space, which is not the Inception FID and is comparable only between aelab runs on
the same dataset. The trained network is cached per training split (a SHA-256 of its images and labels) in
aelab's data cache (``$AELAB_DATA`` or ``~/.cache/aelab``), under ``classifiers/``.
"""

from __future__ import annotations

import hashlib
import json

import torch
import torch.nn.functional as F
from torch import nn

from aelab.data.dataset import ImageDataset, ImageSplit, to_unit_float

FEATURES = 128
EPOCHS, BATCH, LR, VERSION = 3, 128, 1e-3, 1


class Features(nn.Module):
    """The classifier's feature extractor: float images ``(N, C, H, W)`` in [0, 1] -> ``(N, 128)``."""

    num_features = FEATURES

    def __init__(self, shape: tuple[int, int, int]) -> None:
        super().__init__()
        c, h, w = shape
        self.net = nn.Sequential(
            nn.Conv2d(c, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(1),
            nn.Linear(64 * (h // 4) * (w // 4), FEATURES),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.float())


class Classifier(nn.Module):
    """:class:`Features` and a linear head to class logits."""

    def __init__(self, shape: tuple[int, int, int], classes: int) -> None:
        super().__init__()
        self.features = Features(shape)
        self.head = nn.Linear(FEATURES, classes)
        self.test_accuracy = float("nan")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
        """Class indices ``(N,)`` of float images ``(N, C, H, W)`` in [0, 1]."""
        self.eval()
        return torch.cat([self(x[i : i + batch]).argmax(1) for i in range(0, len(x), batch)])


def _key(dataset: ImageDataset) -> str:
    h = hashlib.sha256(f"v{VERSION}|{dataset.shape}|{len(dataset.class_names)}".encode())
    h.update(dataset.train.images.contiguous().numpy().tobytes())
    h.update(dataset.train.labels.contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def _accuracy(model: Classifier, split: ImageSplit) -> float:
    pred = model.predict(split.floats())
    return float((pred == split.labels).float().mean())


def reference_classifier(dataset: ImageDataset) -> Classifier:
    """The dataset's reference classifier: loaded from the cache, or trained (about 20 s for Fashion-MNIST on
    a 2-core CPU) and cached. ``test_accuracy`` holds its accuracy on the test split.

    Raises:
        AelabError: the dataset has fewer than 2 classes, or holds vectors rather than images.
    """
    from safetensors.torch import load_file, save

    from aelab.errors import AelabError
    from aelab.io import atomic_write, atomic_write_text, cache_dir

    if dataset.is_vectors or not dataset.labelled:
        raise AelabError(
            f"sample quality needs labelled images to train aelab's classifier; {dataset.name} "
            "has vectors or a single class"
        )
    model = Classifier(dataset.shape, len(dataset.class_names))
    folder = cache_dir() / "classifiers"
    key = _key(dataset)
    weights, meta = folder / f"{key}.safetensors", folder / f"{key}.json"
    if weights.is_file() and meta.is_file():
        model.load_state_dict(load_file(str(weights)))
        model.test_accuracy = json.loads(meta.read_text())["test_accuracy"]
        return model.eval()
    generator = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Classifier(dataset.shape, len(dataset.class_names))
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        x, y = dataset.train.images, dataset.train.labels
        model.train()
        for _ in range(EPOCHS):
            perm = torch.randperm(len(x), generator=generator)
            for i in range(0, len(x), BATCH):
                idx = perm[i : i + BATCH]
                loss = F.cross_entropy(model(to_unit_float(x[idx])), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    model.eval()
    model.test_accuracy = _accuracy(model, dataset.test) if len(dataset.test) else float("nan")
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    atomic_write(weights, lambda f: f.write(save(tensors)))
    atomic_write_text(
        meta,
        json.dumps(
            {"dataset": dataset.name, "test_accuracy": model.test_accuracy, "epochs": EPOCHS, "features": FEATURES}
        ),
    )
    return model
