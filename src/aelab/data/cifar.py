"""CIFAR-10 from the "python version" batch files, read by torchvision's CIFAR10 class.

torchvision checks each batch file against the md5 of the official archive. aelab also accepts other
copies in the same format (for example small files written by tests), so it checks that the files exist
and then lets torchvision's own code unpickle and reshape them.
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
    """The root torchvision expects (holding ``cifar-10-batches-py/``) or None if the files are not there."""
    for root in (folder, folder.parent):
        base = root / BASE_FOLDER
        if all((base / f).is_file() for f in TRAIN_FILES + TEST_FILES):
            return root
    return None


def _cifar_class():
    from torchvision.datasets import CIFAR10

    class CIFAR10Files(CIFAR10):
        """torchvision's CIFAR10 without the md5 check (format and shape are checked on load)."""

        def _check_integrity(self) -> bool:
            base = Path(self.root) / self.base_folder
            return all((base / name).is_file() for name, _ in self.train_list + self.test_list)

        def _load_meta(self) -> None:
            meta = Path(self.root) / self.base_folder / self.meta["filename"]
            if meta.is_file():
                with open(meta, "rb") as f:
                    self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
            else:
                self.classes = list(CLASS_NAMES)
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    return CIFAR10Files


def load_cifar10(root: Path, download: bool = False) -> tuple:
    """Read both splits. Returns (train_x, train_y, test_x, test_y, class_names); images uint8 (N, 3, 32, 32).

    Raises:
        DataError: a batch file that is not a CIFAR-10 pickle or has the wrong shape.
    """
    from torchvision.datasets import CIFAR10

    cls = CIFAR10 if download else _cifar_class()
    out = []
    for train in (True, False):
        try:
            ds = cls(root=str(root), train=train, download=download)
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as exc:
            raise DataError(
                f"CIFAR-10 files in {str(Path(root) / BASE_FOLDER)!r} are corrupted or not in the "
                f"CIFAR-10 python format ({type(exc).__name__}: {exc})"
            ) from None
        data = np.asarray(ds.data)
        if data.dtype != np.uint8 or data.ndim != 4 or data.shape[1:] != (32, 32, 3):
            raise DataError(
                f"CIFAR-10 files in {str(Path(root) / BASE_FOLDER)!r} hold arrays of shape "
                f"{data.shape}; expected rows of 3072 uint8 values (3x32x32)"
            )
        out += [torch.from_numpy(data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets, dtype=torch.long)]
    return (*out, list(ds.classes))
