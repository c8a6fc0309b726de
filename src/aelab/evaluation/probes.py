"""Features with few labels: a frozen encoder's codes vs classifiers trained from scratch.

For each n (labelled images per class, drawn by seed from the training split):

* linear probe: scikit-learn ``LogisticRegression`` on standardized codes of the frozen encoder;
* kNN: ``KNeighborsClassifier`` (k = 5, or fewer when there are fewer labels) on the same codes;
* from scratch, on the same labelled images: the COMP90051 workshop's MLP (Linear 256 -> 100 -> classes,
  ReLU, dropout 0.25) and small CNN (Conv 5x5 8 -> pool -> Conv 5x5 16 -> pool -> Linear 256 -> classes),
  trained with SGD (lr 1e-2, momentum 0.9) as in the workshop, in batches of 64 for at least 5 epochs and at
  least 200 batches' worth of images (:func:`steps_to_epochs`; a set under one batch: 200 steps).

Accuracy is measured on the whole test split. "helps" says whether the better probe beats the better
from-scratch classifier at that n.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from aelab.data.dataset import ImageDataset, ImageSplit, to_unit_float
from aelab.errors import AelabError
from aelab.evaluation.batches import encode_all
from aelab.models.autoencoder import AutoEncoder


def labelled_subset(split: ImageSplit, per_class: int | None, seed: int = 0) -> torch.Tensor:
    """Indices of ``per_class`` images of each class (all images for None), chosen by ``seed``.

    Raises:
        AelabError: ``per_class`` larger than the smallest class.
    """
    if per_class is None:
        return torch.arange(len(split))
    counts = torch.bincount(split.labels)
    present = counts[counts > 0]
    if per_class < 1 or per_class > int(present.min()):
        raise AelabError(
            f"labels per class: got {per_class}; allowed: 1..{int(present.min())} (the smallest class "
            f"of the {len(split)} labelled training images)"
        )
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in torch.nonzero(counts).flatten().tolist():
        idx = torch.nonzero(split.labels == c).flatten()
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return torch.cat(picks).sort().values


class WorkshopMLP(nn.Module):
    """COMP90051 workshop 8 MLP: flatten -> 256 -> 100 -> classes, ReLU, dropout 0.25."""

    def __init__(self, n_features: int, n_classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(1),
            nn.Linear(n_features, 256),
            nn.ReLU(),
            nn.Dropout(0.25),
            nn.Linear(256, 100),
            nn.ReLU(),
            nn.Dropout(0.25),
            nn.Linear(100, n_classes),
        )

    def forward(self, x):
        return self.net(x)


class WorkshopCNN(nn.Module):
    """COMP90051 workshop 8 CNN: Conv 5x5 (8) -> pool 2 -> Conv 5x5 (16) -> pool 2 -> 256 -> classes."""

    def __init__(self, shape: tuple[int, int, int], n_classes: int) -> None:
        super().__init__()
        c, h, w = shape
        hh, ww = (((v - 4) // 2 - 4) // 2 for v in (h, w))
        flat = 16 * hh * ww
        if hh < 1 or ww < 1:
            raise AelabError(f"the workshop CNN needs images of at least 16x16; these are {h}x{w}")
        self.net = nn.Sequential(
            nn.Conv2d(c, 8, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(1),
            nn.Linear(flat, 256),
            nn.ReLU(),
            nn.Linear(256, n_classes),
        )

    def forward(self, x):
        return self.net(x)


CLASSIFIER_STEPS = 200
"""A from-scratch classifier trains on at least this many batches' worth of images (64 each); a labelled set
smaller than one batch: this many steps on the whole set."""


def steps_to_epochs(n_labelled: int, batch_size: int = 64) -> int:
    """Epochs over ``n_labelled`` images that make at least :data:`CLASSIFIER_STEPS` full batches' worth of images
    (``CLASSIFIER_STEPS * batch_size``), so a 10-per-class set is trained as long per image seen as a large one;
    a set smaller than one batch gets :data:`CLASSIFIER_STEPS` epochs of one step (more would only repeat it)."""
    return math.ceil(CLASSIFIER_STEPS * batch_size / max(n_labelled, batch_size))


def _train_classifier(
    net: nn.Module, x: torch.Tensor, y: torch.Tensor, test: ImageSplit, epochs: int, seed: int, device: torch.device
) -> float:
    torch.manual_seed(seed)
    net.to(device)
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9)
    x, y = x.to(device), y.to(device)
    g = torch.Generator().manual_seed(seed)
    epochs = max(epochs, steps_to_epochs(len(x)))
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(x), generator=g).to(device)
        for i in range(0, len(x), 64):
            idx = perm[i : i + 64]
            loss = F.cross_entropy(net(to_unit_float(x[idx])), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    net.eval()
    correct = 0
    with torch.no_grad():
        for where, xb in test.batches(1000, device):
            correct += int((net(xb).argmax(1).cpu() == test.labels[where]).sum())
    return correct / len(test)


def probe_table(
    model: AutoEncoder,
    dataset: ImageDataset,
    labels_per_class: Sequence[int | None] = (10, 100, None),
    seed: int = 0,
    classifier_epochs: int = 5,
    scratch: bool = True,
) -> list[dict]:
    """One row per n in ``labels_per_class`` (None = all labels).

    Returns:
        rows with ``labels_per_class``, ``labelled``, ``logistic``, ``knn`` (and ``mlp``, ``cnn`` with their
        parameter counts ``mlp_parameters``, ``cnn_parameters`` when ``scratch``), accuracies in [0, 1], and
        ``helps`` (bool).
    """
    device = model.device
    train_codes = encode_all(model, dataset.train.images, dataset.train.labels).numpy()
    test_codes = encode_all(model, dataset.test.images, dataset.test.labels).numpy()
    n_classes = int(max(dataset.train.labels.max(), dataset.test.labels.max())) + 1
    rows = []
    for n in labels_per_class:
        idx = labelled_subset(dataset.train, n, seed)
        y = dataset.train.labels[idx].numpy()
        codes = train_codes[idx.numpy()]
        logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(codes, y)
        knn = KNeighborsClassifier(n_neighbors=min(5, len(idx))).fit(codes, y)
        row: dict[str, Any] = {
            "labels_per_class": "all" if n is None else n,
            "labelled": len(idx),
            "logistic": float(logistic.score(test_codes, dataset.test.labels.numpy())),
            "knn": float(knn.score(test_codes, dataset.test.labels.numpy())),
        }
        if scratch:
            x_lab, y_lab = dataset.train.images[idx], dataset.train.labels[idx]
            mlp = WorkshopMLP(int(np.prod(dataset.shape)), n_classes)
            row["mlp"] = _train_classifier(mlp, x_lab, y_lab, dataset.test, classifier_epochs, seed, device)
            row["mlp_parameters"] = sum(p.numel() for p in mlp.parameters())
            try:
                cnn = WorkshopCNN(dataset.shape, n_classes)
                row["cnn"] = _train_classifier(cnn, x_lab, y_lab, dataset.test, classifier_epochs, seed, device)
                row["cnn_parameters"] = sum(p.numel() for p in cnn.parameters())
            except AelabError:
                row["cnn"], row["cnn_parameters"] = None, None
            best_scratch = max(v for v in (row["mlp"], row["cnn"]) if v is not None)
            row["helps"] = "yes" if max(row["logistic"], row["knn"]) > best_scratch else "no"
        rows.append(row)
    return rows
