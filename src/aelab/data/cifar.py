"""CIFAR-10 from the "python version" batch files: read by aelab (torchvision only downloads the archive).

Each batch file is a pickle of ``{"data": uint8 (N, 3072) rows of R, G, B planes of 32x32, "labels": [N ints]}``
(the format of the official archive; ``batches.meta`` holds the class names). aelab accepts any copy in that
format, e.g. the small files tests write, and checks every batch's shape and type.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from aelab.errors import DataError

BASE_FOLDER = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILES = ["test_batch"]
CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def find_cifar_root(folder: Path) -> Path | None:
    """The root holding ``cifar-10-batches-py/`` (torchvision's layout), or None if the files are not there."""
    for root in (folder, folder.parent):
        base = root / BASE_FOLDER
        if all((base / f).is_file() for f in TRAIN_FILES + TEST_FILES):
            return root
    return None


def _batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        data = np.asarray(entry["data"])
        labels = np.asarray(entry["labels"] if "labels" in entry else entry["fine_labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(
            f"CIFAR-10 file {str(path)!r} is corrupted or not in the CIFAR-10 python format "
            f"({type(exc).__name__}: {exc})"
        ) from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(
            f"CIFAR-10 file {str(path)!r} holds arrays of shape {data.shape} and {len(labels)} labels; "
            "expected rows of 3072 uint8 values (3x32x32), one label each"
        )
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(root: Path, download: bool = False) -> tuple:
    """Read both splits. Returns (train_x, train_y, test_x, test_y, class_names); images uint8 (N, 3, 32, 32).
    ``download``: torchvision's CIFAR10 class fetches the archive into ``root`` first.

    Raises:
        DataError: a batch file that is not a CIFAR-10 pickle or has the wrong shape.
    """
    if download:
        from torchvision.datasets import CIFAR10

        for train in (True, False):
            CIFAR10(root=str(root), train=train, download=True)
    base = Path(root) / BASE_FOLDER
    out = []
    for files in (TRAIN_FILES, TEST_FILES):
        parts = [_batch(base / name) for name in files]
        out += [
            torch.from_numpy(np.concatenate([p[0] for p in parts])),
            torch.from_numpy(np.concatenate([p[1] for p in parts])),
        ]
    classes = CLASS_NAMES
    meta = base / "batches.meta"
    if meta.is_file():
        try:
            with open(meta, "rb") as f:
                classes = list(pickle.load(f, encoding="latin1")["label_names"])
        except (pickle.UnpicklingError, EOFError, KeyError, TypeError):
            pass  # the names are the standard ones
    return (*out, classes)
